from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Gpu',
            index=Index(fields=['used_by_worker_id']),
        ),
        ops.AddIndex(
            model_name='Share',
            index=Index(fields=['worker_id']),
        ),
        ops.AddIndex(
            model_name='WorkerConnection',
            index=Index(fields=['worker_id']),
        ),
    ]
