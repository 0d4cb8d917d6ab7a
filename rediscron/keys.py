"""Every Redis key and channel rediscron uses, derived from rq's key prefix.

Nothing else in the package spells a key: a deployment that sets rq's prefix to
``{rq}`` gets every rq and rediscron key in one Redis Cluster hash slot.
"""

from __future__ import annotations

import rq.defaults


def prefix() -> str:
    """rq's key prefix (``rq`` unless ``RQ_KEY_PREFIX`` was set before rq was imported)."""
    return str(getattr(rq.defaults, "RQ_KEY_PREFIX", "rq"))


def job(job_id: str) -> str:
    """Hash holding one cron job definition."""
    return f"{prefix()}:cron_job:{job_id}"


def schedule() -> str:
    """Sorted set of enabled job ids scored by their next slot (epoch seconds)."""
    return f"{prefix()}:cron_jobs:schedule"


def ids() -> str:
    """Set of every job id, enabled or not."""
    return f"{prefix()}:cron_jobs:ids"


def lock() -> str:
    """The singleton scheduler lock."""
    return f"{prefix()}:cron_jobs:lock"


def lock_epoch() -> str:
    """Counter of lock acquisitions: the fencing epoch."""
    return f"{prefix()}:cron_jobs:lock_epoch"


def last_update() -> str:
    """Change counter, incremented on every create/update/delete/enable/disable."""
    return f"{prefix()}:cron_jobs:last_update"


def events() -> str:
    """Pub/Sub channel of change events."""
    return f"{prefix()}:cron_jobs:events"
