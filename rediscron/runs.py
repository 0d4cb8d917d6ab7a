"""The runs of a cron job: the RQ queue they go to, the RQ job of each, and one run enqueued by hand.

One role of `RedisCronJob` (whose ``make_queue()``, ``build_rq_job()`` and ``enqueue()`` call these),
kept apart from its definition and timing. The function is enqueued by its dotted path; the classes a
job names (``queue_class``, ``job_class``, ``serializer``) are imported only through an allowlist
unless the caller gave them itself.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import uuid
from datetime import datetime, timezone
from typing import Any, Protocol

from redis import Redis
from redis.client import Pipeline
from rq.job import Job
from rq.queue import Queue

from . import keys
from .errors import InvalidJobError
from .history import HISTORY_LENGTH
from .imports import ImportAllowlist, import_path
from .options import build_callback, build_retry, build_webhooks

log = logging.getLogger("rediscron.job")


def rq_job_id(cron_id: str, slot: int) -> str:
    """The RQ job id of one slot: the same for every scheduler, so a slot is enqueued at most once."""
    digest = hashlib.sha1(cron_id.encode("utf-8")).hexdigest()[:16]
    return f"cron-{digest}-{slot}"


class RunSource(Protocol):
    """What building a run reads of a job (`RedisCronJob` is one)."""

    id: str
    queue_name: str
    queue_class: str | None
    job_class: str | None
    serializer: str | None
    func: Any
    func_name: str
    args: Any
    kwargs: Any
    meta: dict[str, Any] | None
    job_timeout: int | None
    result_ttl: int | None
    ttl: int | None
    failure_ttl: int | None
    description: str | None
    retry: Any
    on_success: Any
    on_failure: Any
    on_stopped: Any
    webhooks: Any
    at_front: bool

    def given_code(self, option: str) -> tuple[str, Any] | None:
        """What the caller gave for an option naming code: (stored path, the class given or None)."""


def make_queue(job: RunSource, connection: Redis, allow_import: ImportAllowlist | None = None) -> Queue:
    """The RQ queue ``job``'s runs go to (see ``RedisCronJob.make_queue``)."""
    allowlist = allow_import if allow_import is not None else ImportAllowlist()

    def code(option: str) -> Any:
        path = getattr(job, option)
        given = job.given_code(option)
        if given is not None and given[0] == path:
            # The caller's own choice, in the caller's process: checked when it was given.
            return given[1] if given[1] is not None else import_path(path)
        return allowlist.load(path, job.id, option)

    queue_class = code("queue_class") if job.queue_class else Queue
    if not (inspect.isclass(queue_class) and issubclass(queue_class, Queue)):
        raise InvalidJobError(job.id, "queue_class", f"{job.queue_class} is not a subclass of rq's Queue")
    kwargs: dict[str, Any] = {}
    if job.job_class:
        kwargs["job_class"] = code("job_class")
        if not (inspect.isclass(kwargs["job_class"]) and issubclass(kwargs["job_class"], Job)):
            raise InvalidJobError(job.id, "job_class", f"{job.job_class} is not a subclass of rq's Job")
    if job.serializer:
        kwargs["serializer"] = code("serializer")
        if not (
            callable(getattr(kwargs["serializer"], "dumps", None))
            and callable(getattr(kwargs["serializer"], "loads", None))
        ):
            raise InvalidJobError(job.id, "serializer", f"{job.serializer} has no dumps() and loads()")
    return queue_class(job.queue_name, connection=connection, **kwargs)


def run_meta(job: RunSource, slot: int | None) -> dict[str, Any]:
    """The ``meta`` of the RQ job of one run: the job's own, then its id and the slot."""
    meta = dict(job.meta or {})
    meta["rediscron_id"] = job.id
    meta["rediscron_slot"] = slot
    return meta


def build_rq_job(job: RunSource, queue: Queue, slot: int | None, job_id: str | None = None) -> Job:
    """The RQ job for one run of ``job`` (not yet enqueued), as rq's ``Queue.create_job`` makes it."""
    meta = run_meta(job, slot)
    target: Any = job.func if job.func is not None else job.func_name
    # Only when set: rq releases before 2.10 know no webhooks.
    extra: dict[str, Any] = {"webhooks": build_webhooks(job.webhooks)} if job.webhooks else {}
    return queue.create_job(
        target,
        args=list(job.args),
        kwargs=dict(job.kwargs),
        timeout=job.job_timeout,
        result_ttl=job.result_ttl,
        ttl=job.ttl,
        failure_ttl=job.failure_ttl,
        description=job.description,
        job_id=job_id or (rq_job_id(job.id, slot) if slot is not None else None),
        meta=meta,
        retry=build_retry(job.retry),
        on_success=build_callback(job.on_success),
        on_failure=build_callback(job.on_failure),
        on_stopped=build_callback(job.on_stopped),
        **extra,
    )


def enqueue_now(job: RunSource, connection: Redis, allow_import: ImportAllowlist | None = None) -> Job:
    """Enqueue one run of ``job`` now, outside its schedule, and record it in its history (see
    ``RedisCronJob.enqueue``)."""
    queue = make_queue(job, connection, allow_import)
    digest = rq_job_id(job.id, 0).rsplit("-", 1)[0]
    run = build_rq_job(job, queue, None, job_id=f"{digest}-manual-{uuid.uuid4().hex[:12]}")
    run.meta["rediscron_trigger"] = True
    with connection.pipeline(transaction=True) as pipe:
        queue_recorded(pipe, queue, job, run)
        replies = pipe.execute(raise_on_error=False)
    if not enqueued(replies, HISTORY_COMMANDS):
        # The run is enqueued (a transaction does not roll back): say so, rather than fail and be retried.
        log.warning(
            "cron job %r: run %s enqueued; its history %s could not be written", job.id, run.id, keys.history(job.id)
        )
    return run


#: The commands `queue_recorded` queues after rq's own: the history entry and the history's trim.
HISTORY_COMMANDS = 2


def queue_recorded(pipe: Pipeline, queue: Queue, job: RunSource, run: Job) -> None:
    """Queue rq's enqueue of ``run`` on ``pipe``, then its entry in ``job``'s history (`HISTORY_COMMANDS`)."""
    queue.enqueue_job(run, pipeline=pipe, at_front=job.at_front)
    enqueued_at = run.enqueued_at or datetime.now(timezone.utc)
    history = keys.history(job.id)
    pipe.zadd(history, {run.id: enqueued_at.timestamp()})
    pipe.zremrangebyrank(history, 0, -(HISTORY_LENGTH + 1))


def enqueued(replies: list[Any], bookkeeping: int) -> bool:
    """Raise the first error among rq's own writes (all ``replies`` but the last ``bookkeeping``); whether
    the bookkeeping after them was written too (the run is enqueued either way: a transaction does not
    roll back)."""
    for reply in replies[: len(replies) - bookkeeping]:
        if isinstance(reply, Exception):
            raise reply
    return not any(isinstance(reply, Exception) for reply in replies[len(replies) - bookkeeping :])
