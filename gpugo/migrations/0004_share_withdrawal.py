from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_wider_vendor_and_isolation')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Share',
            name='withdrawn_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Share',
            index=Index(fields=['withdrawn_at', 'expires_at']),
        ),
    ]
