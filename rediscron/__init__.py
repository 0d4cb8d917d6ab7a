"""rediscron: a Redis-persisted, runtime-editable cron registry for RQ.

Jobs live in Redis under stable ids, can be created, edited, enabled, disabled
and deleted from any process while a scheduler runs, and each scheduled slot is
enqueued exactly once.
"""

from .__version__ import __version__
from .errors import (
    CorruptJobError,
    EditConflict,
    ImportNotAllowed,
    InvalidJobError,
    JobNotFound,
    LockLostError,
    RediscronError,
    SchedulerLockedError,
)
from .job import RedisCronJob
from .registry import Registry
from .scheduler import RedisCronScheduler
from .worker import CronWorker

__all__ = [
    "CorruptJobError",
    "CronWorker",
    "EditConflict",
    "ImportNotAllowed",
    "InvalidJobError",
    "JobNotFound",
    "LockLostError",
    "RedisCronJob",
    "RedisCronScheduler",
    "RediscronError",
    "Registry",
    "SchedulerLockedError",
    "__version__",
]
