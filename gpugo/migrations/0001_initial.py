from tortoise import migrations
from tortoise.migrations import operations as ops
from gpugo.models.agent import _agent_id
from gpugo.models.gpu import _gpu_pk
from gpugo.models.install_token import _install_token_id
from gpugo.models.personal_access_token import _pat_id
from gpugo.models.session import _session_id
from gpugo.models.share import _share_id
from gpugo.models.user import _user_id
from gpugo.models.worker import _worker_id
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_user_id, unique=True, db_index=True, max_length=32)),
                ('email', fields.CharField(unique=True, max_length=320)),
                ('password_hash', fields.CharField(max_length=255)),
                ('plan', fields.CharField(default='free', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Agent',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_agent_id, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='agents', on_delete=OnDelete.CASCADE)),
                ('secret_hash', fields.CharField(unique=True, max_length=64)),
                ('hostname', fields.CharField(max_length=255)),
                ('os', fields.CharField(max_length=20)),
                ('arch', fields.CharField(max_length=20)),
                ('network_ips', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('config_version', fields.IntField(default=1)),
                ('fetched_config_version', fields.IntField(null=True)),
                ('config_fetched_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('shut_down_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('offline_notified', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'agents', 'app': 'models', 'indexes': [Index(fields=['user_id', 'created_at']), Index(fields=['last_seen_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GpuMetricSample',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='gpu_metric_samples', on_delete=OnDelete.CASCADE)),
                ('gpu_id', fields.CharField(max_length=128)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('utilization', fields.FloatField()),
                ('vram_used_mb', fields.IntField()),
                ('vram_total_mb', fields.IntField()),
                ('temperature', fields.IntField()),
                ('power_usage_w', fields.FloatField()),
                ('pcie_rx_kb', fields.BigIntField(null=True)),
                ('pcie_tx_kb', fields.BigIntField(null=True)),
            ],
            options={'table': 'gpu_metric_samples', 'app': 'models', 'indexes': [Index(fields=['agent_id', 'recorded_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InstallToken',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_install_token_id, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='install_tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('agent_hostname', fields.CharField(null=True, max_length=255)),
            ],
            options={'table': 'install_tokens', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PersonalAccessToken',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_pat_id, unique=True, db_index=True, max_length=32)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='personal_access_token', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'personal_access_tokens', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_session_id, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sessions', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SystemMetricSample',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='system_metric_samples', on_delete=OnDelete.CASCADE)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cpu_usage', fields.FloatField()),
                ('memory_used_mb', fields.BigIntField()),
                ('memory_total_mb', fields.BigIntField()),
            ],
            options={'table': 'system_metric_samples', 'app': 'models', 'indexes': [Index(fields=['agent_id', 'recorded_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Worker',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_worker_id, unique=True, db_index=True, max_length=32)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='workers', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('gpu_ids', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('listen_port', fields.IntField()),
                ('enabled', fields.BooleanField(default=True)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('pid', fields.IntField(null=True)),
                ('restarts', fields.IntField(null=True)),
                ('is_default', fields.BooleanField(default=False)),
                ('vram_mb', fields.IntField(null=True)),
                ('compute_percent', fields.IntField(null=True)),
                ('isolation_mode', fields.CharField(null=True, max_length=8)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'workers', 'app': 'models', 'unique_together': (('agent_id', 'listen_port'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Gpu',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_gpu_pk, unique=True, db_index=True, max_length=32)),
                ('agent', fields.ForeignKeyField('models.Agent', source_field='agent_id', db_constraint=True, to_field='id', related_name='gpus', on_delete=OnDelete.CASCADE)),
                ('gpu_id', fields.CharField(max_length=128)),
                ('gpu_index', fields.IntField(null=True)),
                ('vendor', fields.CharField(max_length=16)),
                ('model', fields.CharField(max_length=255)),
                ('vram_mb', fields.IntField()),
                ('driver_version', fields.CharField(null=True, max_length=64)),
                ('cuda_version', fields.CharField(null=True, max_length=64)),
                ('used_by_worker', fields.ForeignKeyField('models.Worker', source_field='used_by_worker_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'gpus', 'app': 'models', 'unique_together': (('agent_id', 'gpu_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Share',
            fields=[
                ('id', fields.CharField(primary_key=True, default=_share_id, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='shares', on_delete=OnDelete.CASCADE)),
                ('worker', fields.ForeignKeyField('models.Worker', source_field='worker_id', db_constraint=True, to_field='id', related_name='shares', on_delete=OnDelete.CASCADE)),
                ('short_code', fields.CharField(unique=True, max_length=32)),
                ('connection_ip', fields.CharField(max_length=255)),
                ('hardware_vendor', fields.CharField(max_length=16)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('max_uses', fields.IntField(null=True)),
                ('used_count', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'shares', 'app': 'models', 'indexes': [Index(fields=['user_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WorkerConnection',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('worker', fields.ForeignKeyField('models.Worker', source_field='worker_id', db_constraint=True, to_field='id', related_name='connections', on_delete=OnDelete.CASCADE)),
                ('client_ip', fields.CharField(max_length=64)),
                ('client_port', fields.IntField(null=True)),
                ('client_pid', fields.IntField(null=True)),
                ('connected_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'worker_connections', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
