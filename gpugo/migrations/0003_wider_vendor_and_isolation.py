from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

from gpugo.migration_ops import WidenCharField

class Migration(migrations.Migration):
    dependencies = [('models', '0002_fk_indexes')]

    initial = False

    operations = [
        WidenCharField(
            model_name='Gpu',
            name='vendor',
            field=fields.CharField(max_length=32),
        ),
        WidenCharField(
            model_name='Share',
            name='hardware_vendor',
            field=fields.CharField(max_length=32),
        ),
        WidenCharField(
            model_name='Worker',
            name='isolation_mode',
            field=fields.CharField(null=True, max_length=16),
        ),
    ]
