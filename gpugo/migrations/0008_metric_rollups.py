from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from gpugo.migration_ops import partition_and_roll_up_metrics

class Migration(migrations.Migration):
    dependencies = [('models', '0007_webhooks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GpuMetricRollup',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='gpu_metric_rollups', on_delete=OnDelete.CASCADE)),
                ('gpu_id', fields.CharField(max_length=128)),
                ('width', fields.IntField()),
                ('bucket_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('samples', fields.IntField()),
                ('utilization_sum', fields.FloatField()),
                ('utilization_max', fields.FloatField()),
                ('vram_used_mb_sum', fields.FloatField()),
                ('vram_used_mb_max', fields.IntField()),
                ('vram_total_mb', fields.IntField()),
                ('temperature_sum', fields.FloatField()),
                ('temperature_max', fields.IntField()),
                ('power_usage_w_sum', fields.FloatField()),
                ('power_usage_w_max', fields.FloatField()),
            ],
            options={'table': 'gpu_metric_rollups', 'app': 'models', 'unique_together': (('agent_id', 'width', 'bucket_start', 'gpu_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SystemMetricRollup',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='system_metric_rollups', on_delete=OnDelete.CASCADE)),
                ('width', fields.IntField()),
                ('bucket_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('samples', fields.IntField()),
                ('cpu_usage_sum', fields.FloatField()),
                ('cpu_usage_max', fields.FloatField()),
                ('memory_used_mb_sum', fields.FloatField()),
                ('memory_used_mb_max', fields.BigIntField()),
                ('memory_total_mb', fields.BigIntField()),
            ],
            options={'table': 'system_metric_rollups', 'app': 'models', 'unique_together': (('agent_id', 'width', 'bucket_start'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WorkerMetricRollup',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='worker_metric_rollups', on_delete=OnDelete.CASCADE)),
                ('worker_id', fields.CharField(max_length=32)),
                ('width', fields.IntField()),
                ('bucket_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('samples', fields.IntField()),
                ('running_samples', fields.IntField()),
                ('connections_sum', fields.FloatField()),
                ('connections_max', fields.IntField()),
                ('restarts_max', fields.IntField()),
            ],
            options={'table': 'worker_metric_rollups', 'app': 'models', 'unique_together': (('agent_id', 'width', 'bucket_start', 'worker_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.RunPython(partition_and_roll_up_metrics),
    ]
