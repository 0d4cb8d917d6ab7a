"""Schedules as code: export the registry to a file, and apply a file (or rq's own cron config) to it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from redis import Redis
from redis.exceptions import NoPermissionError, RedisError

from . import keys, writes
from .errors import InvalidJobError, RediscronError
from .fields import FIELDS, Field
from .job import RedisCronJob
from .options import labelled
from .registry import load_jobs
from .schedule import validate_timezone
from .store import SortedIds, batched_ids, decode_ids
from .store import delete as delete_job
from .text import has_control, json_stream, to_json

FORMAT_VERSION = 1
#: The keys of an entry, in the order files show them.
FILE_KEYS = tuple(field.key for field in FIELDS.values())


class SyncError(RediscronError, ValueError):
    """A schedules file cannot be read or applied (the message says whether anything was written)."""


class ApplyInterrupted(RediscronError):
    """Redis failed while ``apply`` wrote (the message says how far it got); running it again finishes."""


def entry_of(job: RedisCronJob) -> dict[str, Any]:
    """The file form of a job: only what defines it, nothing the scheduler owns; defaults left out."""
    entry: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        value = getattr(job, name)
        if spec.in_every_file or not _is_default(spec, value):
            entry[spec.key] = _to_file(value)
    return entry


def _is_default(spec: Field, value: Any) -> bool:
    if spec.default is None:
        return value is None or (spec.json is not None and not value)  # no args is the default args
    return bool(value == spec.default)


def _to_file(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return list(value) if isinstance(value, tuple) else value


def export(connection: Redis) -> dict[str, Any]:
    """Every readable job, sorted by id, in the file form; unreadable records are listed apart."""
    unreadable: dict[str, str] = {}
    jobs = [entry for page in export_pages(connection, unreadable) for entry in page]
    document: dict[str, Any] = {"version": FORMAT_VERSION, "jobs": jobs}
    if unreadable:
        document["unreadable"] = unreadable
    return document


def export_pages(
    connection: Redis, unreadable: dict[str, str], size: int = 1000, labels: Mapping[str, str] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The file form of every readable job (with ``labels``, if given), sorted by id, a page at a time; the
    records that cannot be read are added to ``unreadable`` (id: reason) as they are met."""
    ids = SortedIds(connection)
    unreadable.update({job_id: "the id is not UTF-8 text" for job_id in ids.bad})
    for part in batched_ids(ids, size):
        jobs, invalid, _missing = load_jobs(connection, [each.decode() for each in part])
        unreadable.update(invalid)
        yield [entry_of(job) for job in jobs if labelled(job.labels, labels)]


def dump_stream(
    connection: Redis,
    fmt: str,
    unreadable: dict[str, str],
    page_size: int = 1000,
    labels: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """`dump(export(connection), fmt)` in pieces, a page of jobs at a time: memory stays bounded
    (the ids, and one page) however many jobs there are."""
    pages = export_pages(connection, unreadable, page_size, labels)
    if fmt == "json":
        yield from json_stream({"version": FORMAT_VERSION}, "jobs", pages, lambda: _unreadable(unreadable), indent=2)
        yield "\n"
        return
    yield f"version: {FORMAT_VERSION}\n"
    first = True
    for page in pages:
        if page:
            yield ("jobs:\n" if first else "") + dump(page, fmt)
            first = False
    if first:
        yield "jobs: []\n"
    if unreadable:
        yield dump({"unreadable": unreadable}, fmt)


def _unreadable(unreadable: dict[str, str]) -> dict[str, Any]:
    return {"unreadable": unreadable} if unreadable else {}


def dump(document: Any, fmt: str) -> str:
    """Serialise an exported document (or a part of one) as ``json`` or ``yaml``."""
    if fmt == "json":
        return to_json(document, indent=2) + "\n"
    yaml = _yaml()
    text = str(yaml.safe_dump(document, sort_keys=False, default_flow_style=None, allow_unicode=True))
    if has_control(text):
        # YAML writes bidi overrides and C1 controls raw; escaped, they cannot reorder a terminal's text.
        text = str(yaml.safe_dump(document, sort_keys=False, default_flow_style=None, allow_unicode=False))
    return text


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise SyncError("YAML needs PyYAML: pip install 'rediscron[yaml]' (or use JSON)") from None
    return yaml


# -- reading files -------------------------------------------------------------------------------


def load(path: str, rq_timezone: str | None = None) -> list[dict[str, Any]]:
    """The entries of a schedules file (.json, .yaml/.yml) or of an rq cron config (.py file or module).

    ``rq_timezone``: the zone an rq cron config's cron expressions are read in (default: what
    this rq does, UTC for rq 2 and this host's zone for rq 3).
    """
    if path.endswith(".py") or (not Path(path).exists() and Path(path).suffix not in (".json", ".yaml", ".yml")):
        return _load_rq_config(path, rq_timezone)
    if rq_timezone is not None:
        raise SyncError(f"{path}: --timezone is for rq cron configs; a schedules file gives each job's timezone")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SyncError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SyncError(f"{path} is not UTF-8 text") from None
    is_yaml = file.suffix in (".yaml", ".yml")
    try:
        document = _yaml().safe_load(text) if is_yaml else json.loads(text)
    except SyncError:
        raise
    except Exception as exc:
        raise SyncError(f"{path} is not valid {'YAML' if is_yaml else 'JSON'}: {exc}") from None
    if isinstance(document, list):
        jobs = document
    elif isinstance(document, dict) and isinstance(document.get("jobs"), list):
        # An export's "unreadable" section lists records that could not be exported; nothing to apply.
        version = document.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise SyncError(f"{path}: unsupported version {version!r} (this rediscron reads {FORMAT_VERSION})")
        jobs = document["jobs"]
    else:
        raise SyncError(f"{path}: expected a list of jobs, or an object with a 'jobs' list")
    for number, entry in enumerate(jobs, 1):
        if not isinstance(entry, dict):
            raise SyncError(f"{path}: job #{number} is not an object")
        unknown = set(entry) - set(FILE_KEYS)
        if unknown:
            raise SyncError(f"{path}: job #{number} ({entry.get('id', '?')}): unknown field(s) {sorted(unknown)}")
    return cast(list[dict[str, Any]], jobs)


def _rq_reads_cron_in_local_time() -> bool:
    """rq 3 reads cron expressions in the host's local time; rq 2 read them in UTC."""
    return int(metadata.version("rq").split(".")[0]) >= 3


def host_zone() -> str | None:
    """The IANA name of this host's local time zone, or None if it has none known here.

    From $TZ when set (``Area/City`` or ``:Area/City``), else from /etc/localtime. A $TZ
    that names no IANA zone (a POSIX rule such as ``JST-9``, a file path) raises ValueError.
    """
    tz = os.environ.get("TZ")
    if tz is not None:
        name = tz.lstrip(":")
        if name == "":
            return "UTC"  # an empty TZ means UTC to the C library
        if "/zoneinfo/" in name:
            name = name.split("/zoneinfo/", 1)[1]
        try:
            return validate_timezone(name)
        except ValueError:
            raise ValueError(f"TZ={tz!r} names no IANA time zone") from None
    with contextlib.suppress(OSError):
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            with contextlib.suppress(ValueError):
                return validate_timezone(target.split("zoneinfo/", 1)[1])
    return None


def _same_offsets_as_local_time(zone: str) -> bool:
    """Whether ``zone`` gives this host's local UTC offsets now and half a year from now."""
    now = time.time()
    local = [timedelta(seconds=time.localtime(moment).tm_gmtoff) for moment in (now, now + 182 * 86400)]
    return [datetime.fromtimestamp(moment, ZoneInfo(zone)).utcoffset() for moment in (now, now + 182 * 86400)] == local


def _rq_cron_zone(path: str) -> str | None:
    """The time zone that keeps an rq cron config's expressions meaning what they meant to rq."""
    if not _rq_reads_cron_in_local_time():
        return None
    if hasattr(time, "tzset"):
        time.tzset()  # local time as $TZ says now, as a fresh process (rq's) would see it
    advice = "pass --timezone with the zone of the host that ran `rq cron`"
    try:
        zone = host_zone()
    except ValueError as exc:
        raise SyncError(f"{path}: rq 3 reads cron in the host's local time, but {exc}; {advice}") from None
    if zone is None and _same_offsets_as_local_time("UTC"):
        return None  # local time is UTC, rediscron's default
    if zone is None or not _same_offsets_as_local_time(zone):
        raise SyncError(
            f"{path}: rq 3 reads cron in the host's local time, whose IANA zone is not known here; {advice}"
        )
    return None if zone in ("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu") else zone


def _load_rq_config(path: str, zone: str | None = None) -> list[dict[str, Any]]:
    """Entries from an rq cron config (a module calling ``rq.cron.register(...)``).

    Cron entries get the host's time zone when this rq reads cron in local time, so they
    keep firing at the hours they did under ``rq cron``.
    """
    from rq.cron import CronScheduler

    class Collector(CronScheduler):
        def __init__(self) -> None:
            self.collected: list[dict[str, Any]] = []
            self.config_file = ""
            import logging

            # rq logs a failed load before raising; the one message the user sees is ours.
            self.log = logging.getLogger("rediscron.sync.rq_config")
            self.log.propagate = False
            self.log.addHandler(logging.NullHandler())

        def register(self, **data: Any) -> None:  # type: ignore[override]
            self.collected.append(data)

    collector = Collector()
    try:
        collector.load_config_from_file(path)
    except SystemExit as exc:
        raise SyncError(
            f"cannot load rq cron config {path}: it called sys.exit({exc.code!r}) while being imported"
        ) from None
    except Exception as exc:
        raise SyncError(f"cannot load rq cron config {path}: {exc}") from None
    entries = []
    if zone is not None:
        try:
            zone = validate_timezone(zone)
        except ValueError as exc:
            raise SyncError(f"--timezone: {exc}") from None
    elif any(data.get("cron") for data in collector.collected):
        zone = _rq_cron_zone(path)
    for data in collector.collected:
        func = data["func"]
        func_name = f"{func.__module__}.{func.__qualname__}"
        entry: dict[str, Any] = {"id": data.get("name") or func_name, "func": func_name, "queue": data["queue_name"]}
        for name, value in data.items():
            if name in FIELDS and FIELDS[name].key not in entry and value is not None:
                entry[name] = list(value) if name == "args" else value
        if zone is not None and data.get("cron"):
            entry["timezone"] = zone
        entries.append(entry)
    return entries


# -- planning and applying ------------------------------------------------------------------------


@dataclass
class Plan:
    """What ``apply`` would do."""

    create: list[RedisCronJob] = field(default_factory=list)
    update: list[tuple[RedisCronJob, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Of the unchanged, those made otherwise (by hand, in code) that the file now takes over.
    adopt: list[str] = field(default_factory=list)
    prune: list[str] = field(default_factory=list)
    #: Ids an earlier apply wrote that are gone already (deleted otherwise): only forgotten.
    forget: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [f"+ {job.id}: create ({job.describe_schedule()} on {job.queue_name})" for job in self.create]
        for job, changes in self.update:
            detail = "; ".join(f"{name} {json.dumps(old)} -> {json.dumps(new)}" for name, (old, new) in changes.items())
            lines.append(f"~ {job.id}: {detail}")
        lines += [
            f"= {job_id}: unchanged, made otherwise; from now on defined by this file (a later "
            "`apply --prune` of a file without it deletes it)"
            for job_id in self.adopt
        ]
        lines += [
            f"- {job_id}: delete (an earlier apply wrote or took it over; gone from the file)" for job_id in self.prune
        ]
        adopted = f" ({len(self.adopt)} taken over)" if self.adopt else ""
        lines.append(
            f"{len(self.create)} to create, {len(self.update)} to update, {len(self.prune)} to delete, "
            f"{len(self.unchanged)} unchanged{adopted}"
        )
        return lines


def _exist_many(connection: Redis, ids: list[str]) -> list[bool]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.exists(keys.job(job_id))
        return [bool(x) for x in pipe.execute()]


def _job_from_entry(entry: dict[str, Any], connection: Redis, number: int) -> RedisCronJob:
    job_id = entry.get("id")
    where = job_id if isinstance(job_id, str) else f"#{number}"
    values: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        if spec.key not in entry:
            if spec.required and name != "id":  # no id: the job's own check says so
                raise InvalidJobError(where, spec.key, "is missing")
            continue
        value = entry[spec.key]
        if spec.moment and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidJobError(where, name, f"{value!r} is not an ISO 8601 time") from None
        values[name] = value
    return RedisCronJob(func=values.pop("func_name"), connection=connection, **values)


def plan(connection: Redis, entries: list[dict[str, Any]], prune: bool = False) -> Plan:
    """Validate every entry (all or nothing) and compare it with what is stored. Only reads.

    What ``--dry-run`` prints; `apply()` carries out exactly this plan.
    """
    if prune and not entries:
        raise SyncError(
            "the file lists no jobs: --prune would delete every job an earlier apply created; "
            "refusing (delete them with `rqrcron rm` if that is what you want)"
        )
    wanted: list[tuple[RedisCronJob, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        job = _job_from_entry(entry, connection, number)
        if job.id in seen:
            raise SyncError(f"job id {job.id!r} appears twice in the file; give each job its own id (or rq name=)")
        seen.add(job.id)
        wanted.append((job, entry))
    stored_jobs, invalid, _ = load_jobs(connection, sorted(seen))
    stored = {job.id: entry_of(job) for job in stored_jobs}
    result = Plan()
    for job, entry in wanted:
        new = entry_of(job)
        if "enabled" not in entry and job.id in stored:
            new["enabled"] = stored[job.id]["enabled"]  # a file that does not say keeps the state
        old = stored.get(job.id)
        if old is None:
            result.create.append(job)
            continue
        changes = {key: (old.get(key), new.get(key)) for key in FILE_KEYS if old.get(key) != new.get(key)}
        if changes or job.id in invalid:
            result.update.append((job, changes))
        else:
            result.unchanged.append(job.id)
    owned = set(decode_ids(cast(set[Any], connection.smembers(keys.applied())))[0])
    result.adopt = [job_id for job_id in result.unchanged if job_id not in owned]
    if prune:
        applied = sorted(owned)
        gone = [job_id for job_id in applied if job_id not in seen]
        result.prune = [job_id for job_id, there in zip(gone, _exist_many(connection, gone), strict=True) if there]
        result.forget = sorted(set(gone) - set(result.prune))
    return result


def apply(connection: Redis, entries: list[dict[str, Any]], prune: bool = False) -> Plan:
    """Make the registry match ``entries``; every entry is validated before anything is written.

    Each job written is marked as defined by a file, in the same atomic step; a later write
    by any other means (``register()``, ``rqrcron add``) releases it, so ``--prune`` deletes
    only jobs whose current definition came from a file.
    """
    todo = plan(connection, entries, prune)
    explicit = {e.get("id") for e in entries if "enabled" in e}
    written: list[str] = []
    try:
        for job in [*todo.create, *(job for job, _ in todo.update)]:
            state = ("1" if job.enabled else "0") if job.id in explicit else ""
            writes.write(job, enabled=state, source="file")
            written.append(job.id)
        if todo.unchanged:
            # The same definition as stored: from now on it is the file's.
            connection.sadd(keys.applied(), *todo.unchanged)
        if todo.forget:
            connection.srem(keys.applied(), *todo.forget)  # deleted meanwhile: nothing to prune
        for job_id in todo.prune:
            delete_job(connection, job_id)
    except NoPermissionError:
        raise  # an ACL refusal: running apply again would not help; the CLI names the right
    except RedisError as exc:
        raise ApplyInterrupted(
            f"Redis failed after {len(written)} of {len(todo.create) + len(todo.update)} job(s) "
            f"were written ({exc}); run apply again to finish"
        ) from None
    return todo
