from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_metric_rollups')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Agent',
            name='display_name',
            field=fields.CharField(null=True, max_length=100),
        ),
        ops.AddField(
            model_name='Agent',
            name='tags',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
