"""Every field of a job's definition, declared once.

`FIELDS` says, for each field, its default, how it is checked, how it is stored in the job's
hash and read back, whether a change of it moves the next run, and how a schedules file
names it. The job's validation (`definition`), its record (`record`), ``register_many()``,
``rqrcron export``/``apply`` (`sync`) and ``rqrcron add`` are derived from it; the
signatures of ``RedisCronJob()`` and ``register()`` are held to it by a test
(tests/unit/test_fields.py). Adding a field means adding it here, to those two signatures,
and (if it is an rq argument) to `RedisCronJob.build_rq_job`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rq.job import Job
from rq.queue import Queue

from . import limits
from .clock import format_time, parse_time
from .errors import InvalidJobError
from .imports import is_dotted
from .options import (
    CATCHUP_MODES,
    OVERLAP_MODES,
    check_callback,
    check_flag,
    check_jitter,
    check_labels,
    check_max_runs,
    check_moment,
    check_retry,
    check_seconds,
    check_serializer,
    check_subclass,
    check_text,
    check_timezone,
    check_webhooks,
    choice,
)
from .schedule import MAX_INTERVAL, validate_cron, validate_interval
from .text import encodable, has_control

#: rq's default ``result_ttl`` for a run (seconds), as rq's ``CronJob`` has it.
DEFAULT_RESULT_TTL = 500

Check = Callable[[Any, str, str], Any]


def same(value: Any) -> Any:
    """The value as it is (a field stored and read back as its text)."""
    return value


# -- codecs: a field's value as stored, and back ----------------------------------------------------


def dump_json(value: Any) -> str:
    """Compact JSON, as every JSON field is stored."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def load_json(text: str) -> Any:
    """JSON as stored; refused if it holds text that is not valid Unicode (a ``\\ud800`` escape)."""
    value = json.loads(text)
    if _SURROGATE_ESCAPE.search(text):  # only then can it decode to a lone surrogate
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def _json_list(text: str) -> list[Any]:
    value = load_json(text)
    if not isinstance(value, list):
        raise ValueError("not a JSON list")
    return value


def _json_object(text: str) -> dict[str, Any]:
    value = load_json(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _labels(text: str) -> dict[str, str]:
    value = _json_object(text)
    if not all(isinstance(v, str) for v in value.values()):
        raise ValueError("label values are not all text")
    return value


def whole_number(text: str) -> int:
    """Only what rediscron writes: ASCII digits with an optional minus sign."""
    if not re.fullmatch(r"-?[0-9]{1,18}", text):
        raise ValueError("not a whole number")
    return int(text)


def flag(text: str) -> bool:
    """``1`` or ``0``."""
    if text not in ("0", "1"):
        raise ValueError("expected 1 or 0")
    return text == "1"


def _dotted(text: str) -> str:
    # Never imported here (the worker imports it); only its shape is checked.
    if not is_dotted(text):
        raise ValueError("not a dotted path like 'package.module.function'")
    return text


def _encode_callback(value: str | dict[str, Any]) -> str:
    return value if isinstance(value, str) else dump_json(value)


def _decode_callback(text: str) -> str | dict[str, Any]:
    return load_json(text) if text.startswith("{") else text


# -- checks of rq's own fields (the options have theirs in `options`) -------------------------------

_BAD_NAME_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def validate_id(job_id: object, _job_id: str | None = None, _field: str = "id") -> str:
    """Return ``job_id`` if it can name a cron job, else raise InvalidJobError.

    Any non-empty text of at most ``limits.MAX_ID_LENGTH`` (200) characters without control
    characters (spaces are fine: ids are often derived from names), not ending in ``:jobs``.
    """
    if job_id is None:
        raise InvalidJobError(None, "id", "is required: every cron job has a stable id (rq's name= is taken as one)")
    if not isinstance(job_id, str) or not job_id:
        raise InvalidJobError(None, "id", f"must be a non-empty string, not {job_id!r}")
    if len(job_id) > limits.MAX_ID_LENGTH:
        raise InvalidJobError(job_id[:40] + "...", "id", f"is longer than {limits.MAX_ID_LENGTH} characters")
    if has_control(job_id):
        raise InvalidJobError(job_id, "id", "must not contain control characters (tab, newline, ESC...)")
    if not encodable(job_id):
        raise InvalidJobError(None, "id", f"{job_id!r} is not valid Unicode text (lone surrogates)")
    if job_id.endswith(":jobs"):
        # rq >= 2.9 keeps cron history at {prefix}:cron_job:{name}:jobs; refuse rather than collide.
        raise InvalidJobError(job_id, "id", "must not end with ':jobs' (reserved by rq's cron history keys)")
    return job_id


def _checked_apart(value: Any, _job_id: str, _field: str) -> Any:
    """For ``func_name``, checked with ``func`` apart from the other fields (`definition.normalise`)."""
    return value


def _check_queue_name(value: Any, job_id: str, field: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or _BAD_NAME_CHARS.search(value)
        or has_control(value)
        or not encodable(value)
    ):
        raise InvalidJobError(job_id, field, f"must be a non-empty name without spaces, not {value!r}")
    if len(value) > limits.MAX_ID_LENGTH:
        raise InvalidJobError(job_id, field, f"is longer than {limits.MAX_ID_LENGTH} characters")
    return value


def _check_schedule(validate: Callable[[Any], Any]) -> Check:
    def check(value: Any, job_id: str, field: str) -> Any:
        if value is None:
            return None
        try:
            return validate(value)
        except ValueError as exc:
            raise InvalidJobError(job_id, field, str(exc)) from None

    return check


def _check_args(value: Any, job_id: str, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, (tuple, list)):
        raise InvalidJobError(job_id, field, f"must be a tuple or list, not {type(value).__name__}")
    return list(value)


def _check_kwargs(value: Any, job_id: str, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidJobError(job_id, field, "must be a dict with string keys")
    return value


def _check_meta(value: Any, job_id: str, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidJobError(job_id, field, "must be a dict with string keys or None")
    if any(key.startswith("rediscron_") for key in value):
        raise InvalidJobError(job_id, field, "keys starting with 'rediscron_' are reserved for rediscron")
    return value


#: Smallest value each rq option accepts; -1 means "forever" where rq allows it.
_INT_MINIMUM = {"job_timeout": -1, "result_ttl": -1, "ttl": 1, "failure_ttl": -1}
_INT_ALLOWED = {
    "job_timeout": "-1 (no limit) or a positive number",
    "ttl": "a positive number",
    "result_ttl": "-1 (forever), 0 or a positive number",
    "failure_ttl": "-1 (forever), 0 or a positive number",
}


def _check_seconds_or_forever(value: Any, job_id: str, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobError(job_id, field, f"must be a whole number of seconds or None, not {value!r}")
    if value > MAX_INTERVAL:
        raise InvalidJobError(job_id, field, f"must be at most {MAX_INTERVAL} seconds (100 years), not {value}")
    if value < _INT_MINIMUM[field] or (field == "job_timeout" and value == 0):
        raise InvalidJobError(job_id, field, f"must be {_INT_ALLOWED[field]}, not {value}")
    return value


def _check_enabled(value: Any, job_id: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidJobError(job_id, field, f"must be True or False, not {value!r}")
    return value


# -- the declaration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One field of a job's definition."""

    name: str
    #: The default of ``RedisCronJob()`` and ``register()``.
    default: Any
    #: ``(value, job_id, field) -> value``, normalised; InvalidJobError names the job and the field.
    check: Check
    #: The value as stored in the job's hash (a string, or an int redis-py sends as one), and back.
    encode: Callable[[Any], Any] = same
    decode: Callable[[str], Any] = same
    #: A change of it moves the next run (else an edit keeps the job's next run).
    schedule: bool = False
    #: One of rediscron's options (stored only when not the default); else one of rq's ``CronJob`` fields
    #: (stored unless None).
    option: bool = False
    #: JSON data; the value after its JSON round trip (a tuple for ``args``).
    json: Callable[[Any], Any] | None = None
    #: Names user code by dotted path: read back as the path, never imported by whoever reads it.
    code: bool = False
    #: Its key in a schedules file (``rqrcron export``/``apply``), whether a file always has it, and
    #: whether it is a moment (ISO 8601 text in files).
    file_key: str = ""
    in_every_file: bool = False
    moment: bool = False
    #: A record without it cannot be read (a record's absent field otherwise reads as None, or as
    #: the option's default).
    required: bool = False
    #: What it is, in a few words (``rqrcron add --help``, docs).
    doc: str = ""

    @property
    def key(self) -> str:
        """The field's key in a schedules file."""
        return self.file_key or self.name

    @property
    def absent(self) -> Any:
        """What a record without the field reads as: an option's default (records older than the option,
        and defaults are not stored), True for ``enabled``, else None."""
        return self.default if self.option or self.name == "enabled" else None

    def stored(self, value: Any) -> bool:
        """Whether the record holds the field for ``value`` (else the field is absent)."""
        return value is not None and not (self.option and value == self.default)


def _declare(*fields: Field) -> dict[str, Field]:
    return {field.name: field for field in fields}


def _callback(name: str, when: str) -> Field:
    doc = f'Function the worker calls when a run {when}: a dotted path, or {{"func": PATH, "timeout": SECONDS}}.'
    return Field(name, None, check_callback, _encode_callback, _decode_callback, option=True, code=True, doc=doc)


def _moment(name: str, doc: str) -> Field:
    return Field(name, None, check_moment, format_time, parse_time, schedule=True, option=True, moment=True, doc=doc)


def _rq_seconds(name: str, default: int | None, doc: str) -> Field:
    return Field(name, default, _check_seconds_or_forever, decode=whole_number, doc=doc)


#: Every field, in the order schedules files show them.
FIELDS: dict[str, Field] = _declare(
    Field("id", None, validate_id, required=True, in_every_file=True, doc="The job's stable id."),
    Field(
        "func_name",
        None,
        _checked_apart,
        decode=_dotted,
        file_key="func",
        required=True,
        in_every_file=True,
        doc="The function each run calls, by dotted path.",
    ),
    Field(
        "queue_name",
        "",
        _check_queue_name,
        file_key="queue",
        required=True,
        in_every_file=True,
        doc="The RQ queue the runs go to.",
    ),
    Field(
        "interval",
        None,
        _check_schedule(validate_interval),
        decode=whole_number,
        schedule=True,
        doc="Seconds between runs.",
    ),
    Field(
        "cron",
        None,
        _check_schedule(validate_cron),
        schedule=True,
        doc="Cron expression (5 fields, or 6 with seconds).",
    ),
    Field("args", None, _check_args, dump_json, _json_list, json=tuple, doc="Positional arguments (JSON list)."),
    Field("kwargs", None, _check_kwargs, dump_json, _json_object, json=same, doc="Keyword arguments (JSON object)."),
    Field("meta", None, _check_meta, dump_json, load_json, json=same, doc="RQ job meta (JSON object)."),
    _rq_seconds("job_timeout", None, "RQ job timeout (seconds; -1: none)."),
    _rq_seconds("result_ttl", DEFAULT_RESULT_TTL, "How long rq keeps a run's result (0: not kept, -1: forever)."),
    _rq_seconds("ttl", None, "How long a run may wait in its queue."),
    _rq_seconds("failure_ttl", None, "How long rq keeps a failed run."),
    Field(
        "enabled",
        True,
        _check_enabled,
        lambda value: 1 if value else 0,
        flag,
        in_every_file=True,
        doc="Whether the scheduler runs it.",
    ),
    Field(
        "timezone", "UTC", check_timezone, schedule=True, option=True, doc="IANA time zone the cron fields are read in."
    ),
    Field(
        "misfire_grace_time",
        None,
        check_seconds,
        decode=whole_number,
        option=True,
        doc="A slot later than this many seconds never runs.",
    ),
    Field("catchup", "coalesce", choice(CATCHUP_MODES), option=True, doc="What runs after missed slots."),
    Field(
        "overlap",
        "allow",
        choice(OVERLAP_MODES),
        option=True,
        doc="Skip a slot while the previous run is queued or running.",
    ),
    Field(
        "jitter",
        0,
        check_jitter,
        decode=whole_number,
        schedule=True,
        option=True,
        doc="Spread runs by up to this many seconds.",
    ),
    _moment("start_time", "No run before this moment (ISO 8601 with a zone)."),
    _moment("end_time", "No run after this moment (ISO 8601 with a zone)."),
    Field(
        "max_runs",
        None,
        check_max_runs,
        decode=whole_number,
        schedule=True,
        option=True,
        doc="Stop after this many scheduled runs.",
    ),
    Field(
        "max_consecutive_failures",
        None,
        check_max_runs,
        decode=whole_number,
        option=True,
        doc="Disable the job once this many of its runs in a row have failed (found at its next slot).",
    ),
    Field("description", None, check_text, option=True, doc="RQ job description."),
    Field(
        "labels",
        None,
        check_labels,
        dump_json,
        _labels,
        option=True,
        doc='Labels to select jobs by: {"team": "billing"} (info, export, enable, disable, trigger --label).',
    ),
    Field(
        "retry",
        None,
        check_retry,
        dump_json,
        load_json,
        option=True,
        doc='Retries of a failed run: a number, or {"max": n, "interval": [seconds...]}.',
    ),
    Field(
        "at_front",
        False,
        check_flag,
        lambda value: "1",
        flag,
        option=True,
        doc="Enqueue the runs at the front of the queue.",
    ),
    _callback("on_success", "succeeds"),
    _callback("on_failure", "fails"),
    _callback("on_stopped", "is stopped"),
    Field("queue_class", None, check_subclass(Queue), option=True, code=True, doc="RQ Queue class (dotted path)."),
    Field("job_class", None, check_subclass(Job), option=True, code=True, doc="RQ Job class (dotted path)."),
    Field("serializer", None, check_serializer, option=True, code=True, doc="RQ serializer (dotted path)."),
    Field(
        "webhooks",
        None,
        check_webhooks,
        dump_json,
        load_json,
        option=True,
        doc="rq webhooks (a JSON list of Webhook.to_dict() forms).",
    ),
)

#: rediscron's options, by name.
OPTIONS = {name: field for name, field in FIELDS.items() if field.option}
#: The fields whose change moves the next run; an edit of anything else keeps it.
SCHEDULE_FIELDS = tuple(name for name, field in FIELDS.items() if field.schedule)
#: The definition's fields a save writes (the enabled state is written apart from them).
DEFINITION_FIELDS = tuple(name for name in FIELDS if name != "enabled")
#: Fields that name user code: read back as dotted paths, imported only when a run is built (the
#: classes, through an import allowlist) or by the worker (the callbacks).
IMPORTED_FIELDS = tuple(name for name, field in FIELDS.items() if field.code)
#: Of those, the ones a run is built with (the others travel to the worker by path).
CODE_OPTIONS = ("queue_class", "job_class", "serializer")


def encode(
    values: Mapping[str, Any], texts: Mapping[str, str] | None = None, names: Iterable[str] = FIELDS
) -> dict[str, Any]:
    """The hash fields of checked ``values`` (a field whose value is not stored is left out).

    ``texts``: JSON fields already encoded (by the check), used as they are. ``names``: only these fields.
    """
    texts = texts or {}
    return {
        name: texts[name] if name in texts else FIELDS[name].encode(value)
        for name in names
        if FIELDS[name].stored(value := values[name])
    }
