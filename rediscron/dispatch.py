"""Dispatch: a pass's work on the due slots. Read them, plan them, fire them, quarantine what cannot be used.

One part of `RedisCronScheduler`. ``tick()`` reads the time, the change marker and the due
entries in one script; ``fire_due()`` reads each due job's record, plans its slot (`catchup`)
and builds its RQ job (`enqueue.prepare`), then runs the fenced fire script with the
fencing value `Leadership` holds, and ``settle()`` accounts for each outcome. A job whose
record or run cannot be used is quarantined alone, with the reason, and retried every
``QUARANTINE_RETRY_INTERVAL`` seconds.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.job import Job
from rq.queue import Queue
from rq.utils import as_text

from . import enqueue, keys, limits, scripts, store, writes
from .clock import ServerClock, format_time, from_epoch
from .cronjob import ByShape
from .errors import CorruptJobError, RediscronError
from .job import RedisCronJob
from .leadership import Leadership
from .logs import fields
from .record import decode_state, definition_key
from .registry import Registry
from .stats import Stats
from .store import Tick
from .template import Templates
from .text import shorten

#: How many due slots one fire script handles.
DEFAULT_BATCH_SIZE = 200
#: Most fire scripts one pass streams when its tick comes back full (`Dispatch.fire_due`).
STREAMED_BATCHES = 5
#: How long (ms) a fire waits for ``wait_replicas`` replicas to acknowledge its writes.
REPLICA_WAIT_MS = 100
#: Most jobs whose not-run slots one fire logs line by line; the rest are summed up in one line. A
#: scheduler falling behind drops slots of thousands of jobs a second: a line each would slow it further.
DROP_LINES_PER_FIRE = 10
#: How often (seconds) the running loop re-reads quarantined jobs, to lift the quarantine of those
#: whose record was repaired; it also does so each time it takes the lock.
QUARANTINE_RETRY_INTERVAL = 60.0
#: Most quarantined jobs re-read at a time.
QUARANTINE_RETRY_BATCH = 500

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
#: Refusals of rq's enqueue that concern the server or this user, not the job: retried, never quarantined.
_SERVER_WIDE_REFUSALS = ("NOPERM", "OOM", "READONLY", "MISCONF", "BUSY", "NOREPLICAS", "MASTERDOWN")

#: Most definitions kept to skip decoding a record read again (a few KB each).
KNOWN_LIMIT = 10_000

#: A due job read: (job, index score read, revision read).
Read = tuple[RedisCronJob, str, bytes | str]


class Batch(NamedTuple):
    """What firing one batch of due entries did."""

    fired: list[RedisCronJob]
    #: Another full batch may be due.
    more: bool


class Dispatch:
    """Fires the due slots of the jobs in ``registry``, ``batch_size`` per fire script, while ``leadership`` leads."""

    def __init__(
        self,
        registry: Registry,
        leadership: Leadership,
        stats: Stats,
        *,
        name: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        log: logging.Logger,
        on_disable: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.registry = registry
        #: Told of each job this scheduler disabled for failing (`alerts.notifier`).
        self.on_disable = on_disable
        self.connection: Redis = registry.connection
        self.leadership = leadership
        self.stats = stats
        self.name = name
        self.batch_size = batch_size
        self.log = log
        self._queues: dict[tuple[str, str | None, str | None, str | None], Queue] = {}
        #: Ticks count the entries due within this many seconds (0: they do not); the last count.
        self.horizon = 0.0
        self.coming = 0
        #: Definitions read before, by id: (definition key, the job as first restored). A record read
        #: again with the same definition is not decoded and checked again: only what the scheduler
        #: keeps is (`decode_state`).
        self._known: dict[str, tuple[Any, RedisCronJob]] = {}
        #: A first read of a job of a shape read before decodes and checks only what tells the two apart.
        self._shapes = ByShape(registry.job_class, self.connection)
        #: The runs of the jobs read, from templates learnt from rq's own builds.
        self.templates = Templates()
        #: A job changed between read and fire: look again shortly (never spinning on one that stays stale).
        self.stale = False
        #: Per fire: the not-run lines logged, and the jobs and slots left to the summary line.
        self._drop_lines = 0
        self._unlogged = [0, 0]
        self._stale_streak = 0
        #: The soonest next slot of the slots just fired: it may come before anything a tick read.
        self.advanced_to: float | None = None
        #: The last fire found every fire paused registry-wide (`Registry.pause`); a resume's event wakes the loop.
        self.paused = False
        #: The Redis server's clock as of the last tick (never more than one round trip behind: an estimate
        #: of the server's time is never early).
        self._server_clock = ServerClock()
        #: When (the server's clock) quarantined jobs are next re-read, and from which entry.
        self._next_quarantine_retry = 0.0
        self._quarantine_offset = 0

    # -- reading ------------------------------------------------------------------------------------

    def tick(self, lookahead: float = 0.0, offset: int = 0) -> Tick:
        """Read the time, the change marker, the next score and the entries due (by now + ``lookahead``)."""
        clock = self.registry.clock
        tick, self.coming = store.tick(
            self.connection,
            now=None if clock is None else clock(),
            limit=self.batch_size,
            offset=offset,
            lookahead=lookahead,
            horizon=self.horizon,
        )
        if clock is None:
            self._server_clock.note(tick.now)
        return tick

    def estimated_now(self) -> float:
        """The server's time without asking it: the injected clock, or this host's corrected by the last tick."""
        clock = self.registry.clock
        if clock is not None:
            return clock()
        estimate = self._server_clock.estimate()
        return estimate if estimate is not None else time.monotonic()  # before the first tick: no reading

    def read_due(self, due: list[store.Due]) -> list[Read]:
        """The due entries of a tick as (job, score, revision read); unusable ones are quarantined or pruned."""
        readable: list[Read] = []
        missing: list[str] = []
        for entry in due:
            try:
                job_id = as_text(entry.id)
            except UnicodeDecodeError:
                # Not an id rediscron wrote (ids are text): drop the index entry, it can never fire.
                self.connection.zrem(keys.schedule(), entry.id)
                self.log.error("Removed an index entry that is not UTF-8 text: %r", entry.id)
                continue
            if not isinstance(entry.record, list):
                # tick.lua found another type of key where the hash should be.
                self.quarantine(job_id, "", CorruptJobError(job_id, f"{keys.job(job_id)} is a {entry.record}"))
                continue
            if not entry.record:
                missing.append(job_id)
                continue
            # Passed back to the fire script byte for byte, whatever it holds.
            revision = entry.revision or ""
            try:
                raw = dict(zip(entry.record[::2], entry.record[1::2], strict=True))
                readable.append((self._restore(job_id, raw), entry.score, revision))
            except CONNECTION_ERRORS:
                raise
            except Exception as exc:
                self.quarantine(job_id, revision, exc)
        store.prune(self.connection, missing)
        return readable

    def _restore(self, job_id: str, raw: dict[Any, Any]) -> RedisCronJob:
        """The job of a record: from the definition read before, if it is unchanged."""
        key = definition_key(raw)
        known = self._known.get(job_id)
        if known is not None and known[0] == key and type(known[1]) is self.registry.job_class:
            job = copy.copy(known[1])
            # What a caller might change in place is the copy's own.
            for name in ("args", "kwargs", "meta", "job_options"):
                setattr(job, name, copy.copy(getattr(job, name)))
            job._take_state(decode_state(raw, job_id))
            return job
        if self._shapes.job_class is not self.registry.job_class:
            self._shapes = ByShape(self.registry.job_class, self.connection)
        job = self._shapes.restore(raw, job_id)
        job._definition_key = key
        if known is None and len(self._known) >= KNOWN_LIMIT:
            del self._known[next(iter(self._known))]
        self._known[job_id] = (key, copy.copy(job))
        return job

    def forget_definitions(self) -> None:
        """Drop the cached definitions (and run templates): the next read of each job decodes it anew."""
        self._known.clear()
        self._shapes.clear()
        self.templates.clear()

    def queue_for(self, job: RedisCronJob) -> Queue:
        """The RQ queue a job's runs go to (one per queue name and classes, reused)."""
        spec = job.queue_spec()
        queue = self._queues.get(spec)
        if queue is None:
            queue = self._queues[spec] = job.make_queue(self.connection, self.registry.allow_import)
        return queue

    # -- firing -------------------------------------------------------------------------------------

    def prepare(
        self, job: RedisCronJob, score: str, revision: bytes | str, now: float, *, templated: bool = True
    ) -> enqueue.Slot | None:
        """The job's due slot ready to fire, or None (the job is quarantined) if it can't be built.

        ``templated=False``: its RQ job is built by rq (`Slot.rq_job`), not filled in from a template.
        """
        templates = self.templates if templated else None
        try:
            return enqueue.prepare(self.connection, self.queue_for(job), job, score, revision, now, templates)
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:
            self.quarantine(job.id, revision, exc)
            return None

    def fire_due(self, now: float, due: list[store.Due]) -> Batch:
        """Fire the due entries a tick read at ``now``; when they fill the tick, the entries due after them
        too (up to ``STREAMED_BATCHES`` fire scripts in all), each batch prepared while Redis runs the
        scripts sent before it."""
        self.stale = False
        self.advanced_to = None
        if not due or self.leadership.fence is None:
            return Batch([], False)
        entries = list(due)
        if len(due) >= self.batch_size:
            # One more read, before anything fires: both see the index as it was at ``now``.
            more, _coming = store.tick(
                self.connection, now=now, limit=self.batch_size * (STREAMED_BATCHES - 1), offset=len(due)
            )
            entries += [entry for entry in more.entries if float(entry.score) <= now]
        full = len(entries) >= self.batch_size * STREAMED_BATCHES
        batches = (entries[start : start + self.batch_size] for start in range(0, len(entries), self.batch_size))
        prepared = (
            slots
            for batch in batches
            if (
                slots := [
                    slot
                    for job, score, revision in self.read_due(batch)
                    if (slot := self.prepare(job, score, revision, now)) is not None
                ]
            )
        )
        return Batch(self._fire_stream(prepared, now, per_send=1)[0], full)

    def fire(self, slots: list[enqueue.Slot], now: float) -> list[RedisCronJob]:
        """Run the fire script for prepared slots, fenced by the lock; return the jobs enqueued."""
        return self._fire_stream([slots], now)[0]

    def _replicated(self, results: list[enqueue.Fired], acked: int | None) -> bool:
        """With ``wait_replicas``: whether the ``acked`` replicas (the ``WAIT`` sent after the fires, on
        their connection, 100 ms at most) are enough. A fire they do not have is lost if the master
        fails over now: said, counted, and its runs are not reported as fired (they are enqueued on
        this master all the same)."""
        wanted = self.leadership.wait_replicas
        runs = sum(outcome == enqueue.ENQUEUED for result in results for outcome in result.outcomes)
        if not wanted or not runs or acked is None or acked >= wanted:
            return True
        self.stats.unreplicated += runs
        self.log.warning(
            "%d run(s) enqueued but only %d of %d replica(s) acknowledged them within %d ms: a failover now "
            "could lose them (and a new leader run their slots again)",
            runs,
            acked,
            wanted,
            REPLICA_WAIT_MS,
            extra=fields("unreplicated", runs=runs, acked=acked, wanted=wanted),
        )
        return False

    def fire_batches(self, slots: list[enqueue.Slot], now: float) -> None:
        """`fire()` for any number of slots, ``batch_size`` per script, all in one round trip."""
        if slots:
            batches = (slots[start : start + self.batch_size] for start in range(0, len(slots), self.batch_size))
            self._fire_stream(batches, now)

    def _fire_stream(
        self, batches: Iterable[list[enqueue.Slot]], now: float, per_send: int = 5
    ) -> tuple[list[RedisCronJob], list[enqueue.Fired]]:
        """Fire ``batches`` (one fire script each) in one stream and account for them: the jobs enqueued,
        and what each script did."""
        fence = self.leadership.fence
        if fence is None:
            return [], []
        wanted = self.leadership.wait_replicas
        # Redis runs the scripts back to back, serving other clients in between; one WAIT follows them all.
        results, acked = enqueue.fire_batches(
            self.connection, fence, batches, now, per_send, (wanted, REPLICA_WAIT_MS) if wanted else None
        )
        replicated = self._replicated([result for _batch, result in results], acked)
        fired: list[RedisCronJob] = []
        for batch, result in results:
            fired += self.settle(batch, result, now, replicated)
            if self.leadership.fence is None:
                break  # the other batches found the lock gone too
        return fired, [result for _batch, result in results]

    def fire_read(self, read: Read, now: float) -> Job | None:
        """Fire the slot of one job read by a tick at ``now``; its RQ job, if enqueued now or before."""
        job, score, revision = read
        slot = self.prepare(job, score, revision, now, templated=False)
        if slot is None:
            return None
        _jobs, results = self._fire_stream([[slot]], now)
        outcomes = results[0].outcomes if results and results[0].held else []
        return slot.rq_job if outcomes and outcomes[0] in (enqueue.ENQUEUED, enqueue.ALREADY_ENQUEUED) else None

    def settle(
        self, slots: list[enqueue.Slot], result: enqueue.Fired, now: float, replicated: bool = True
    ) -> list[RedisCronJob]:
        """Account for what the fire script did with ``slots``; return the jobs enqueued (none when
        ``replicated`` is False: the replicas did not acknowledge them, see `_replicated`)."""
        if not result.held:
            self.log.warning(
                "Lock lost before enqueueing %d due slot(s); nothing enqueued",
                len(slots),
                extra=fields("lock_lost", scheduler=self.name, pending=len(slots)),
            )
            self.leadership.lost()
            return []
        self.paused = result.paused
        if result.paused:
            return []  # left due: after the resume, each job's catch-up policy decides
        outcomes = result.outcomes
        server_wide = self._refused(slots, outcomes, iter(result.refusals))
        # A job changed between read and fire: look again at once, but never spin on one that stays stale.
        self._stale_streak = self._stale_streak + 1 if enqueue.STALE in outcomes else 0
        self.stale = self.stale or 0 < self._stale_streak <= 3
        advanced = [
            float(s.next_score)
            for s, outcome in zip(slots, outcomes, strict=True)
            if outcome not in (enqueue.STALE, enqueue.DISABLED, enqueue.REFUSED, enqueue.FAILED_OUT)
            and s.next_score != ""
        ]
        if self.advanced_to is not None:
            advanced.append(self.advanced_to)  # an earlier batch of the same stream
        self.advanced_to = min(advanced) if advanced else None
        fired: list[RedisCronJob] = []
        self._drop_lines, self._unlogged = 0, [0, 0]
        for s, outcome in zip(slots, outcomes, strict=True):
            self._report(s, outcome, now)
            if outcome == enqueue.ENQUEUED and replicated:
                self.stats.fired += 1
                if s.job is not None:  # a run built ahead keeps no job to update
                    s.job.latest_enqueue_time = from_epoch(now)
                    s.job.next_enqueue_time = from_epoch(s.next_slot) if s.next_slot is not None else None
                    fired.append(s.job)
        self._summarise_drops()
        if server_wide is not None:
            if scripts.refused_by_acl(server_wide):
                raise NoPermissionError(
                    f"this user has no permissions to run one of the commands rq's enqueue sends "
                    f"(HSET, RPUSH, LPUSH, SADD, ZADD, EXPIRE, PERSIST...): {server_wide}"
                )
            raise ResponseError(server_wide)
        return fired

    def _summarise_drops(self) -> None:
        """One line for the jobs whose not-run slots this fire did not log one by one."""
        jobs, slots = self._unlogged
        if jobs and self.log.isEnabledFor(logging.WARNING):
            self.log.warning(
                "%d more cron job(s): %d slot(s) not run (only the first %d jobs are logged one by one per fire)",
                jobs,
                slots,
                DROP_LINES_PER_FIRE,
                extra=fields("missed_more", jobs=jobs, slots=slots),
            )

    def _refused(self, slots: list[enqueue.Slot], outcomes: list[enqueue.Outcome], reasons: Any) -> str | None:
        """Quarantine the jobs whose enqueue Redis refused for their own keys; the first refusal that
        concerns the server or this user instead (a failed pass: retried), if any."""
        server_wide: str | None = None
        for s, outcome in zip(slots, outcomes, strict=True):
            if outcome != enqueue.REFUSED:
                continue
            reason = next(reasons, "no reason given")
            if reason.startswith(_SERVER_WIDE_REFUSALS) or scripts.refused_by_acl(reason):
                server_wide = server_wide or reason
            else:
                problem = RediscronError(
                    f"Redis refused the enqueue of its run ({reason}); a key where rq writes (its queue, a "
                    "registry) has another type"
                )
                self.quarantine(s.owner.id, s.revision, problem)
        return server_wide

    def _report(self, s: enqueue.Slot, outcome: int, now: float) -> None:
        """Count and log what one fire did: runs, dropped slots, overlap skips, a job that has ended."""
        run, drop = s.plan.run, s.plan.drop
        job_id = s.owner.id
        # What each line says is built only if it is logged: a busy slot fires thousands of runs a second.
        warn, info = self.log.isEnabledFor(logging.WARNING), self.log.isEnabledFor(logging.INFO)
        if drop is not None and outcome not in (enqueue.STALE, enqueue.DISABLED, enqueue.REFUSED):
            self.stats.missed += drop.slots
            if warn:
                self._drop_lines += 1
                if self._drop_lines > DROP_LINES_PER_FIRE:  # the rest go into `_summarise_drops`'s line
                    self._unlogged[0] += 1
                    self._unlogged[1] += drop.slots
                else:
                    self.log.warning(
                        "Cron job %s: %s%d slot(s) from %s to %s not run (%s)",
                        job_id,
                        "" if drop.exact else "at least ",
                        drop.slots,
                        _time(drop.first),
                        _time(drop.last),
                        drop.reason,
                        extra=fields(
                            "missed",
                            job_id=job_id,
                            slots=drop.slots,
                            exact=drop.exact,
                            first=drop.first,
                            last=drop.last,
                            reason=drop.reason,
                        ),
                    )
        if outcome == enqueue.ENQUEUED and s.run is not None and run is not None:
            lag = max(0.0, now - run)
            self.stats.lag_histogram.observe(lag)
        if info and outcome == enqueue.ENQUEUED and s.run is not None and run is not None:
            self.log.info(
                "Enqueued %s (slot %s, %.3fs late) as %s on queue %s",
                job_id,
                _time(run),
                lag,
                s.run.rq_id,
                s.owner.queue_name,
                extra=fields(
                    "fire",
                    job_id=job_id,
                    slot=run,
                    lag=round(now - run, 6),
                    rq_job_id=s.run.rq_id,
                    queue=s.owner.queue_name,
                ),
            )
        elif info and outcome == enqueue.ALREADY_ENQUEUED and s.run is not None and run is not None:
            self.log.info(
                "Slot %s of %s was already enqueued as %s; moved on",
                _time(run),
                job_id,
                s.run.rq_id,
                extra=fields("already_enqueued", job_id=job_id, slot=run, rq_job_id=s.run.rq_id),
            )
        elif outcome == enqueue.FAILED_OUT and run is not None:
            self._failed_out(s, run, now)
        elif outcome == enqueue.OVERLAP_SKIPPED and run is not None:
            self.stats.overlap_skipped += 1
            self.log.info(
                "Cron job %s: slot %s skipped, its previous run is still queued or running (overlap=skip)",
                job_id,
                _time(run),
                extra=fields("overlap_skip", job_id=job_id, slot=run),
            )
        ran = outcome in (enqueue.ENQUEUED, enqueue.ALREADY_ENQUEUED)
        if (ran or outcome in (enqueue.DROPPED, enqueue.OVERLAP_SKIPPED)) and (
            s.next_score == "" or (s.plan.final and ran)
        ):
            why = f"it has run max_runs={s.owner.max_runs} times" if s.plan.final else "its end_time has passed"
            self.log.info("Cron job %s has ended: %s", job_id, why, extra=fields("ended", job_id=job_id, why=why))

    def _failed_out(self, s: enqueue.Slot, run: int, now: float) -> None:
        """A job the fire script disabled for failing: say so, and tell the ``on_disable`` hook."""
        owner = s.owner
        failures = owner.failures + 1
        self.stats.disabled_for_failing += 1
        self.log.warning(
            "Cron job %s disabled: its last %d runs failed (max_consecutive_failures=%s); slot %s not run",
            owner.id,
            failures,
            owner.max_failures,
            _time(run),
            extra=fields("failed_out", job_id=owner.id, failures=failures, slot=run),
        )
        if self.on_disable is not None:
            self.on_disable(
                {
                    "event": "disabled",
                    "id": owner.id,
                    "reason": "max_consecutive_failures",
                    "failures": failures,
                    "max_consecutive_failures": owner.max_failures,
                    "slot": _time(run),
                    "at": format_time(from_epoch(now)),
                    "scheduler": self.name,
                }
            )

    # -- quarantine ---------------------------------------------------------------------------------

    def quarantine(self, job_id: str, revision: bytes | str, exc: Exception) -> None:
        """Take a job out of the due range with the reason, unless its record changed since it was read."""
        message = exc.message if isinstance(exc, CorruptJobError) else f"{type(exc).__name__}: {exc}"
        # Stored for operators on other hosts: say whose view of the job this is.
        message = shorten(f"scheduler {self.name}: {message}", limits.MAX_ERROR_CHARS)
        if store.quarantine(self.connection, job_id, revision, message):
            self.stats.quarantined += 1
            self.log.error(
                "Quarantined cron job %r: %s (fix the record, or register() it again; the scheduler "
                "retries it every %.0fs, and enable() or delete() acts at once)",
                job_id,
                message,
                QUARANTINE_RETRY_INTERVAL,
                extra=fields("quarantine", job_id=job_id, error=message),
            )

    def retry_soon(self) -> None:
        """Re-read quarantined jobs at the next pass, from the first (a new leader's allow_import may differ)."""
        self._next_quarantine_retry = 0.0
        self._quarantine_offset = 0

    def retry_due(self) -> bool:
        """Whether it is time to re-read quarantined jobs (then the next time is set)."""
        now = self.estimated_now()
        if now < self._next_quarantine_retry:
            return False
        self._next_quarantine_retry = now + QUARANTINE_RETRY_INTERVAL
        return True

    def retry_quarantined(self) -> list[str]:
        """Re-read up to ``QUARANTINE_RETRY_BATCH`` quarantined jobs; lift the quarantine of those usable now.

        A job is usable again when its record reads and its next run can be built. It resumes
        at its next slot from now, without catching up. Returns the ids lifted.
        """
        raw = cast(
            list[Any],
            self.connection.zrangebyscore(
                keys.schedule(), "+inf", "+inf", start=self._quarantine_offset, num=QUARANTINE_RETRY_BATCH
            ),
        )
        self._quarantine_offset = self._quarantine_offset + len(raw) if len(raw) == QUARANTINE_RETRY_BATCH else 0
        ids = store.decode_ids(raw)[0]
        if not ids:
            return []
        with self.connection.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
            records = pipe.execute(raise_on_error=False)
        now = writes.now_of(self.connection, self.registry.clock)
        gone = [job_id for job_id, record in zip(ids, records, strict=True) if record == {}]
        if gone:
            # Never due (+inf), so never pruned by a pass: an entry whose record was deleted by hand goes here.
            store.prune(self.connection, gone)
        lifted: list[str] = []
        for job_id, record in zip(ids, records, strict=True):
            if isinstance(record, Exception) or not record:
                continue  # another type of key (still unusable), or gone (pruned above)
            if self._lift(job_id, record, now):
                lifted.append(job_id)
        return lifted

    def _lift(self, job_id: str, record: dict[Any, Any], now: float) -> bool:
        revision = record.get(b"revision") or record.get("revision") or ""
        try:
            job = self.registry.job_class.restore(record, self.connection, id=job_id)
            slot = job.first_slot(now)
            if slot is not None:
                # Everything a fire needs, short of firing: the queue, its classes, the RQ job.
                queue = self.queue_for(job)
                enqueue.record_enqueue(self.connection, queue, job.build_rq_job(queue, slot), job.at_front)
        except CONNECTION_ERRORS:
            raise
        except Exception:
            return False  # still unusable; its stored error stays
        entry = job._index_entry(slot)
        if not store.lift(self.connection, job_id, revision, entry):
            return False
        self.log.warning(
            "Cron job %r can be used again; quarantine lifted (next run %s)",
            job_id,
            entry.next_time or "none: it has ended",
            extra=fields("quarantine_lifted", job_id=job_id),
        )
        return True


def _time(slot: int) -> str:
    return format_time(from_epoch(slot))
