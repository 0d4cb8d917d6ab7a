"""RedisCronJob: one recurring job, persisted in a Redis hash under a stable id.

Its definition, checks and timing are [CronDefinition][rediscron.cronjob.CronDefinition]'s (no
Redis I/O); this class reads and writes the stored job.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ResponseError
from rq.job import Job
from rq.queue import Queue
from rq.utils import as_text

from . import audit, keys, runs, store, writes
from .backfill import BACKFILL_LIMIT, Backfill, backfill_slots
from .clock import format_time, from_epoch, parse_time
from .cronjob import CronDefinition
from .definition import check_time
from .errors import CorruptJobError, EditConflict, InvalidJobError, JobNotFound
from .fields import DEFINITION_FIELDS
from .history import HISTORY_LENGTH, HistoryEntry, JobStats, consecutive_failures, read_history
from .imports import ImportAllowlist
from .runs import rq_job_id as rq_job_id  # where the tests and users import it from
from .store import Conflict

#: The fields a rollback restores: the definition, not the enabled state nor what the scheduler keeps.
_ROLLED_BACK = frozenset(DEFINITION_FIELDS) - {"id"}


class RedisCronJob(CronDefinition):
    """A Redis-persisted RQ cron job with a stable application-owned id.

    The job is stored in a Redis hash at ``rq:cron_job:{id}`` and, while enabled,
    indexed in ``rq:cron_jobs:schedule`` by its next slot. Create or update jobs
    with [RedisCronScheduler.register()][rediscron.RedisCronScheduler.register]; use this class directly in
    administration tools that fetch, edit, enable, disable or delete one job.

    Every argument is validated before anything is written; a bad one raises
    [InvalidJobError][rediscron.InvalidJobError] naming the job and the field.

    Example::

        job = RedisCronJob(id="metric:pm25", queue_name="metrics", func=rebuild_metric,
                           args=("pm25",), interval=300, connection=redis)
        job.save(event="created")
        RedisCronJob.fetch("metric:pm25", redis).delete()

    Beyond rq's fields, every keyword option (``timezone``, ``misfire_grace_time``,
    ``catchup``, ``overlap``, ``jitter``, ``start_time``, ``end_time``, ``max_runs``,
    ``description``, ``retry``, ``at_front``, ``on_success``, ``on_failure``,
    ``on_stopped``, ``queue_class``, ``job_class``, ``serializer``, ``webhooks``) is
    documented on [RedisCronScheduler.register()][rediscron.RedisCronScheduler.register].
    rq's ``name=`` is taken as the id when no ``id`` is given; so rq's
    ``CronJob(queue_name=..., func=..., name=...)`` works.

    Jobs compare equal when their ids are equal. A job built directly saves as an upsert;
    one read from Redis ([fetch()][fetch]) only updates, and never brings back a job deleted
    meanwhile.
    """

    # -- reading ------------------------------------------------------------------------------

    @classmethod
    def fetch(cls, id: str, connection: Redis) -> RedisCronJob:
        """Fetch one persisted cron job by id; [JobNotFound][rediscron.JobNotFound] if there is none.

        Nothing is imported (see [restore()][rediscron.RedisCronJob.restore]); a record that cannot be read raises
        [CorruptJobError][rediscron.CorruptJobError].
        """
        try:
            raw = connection.hgetall(keys.job(id))
        except ResponseError as exc:
            raise CorruptJobError(id, f"{keys.job(id)} is not a hash ({exc})") from None
        if not raw:
            raise JobNotFound(id)
        return cls.restore(raw, connection, id=id)

    @classmethod
    def exists(cls, id: str, connection: Redis) -> bool:
        """Whether a cron job with this id is stored."""
        return bool(connection.exists(keys.job(id)))

    def refresh(self) -> None:
        """Reload this job from Redis in place (JobNotFound if it was deleted)."""
        fresh = type(self).fetch(self.id, self._connection())
        self.__dict__.update(fresh.__dict__)

    # -- writing ------------------------------------------------------------------------------

    def _connection(self) -> Redis:
        if self.connection is None:
            raise ValueError(f"cron job {self.id!r} has no Redis connection; pass connection=")
        return self.connection

    def save(self, pipeline: Pipeline | None = None, event: str = "updated") -> None:
        """Persist this cron job and notify schedulers about the change.

        Writes the hash, updates the index, bumps ``rq:cron_jobs:last_update`` and
        publishes an event on ``rq:cron_jobs:events``, all in one atomic step. What
        the scheduler owns is kept: ``created_at``, ``latest_enqueue_time``, and the
        next run unless the schedule (``interval``/``cron``) changed.

        A job you build yourself saves as an upsert: it creates the job, or replaces its
        definition. A job read from Redis ([fetch()][fetch], [restore()][rediscron.RedisCronJob.restore]) only updates:
        if another process deleted it meanwhile, [JobNotFound][rediscron.JobNotFound] is
        raised (on a ``pipeline``, the write is just skipped) and nothing is written, so a
        stale copy never brings a deleted job back.
        """
        conflict: Conflict = "update" if self._fetched else "replace"
        state = "1" if self.enabled else "0"
        if writes.write(self, pipeline, enabled=state, conflict=conflict, event=event) == store.SaveStatus.MISSING:
            raise JobNotFound(self.id)

    def _saved(self, saved: store.Saved, now: float, latest: datetime | None = None) -> store.SaveStatus:
        """Take in what the save script reports; return its status."""
        if saved.status == store.SaveStatus.WRITTEN:
            self.revision = int(saved.revision)
            self.created_at = parse_time(saved.created_at)
            self.updated_at = from_epoch(now)
            self.next_enqueue_time = parse_time(saved.next_time) if saved.next_time else None
            self.enabled = saved.enabled != "0"
            self.last_error = None
            if latest is not None:
                self.latest_enqueue_time = latest
        return saved.status

    def _set_enabled(self, enabled: bool, pipeline: Pipeline | None) -> None:
        revision = writes.set_enabled(self, enabled, pipeline)
        self.enabled = enabled
        if revision:
            self.revision = revision

    def enable(self, pipeline: Pipeline | None = None) -> None:
        """Enable this cron job and notify running schedulers.

        A re-enabled job does not catch up on the slots it missed while disabled:
        its next run is the next slot from now.
        """
        self._set_enabled(True, pipeline)

    def disable(self, pipeline: Pipeline | None = None) -> None:
        """Disable this cron job and notify running schedulers.

        Once this returns, no scheduler enqueues a run of this job until it is enabled.
        """
        self._set_enabled(False, pipeline)

    def delete(self, pipeline: Pipeline | None = None) -> None:
        """Delete this cron job from Redis and notify running schedulers.

        Removes the hash and its index entries in one atomic step; once this returns
        no scheduler enqueues a run of it. Deleting a job that is already gone is not an error.
        """
        store.delete(pipeline if pipeline is not None else self._connection(), self.id)

    def get_history(self, limit: int = HISTORY_LENGTH) -> list[HistoryEntry]:
        """The most recent RQ jobs this cron job spawned, newest first, with their status.

        Two plain reads, pipelined: the history set, then each RQ job's ``status`` and times
        (``HMGET``). Nothing is unpickled: an RQ job's ``meta`` and result never leave Redis.
        """
        return read_history(self._connection(), [self.id], limit)[self.id]

    def get_stats(self) -> JobStats:
        """Last fire time, last status, consecutive failures, and the counts of runs and slots not run."""
        history = self.get_history()
        return JobStats(
            last_fire_time=self.latest_enqueue_time,
            last_status=history[0].status if history else None,
            consecutive_failures=consecutive_failures(history),
            runs=self.run_count,
            missed=self.missed_count,
            overlap_skipped=self.overlap_count,
            drops=list(self.drop_log),
        )

    def state(self) -> str:
        """``enabled``, ``disabled``, ``quarantined: ...``, ``ended: ...`` or ``enabled, starts at ...``."""
        if self.last_error:
            return f"quarantined: {self.last_error}"
        if not self.enabled:
            return "disabled"
        if self.next_enqueue_time is None:
            if self.max_runs is not None and self.run_count >= self.max_runs:
                return f"ended: ran max_runs={self.max_runs} times"
            if self.end_time is not None:
                return f"ended: end_time {format_time(self.end_time)} has passed"
        elif self.start_time is not None and self.run_count == 0 and self.latest_enqueue_time is None:
            return f"enabled, starts at {format_time(self.start_time)}"
        return "enabled"

    def set_enqueue_time(self, time: datetime) -> None:
        """Record an enqueue timestamp and the next run after it, and persist both if the job is stored.

        As rq's ``CronJob.set_enqueue_time``, on this object; with a connection, also on the
        stored job, in one atomic step, if it exists. It never creates one: not for an object
        not yet saved, nor for one fetched before another process deleted the job.
        """
        check_time(time, self.id, "time")
        if time is None:
            raise InvalidJobError(self.id, "time", "must be a datetime, not None")
        if time.tzinfo is None:
            time = time.replace(tzinfo=timezone.utc)  # rq's times are naive UTC
        self.latest_enqueue_time = time
        self.next_enqueue_time = self.get_next_enqueue_time()
        if self.connection is not None:
            writes.write(self, enabled="1" if self.enabled else "0", latest=time, source="", conflict="update")

    # -- enqueueing ---------------------------------------------------------------------------

    def build_rq_job(self, queue: Queue, slot: int | None, job_id: str | None = None) -> Job:
        """The RQ job for one run of this definition (not yet enqueued)."""
        return runs.build_rq_job(self, queue, slot, job_id)

    def make_queue(self, connection: Redis, allow_import: ImportAllowlist | None = None) -> Queue:
        """The RQ queue this job's runs go to, of its ``queue_class``, ``job_class`` and ``serializer``.

        What the caller passed to this object (a class, or a path) is used as given. A dotted
        path read from Redis is imported only if ``allow_import`` (default: rq's own package)
        allows it, else [ImportNotAllowed][rediscron.ImportNotAllowed] names the option.
        """
        return runs.make_queue(self, connection, allow_import)

    def enqueue(self, connection: Redis, allow_import: ImportAllowlist | None = None) -> Job:
        """Enqueue one concrete RQ job for this cron definition now, outside its schedule.

        The schedule is not moved and no slot is consumed. The RQ job (id
        ``cron-<hash>-manual-<random>``) carries ``meta["rediscron_id"]``,
        ``meta["rediscron_slot"] = None`` and ``meta["rediscron_trigger"] = True``, and is
        recorded in the job's history in the same transaction. The function is enqueued by
        its dotted path; ``allow_import`` is as for [make_queue()][make_queue].
        """
        return runs.enqueue_now(self, connection, allow_import)

    def trigger(self, allow_import: ImportAllowlist | None = None) -> Job:
        """Enqueue one run now without moving the schedule (see [enqueue()][enqueue])."""
        return self.enqueue(self._connection(), allow_import)

    def rollback(self, revision: int) -> int:
        """Restore this job's definition as it was at ``revision``, as a new revision; return it.

        ``revision`` is one the audit log shows for this job (`rqrcron log ID`). The definition
        is rebuilt from the job's current one by undoing, newest first, each change the audit
        log records after that revision; it is checked as any record read from Redis is, then
        written as an edit (history is never rewritten: the rollback is a change of its own,
        recorded in the audit log). The job's enabled state and timing are its own, not rolled
        back. Written only if the job did not change meanwhile; when the definition is already
        that one, nothing is written and the current revision is returned.

        Raises:
            InvalidJobError: ``revision`` is not a revision of this job still in the audit log, or
                its definition no longer passes the checks (a time zone that is gone, say).
            CorruptJobError: the definition at that revision cannot be read back.
            EditConflict: the job changed while it was being rolled back (try again).
        """
        if isinstance(revision, bool) or not isinstance(revision, int):
            raise InvalidJobError(self.id, "revision", f"must be a whole number, not {revision!r}")
        connection = self._connection()
        raw = connection.hgetall(self.key)
        if not raw:
            raise JobNotFound(self.id)
        current = {as_text(k): as_text(v) for k, v in raw.items()}
        entries = audit.read(connection, self.id, count=audit.AUDIT_LENGTH)
        # A delete's entry carries the revision the job had before it: it is undone, never the target.
        newer = list(
            itertools.takewhile(lambda entry: entry.revision != revision or entry.action == "deleted", entries)
        )
        if len(newer) == len(entries):
            raise InvalidJobError(
                self.id,
                "revision",
                f"{revision} is not one of this job's revisions in the audit log (it keeps about the newest "
                f"{audit.AUDIT_LENGTH:,} changes; `rqrcron log {self.id}` lists them)",
            )
        for entry in newer:  # newest first: undo each change made after the revision
            for name, (old, _new) in entry.changes.items():
                if name not in _ROLLED_BACK:
                    continue
                if old is None:
                    current.pop(name, None)
                else:
                    current[name] = old
        before = {as_text(k): as_text(v) for k, v in raw.items()}
        if {k: v for k, v in current.items() if k in _ROLLED_BACK} == {
            k: v for k, v in before.items() if k in _ROLLED_BACK
        }:
            return int(current.get("revision") or 0)  # already that definition: nothing to write
        try:
            job = type(self).restore(current, connection, id=self.id)
        except CorruptJobError as exc:
            raise InvalidJobError(
                self.id, "revision", f"{revision}: that definition cannot be restored ({exc.message})"
            ) from None
        status = writes.write(
            job, enabled="", conflict="update", event="rolled_back", revision=current.get("revision", "")
        )
        if status == store.SaveStatus.MISSING:
            raise JobNotFound(self.id)
        if status == store.SaveStatus.CHANGED:
            raise EditConflict(self.id)
        self.refresh()
        return self.revision

    def backfill(
        self,
        start: datetime,
        end: datetime,
        *,
        max_slots: int = BACKFILL_LIMIT,
        scheduled: bool = False,
        dry_run: bool = False,
        allow_import: ImportAllowlist | None = None,
    ) -> Backfill:
        """Enqueue the runs of this job's slots from ``start`` to ``end`` (a past range) that have none yet.

        Each slot is enqueued at most once, however often this is called and whatever a scheduler
        does meanwhile: its RQ job id is fixed, and it is written only if no RQ job of that id
        exists. The job's schedule (next slot, latest run, run count) is not touched. The range
        may begin before the job was created ("run last week's reports too").

        Slots from the job's creation on may have been run by a scheduler already, their RQ jobs
        since expired (a finished job is kept for ``result_ttl``): they are left alone
        (`MAY_HAVE_RUN`) unless the job's drop log records them as not run, or ``scheduled=True``
        takes them too.

        Args:
            start: The first time of the range (a naive datetime is UTC).
            end: The last time of the range; not in the future.
            max_slots: Refuse a range holding more slots than this (default 1,000).
            scheduled: Also enqueue slots from the job's creation on that have no RQ job.
            dry_run: Enqueue nothing; say what would be.
            allow_import: Where the job's code-naming options may be imported from.

        Returns:
            What became of each slot of the range (`rediscron.backfill.Backfill`).

        Raises:
            InvalidJobError: A bad range (naming ``from``, ``to``, ``from/to`` or ``max_slots``).
        """
        connection = self._connection()
        queue = self.make_queue(connection, allow_import)
        return backfill_slots(
            self, connection, queue, start, end, max_slots=max_slots, scheduled=scheduled, dry_run=dry_run
        )
