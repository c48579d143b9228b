from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_share_withdrawal')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WorkerMetricSample',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='worker_metric_samples', on_delete=OnDelete.CASCADE)),
                ('worker_id', fields.CharField(max_length=32)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.SmallIntField()),
                ('connections', fields.IntField()),
                ('restarts', fields.IntField()),
            ],
            options={'table': 'worker_metric_samples', 'app': 'models', 'indexes': [Index(fields=['agent_id', 'recorded_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
