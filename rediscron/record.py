"""A job's stored record: the hash fields rediscron writes, and reading them back."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from rq.utils import as_text

from . import keys, limits
from .clock import Clock, epoch_of_time_reply, parse_time, to_epoch
from .definition import arguments_size
from .errors import CorruptJobError
from .fields import FIELDS, IMPORTED_FIELDS, same, whole_number
from .text import shorten

SCHEMA_VERSION = 1

#: The fields of a record a write reads first (to keep the job's rhythm, and to compare-and-set).
TIMING_FIELDS = ("interval", "next_enqueue_time", "latest_enqueue_time", "revision", "run_count")


@dataclass(frozen=True)
class StoredTiming:
    """The timing fields of a stored record, as slots (whole epoch seconds)."""

    interval: int | None
    next_slot: int | None
    latest: int | None
    #: Scheduled runs so far (for ``max_runs``).
    runs: int = 0

    @classmethod
    def parse(cls, interval: Any, next_time: Any, latest: Any, runs: Any = None) -> StoredTiming:
        def to_slot(value: Any) -> int | None:
            try:
                return slot_of(parse_time(as_text(value))) if value else None
            except ValueError:
                return None

        try:
            seconds = int(as_text(interval)) if interval else None
        except ValueError:
            seconds = None
        return cls(seconds, to_slot(next_time), to_slot(latest), counter(as_text(runs) if runs else None))


def read_timings(
    connection: Redis, ids: list[str], clock: Clock | None
) -> tuple[float, list[tuple[StoredTiming | None, str]]]:
    """Now (``clock``, else the server's), and each job's stored timing and revision, in one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.time()
        for job_id in ids:
            pipe.hmget(keys.job(job_id), *TIMING_FIELDS)
        replies = pipe.execute(raise_on_error=False)
    now = clock() if clock is not None else epoch_of_time_reply(replies[0])
    return now, [timing_of(stored) for stored in replies[1:]]


def timing_of(stored: Any) -> tuple[StoredTiming | None, str]:
    """The timing and revision of an HMGET of ``TIMING_FIELDS`` (None, "" if no record)."""
    if isinstance(stored, Exception):
        return None, ""  # not a hash: the write replaces it
    interval, next_time, latest, revision, runs = stored
    if revision is None:
        return None, ""
    return StoredTiming.parse(interval, next_time, latest, runs), as_text(revision)


def counter(text: str | None) -> int:
    """A count the scheduler keeps; an unreadable one reads as 0 rather than hiding the job."""
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 19 else 0


def drop_log(text: str | None) -> list[dict[str, Any]]:
    try:
        log = json.loads(text) if text else []
    except (ValueError, RecursionError):  # junk, or nested deeper than the parser goes: no log
        return []
    return [entry for entry in log if isinstance(entry, dict)] if isinstance(log, list) else []


def slot_of(moment: datetime | None) -> int | None:
    """Whole epoch second of a datetime (a slot), or None."""
    return math.floor(to_epoch(moment)) if moment is not None else None


#: What a record without each field reads as, and how each field is read (None: as the text it is).
_ABSENT = {name: field.absent for name, field in FIELDS.items() if name != "id"}
_DECODED = {name: None if field.decode is same else field.decode for name, field in FIELDS.items() if name != "id"}
_REQUIRED = tuple(name for name, field in FIELDS.items() if field.required and name != "id")


@dataclass
class Record:
    """A stored record, read: the definition as the job's constructor takes it, and what the scheduler keeps."""

    id: str
    func_name: str
    #: Keyword arguments of the job's constructor: queue, schedule, arguments, rq options, options.
    definition: dict[str, Any]
    #: The options naming code (callbacks, classes), as stored paths: never imported here.
    code: dict[str, Any]
    latest_enqueue_time: datetime | None
    next_enqueue_time: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    revision: int
    last_error: str | None
    run_count: int
    missed_count: int
    overlap_count: int
    consecutive_failures: int
    drop_log: list[dict[str, Any]]


#: What a record holds besides its definition: what the scheduler and the writes keep up to date.
#: A record read again with the same fields but these is the same definition (`definition_key`).
STATE_FIELDS = frozenset(
    {
        "latest_enqueue_time",
        "next_enqueue_time",
        "created_at",
        "updated_at",
        "revision",
        "last_error",
        "run_count",
        "missed_count",
        "overlap_count",
        "consecutive_failures",
        "drop_log",
    }
)
_STATE_KEYS = STATE_FIELDS | {name.encode() for name in STATE_FIELDS}


def definition_key(raw_data: Mapping[Any, Any]) -> tuple[Any, ...]:
    """What a stored record defines, as HGETALL gave it: equal for two reads of an unchanged definition."""
    return tuple(sorted((k, v) for k, v in raw_data.items() if k not in _STATE_KEYS))


#: The fields that tell the jobs of one shape apart: two records equal but for these (and their state)
#: are read alike but for these (`shape_key`, `decode_per_job`).
PER_JOB_FIELDS = ("id", "args", "kwargs", "meta")
_PER_JOB_KEYS = _STATE_KEYS | set(PER_JOB_FIELDS) | {name.encode() for name in PER_JOB_FIELDS}


def shape_key(raw_data: Mapping[Any, Any]) -> tuple[Any, ...]:
    """What a stored record defines but for `PER_JOB_FIELDS`, as HGETALL gave it."""
    return tuple(sorted((k, v) for k, v in raw_data.items() if k not in _PER_JOB_KEYS))


def decode_per_job(raw_data: Mapping[Any, Any], id: str) -> dict[str, Any]:
    """``args``, ``kwargs`` and ``meta`` of the record of job ``id``, read as `decode` reads them (the
    same checks, the same errors); the rest of the record is read from another job of its shape."""
    data = _text({k: v for k, v in raw_data.items() if k in _PER_JOB_KEYS and k not in _STATE_KEYS}, id)
    _check_id(data, id)
    _check_arguments_size(data, id)
    read = _reader(data, id)
    values: dict[str, Any] = {}
    for name in PER_JOB_FIELDS[1:]:
        decode = _DECODED[name]
        text = data.get(name, "")
        values[name] = _ABSENT[name] if text == "" else text if decode is None else read(name, decode)
    return values


def _check_id(data: Mapping[str, str], id: str | None) -> None:
    if id is not None and data.get("id") and data["id"] != id:
        # A copied or renamed hash: acting on the id inside it would touch another job.
        raise CorruptJobError(id, f"the record's id field says {data['id']!r}, but its key is {keys.job(id)}")


def _check_arguments_size(data: Mapping[str, str], job_id: str) -> None:
    size = arguments_size(data.get("args"), data.get("kwargs"), data.get("meta"))
    if size > limits.MAX_ARGUMENTS_BYTES:
        raise CorruptJobError(
            job_id,
            f"args, kwargs and meta take {size:,} bytes, over the limit of "
            f"{limits.MAX_ARGUMENTS_BYTES:,} (rediscron.limits.MAX_ARGUMENTS_BYTES)",
        )


def _text(raw_data: Mapping[Any, Any], id: str | None) -> dict[str, str]:
    try:
        return {as_text(k): as_text(v) for k, v in raw_data.items()}
    except UnicodeDecodeError as exc:
        raise CorruptJobError(id or "?", f"the record holds bytes that are not UTF-8 text ({exc})") from None


def _reader(data: dict[str, str], job_id: str) -> Callable[[str, Callable[[str], Any]], Any]:
    def read(name: str, parse: Callable[[str], Any]) -> Any:
        if name not in data or data[name] == "":
            return None
        try:
            return parse(data[name])
        except Exception as exc:
            shown = shorten(repr(data[name]), 120)
            raise CorruptJobError(job_id, f"field {name}={shown} is invalid: {exc}") from None

    return read


def decode_state(raw_data: Mapping[Any, Any], job_id: str) -> dict[str, Any]:
    """The `STATE_FIELDS` of a record, read (CorruptJobError says what is wrong), by attribute name."""
    return _state(_text({k: v for k, v in raw_data.items() if k in _STATE_KEYS}, job_id), job_id)


def _state(data: dict[str, str], job_id: str) -> dict[str, Any]:
    read = _reader(data, job_id)
    return {
        "latest_enqueue_time": read("latest_enqueue_time", parse_time),
        "next_enqueue_time": read("next_enqueue_time", parse_time),
        "created_at": read("created_at", parse_time),
        "updated_at": read("updated_at", parse_time),
        "revision": read("revision", whole_number) or 0,
        "last_error": data.get("last_error") or None,
        "run_count": counter(data.get("run_count")),
        "missed_count": counter(data.get("missed_count")),
        "overlap_count": counter(data.get("overlap_count")),
        "consecutive_failures": counter(data.get("consecutive_failures")),
        "drop_log": drop_log(data.get("drop_log")),
    }


def decode(raw_data: Mapping[Any, Any], id: str | None = None) -> Record:
    """Read a record (HGETALL's reply) without importing anything; CorruptJobError says what is wrong.

    ``id``: the id its key names (a record whose own id field says otherwise is refused).
    """
    data = _text(raw_data, id)
    job_id = data.get("id") or id
    if not job_id:
        raise CorruptJobError(id or "?", "the record has no id field")
    _check_id(data, id)
    read = _reader(data, job_id)
    try:
        version = int(data.get("schema_version") or SCHEMA_VERSION)
    except ValueError:
        raise CorruptJobError(job_id, f"bad schema_version {data.get('schema_version')!r}") from None
    if version > SCHEMA_VERSION:
        raise CorruptJobError(job_id, f"written by a newer rediscron (schema {version} > {SCHEMA_VERSION})")
    for name in _REQUIRED:
        if not data.get(name):
            raise CorruptJobError(job_id, f"the record has no {name} field")

    _check_arguments_size(data, job_id)
    values = dict(_ABSENT)
    for name in _DECODED.keys() & data.keys():
        if data[name] != "":
            decode = _DECODED[name]
            values[name] = data[name] if decode is None else read(name, decode)
    # Paths to user code are imported when a run is built, not here: listings work on any host.
    code = {name: values.pop(name) for name in IMPORTED_FIELDS if values[name] is not None}
    func_name = values.pop("func_name")
    return Record(id=job_id, func_name=func_name, definition=values, code=code, **_state(data, job_id))
