"""Every Redis key and channel rediscron uses, derived from rq's key prefix.

Nothing else in the package spells a key: a deployment that sets rq's prefix to
``{rq}`` gets every rq and rediscron key in one Redis Cluster hash slot.
"""

from __future__ import annotations

from typing import overload

import rq.defaults


def prefix() -> str:
    """rq's key prefix (``rq`` unless ``RQ_KEY_PREFIX`` was set before rq was imported)."""
    return str(getattr(rq.defaults, "RQ_KEY_PREFIX", "rq"))


@overload
def job(job_id: str) -> str: ...
@overload
def job(job_id: bytes) -> bytes: ...
def job(job_id: str | bytes) -> str | bytes:
    """Hash holding one cron job definition (bytes for an id that is not text, to reach its stray keys)."""
    return _job_key(job_id, "")


@overload
def history(job_id: str) -> str: ...
@overload
def history(job_id: bytes) -> bytes: ...
def history(job_id: str | bytes) -> str | bytes:
    """Sorted set of the RQ job ids a cron job spawned, scored by enqueue time.

    The key and format are rq's own cron history (``rq.cron.get_cron_job_ids`` reads it);
    ids ending in ``:jobs`` are refused so it can never be another job's hash.
    """
    return _job_key(job_id, ":jobs")


@overload
def backfilled(job_id: str) -> str: ...
@overload
def backfilled(job_id: bytes) -> bytes: ...
def backfilled(job_id: str | bytes) -> str | bytes:
    """Set of the slots of a job enqueued by a backfill (kept, so an expired run is never backfilled again).

    Under ``cron_jobs:``, not beside the job's hash: no job id can name it.
    """
    if isinstance(job_id, bytes):
        return f"{prefix()}:cron_jobs:backfilled:".encode() + job_id
    return f"{prefix()}:cron_jobs:backfilled:{job_id}"


def _job_key(job_id: str | bytes, suffix: str) -> str | bytes:
    if isinstance(job_id, bytes):
        return f"{prefix()}:cron_job:".encode() + job_id + suffix.encode()
    return f"{prefix()}:cron_job:{job_id}{suffix}"


def schedule() -> str:
    """Sorted set of enabled job ids scored by their next slot (epoch seconds)."""
    return f"{prefix()}:cron_jobs:schedule"


def ids() -> str:
    """Set of every job id, enabled or not."""
    return f"{prefix()}:cron_jobs:ids"


def applied() -> str:
    """Set of the job ids ``rqrcron apply`` created or took over (``--prune`` may delete only these)."""
    return f"{prefix()}:cron_jobs:applied"


def audit() -> str:
    """The audit log: a capped stream of every change to the registry (`rediscron.audit`)."""
    return f"{prefix()}:cron_jobs:audit"


def revision() -> str:
    """Counter every write to a job record draws its new ``revision`` from."""
    return f"{prefix()}:cron_jobs:revision"


def lock() -> str:
    """The singleton scheduler lock."""
    return f"{prefix()}:cron_jobs:lock"


def lock_epoch() -> str:
    """Counter of lock acquisitions: the fencing epoch."""
    return f"{prefix()}:cron_jobs:lock_epoch"


def paused() -> str:
    """Set while every fire is paused registry-wide (``rqrcron pause``): who paused, when and why (JSON)."""
    return f"{prefix()}:cron_jobs:paused"


def signed_out() -> str:
    """Sorted set of the web page's sessions signed out before they expire, scored by their expiry."""
    return f"{prefix()}:cron_jobs:web:signed_out"


def last_update() -> str:
    """Change counter, incremented on every create/update/delete/enable/disable."""
    return f"{prefix()}:cron_jobs:last_update"


def events() -> str:
    """Pub/Sub channel of change events."""
    return f"{prefix()}:cron_jobs:events"


def fires() -> str:
    """List of the latest fires, newest first: ``"<epoch> <lag seconds>"`` (for ``rqrcron status``)."""
    return f"{prefix()}:cron_jobs:fires"


def stats() -> str:
    """Hash of running totals kept by the fire script: ``fired``, ``missed``, ``overlap_skipped``."""
    return f"{prefix()}:cron_jobs:stats"


def failing() -> str:
    """Sorted set of the jobs whose latest runs failed, scored by how many in a row (kept by the fire script)."""
    return f"{prefix()}:cron_jobs:failing"


def rq_job(rq_job_id: str) -> str:
    """The hash of one RQ job, as rq names it (read field by field, never unpickled)."""
    return f"{prefix()}:job:{rq_job_id}"
