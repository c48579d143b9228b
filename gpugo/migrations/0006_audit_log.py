from tortoise import migrations
from tortoise.migrations import operations as ops
from gpugo.models.audit_event import _audit_event_id
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_worker_metrics')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_audit_event_id, unique=True, db_index=True, max_length=32)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('kind', fields.CharField(max_length=40)),
                ('user_id', fields.CharField(null=True, max_length=32)),
                ('actor_kind', fields.CharField(max_length=16)),
                ('actor_id', fields.CharField(null=True, max_length=32)),
                ('address', fields.CharField(null=True, max_length=64)),
                ('user_agent', fields.CharField(null=True, max_length=256)),
                ('subject_kind', fields.CharField(null=True, max_length=16)),
                ('subject_id', fields.CharField(null=True, max_length=160)),
                ('outcome', fields.CharField(max_length=16)),
                ('detail', fields.CharField(null=True, max_length=128)),
            ],
            options={'table': 'audit_events', 'app': 'models', 'indexes': [Index(fields=['user_id', 'at']), Index(fields=['at']), Index(fields=['subject_id', 'kind'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='InstallToken',
            name='expiry_noted',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Session',
            name='address',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Session',
            name='user_agent',
            field=fields.CharField(null=True, max_length=256),
        ),
    ]
