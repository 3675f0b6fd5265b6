"""The cloud side: the PostgreSQL schema, the outbox push, the plan pull, the scheduler."""

from cloud_sync.backoff import Backoff
from cloud_sync.connection import Deadline, Timeouts, connect, describe_url
from cloud_sync.devices import DeviceCredentials, create_device, device_role_name, drop_device
from cloud_sync.pull import PullResult, pull_plans
from cloud_sync.push import PushResult, push_batch
from cloud_sync.scheduler import SyncScheduler, SyncStatus
from cloud_sync.schema import MIGRATIONS, migrate, schema_version
from cloud_sync.syncer import Syncer, SyncReport

__all__ = [
    "MIGRATIONS",
    "Backoff",
    "Deadline",
    "DeviceCredentials",
    "PullResult",
    "PushResult",
    "SyncReport",
    "SyncScheduler",
    "SyncStatus",
    "Syncer",
    "Timeouts",
    "connect",
    "create_device",
    "describe_url",
    "device_role_name",
    "drop_device",
    "migrate",
    "pull_plans",
    "push_batch",
    "schema_version",
]
