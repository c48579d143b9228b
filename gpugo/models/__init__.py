"""Tortoise models, one per file. No business rules here: those live in services/."""

from gpugo.models.agent import Agent
from gpugo.models.audit_event import AuditEvent
from gpugo.models.gpu import Gpu
from gpugo.models.gpu_metric_rollup import GpuMetricRollup
from gpugo.models.gpu_metric_sample import GpuMetricSample
from gpugo.models.install_token import InstallToken
from gpugo.models.personal_access_token import PersonalAccessToken
from gpugo.models.session import Session
from gpugo.models.share import Share
from gpugo.models.system_metric_rollup import SystemMetricRollup
from gpugo.models.system_metric_sample import SystemMetricSample
from gpugo.models.user import User
from gpugo.models.webhook_delivery import WebhookDelivery
from gpugo.models.webhook_endpoint import WebhookEndpoint
from gpugo.models.worker import Worker
from gpugo.models.worker_connection import WorkerConnection
from gpugo.models.worker_metric_rollup import WorkerMetricRollup
from gpugo.models.worker_metric_sample import WorkerMetricSample

__all__ = [
    "Agent",
    "AuditEvent",
    "Gpu",
    "GpuMetricRollup",
    "GpuMetricSample",
    "InstallToken",
    "PersonalAccessToken",
    "Session",
    "Share",
    "SystemMetricRollup",
    "SystemMetricSample",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Worker",
    "WorkerConnection",
    "WorkerMetricRollup",
    "WorkerMetricSample",
]
