"""A job's definition checked: every field validated and normalised, naming the job and the field on error."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import limits
from .errors import InvalidJobError
from .imports import callable_path, check_func_name
from .options import check_options
from .schedule import MAX_INTERVAL, validate_cron, validate_interval
from .text import encodable, has_control

DEFAULT_RESULT_TTL = 500
_BAD_ID_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def id_from_name(job_id: str | None, name: object) -> str | None:
    """The id of a job given rq's ``name=`` (rq's word for it) and/or rediscron's ``id=``."""
    if name in (None, ""):
        return job_id
    if job_id is not None and name != job_id:
        raise InvalidJobError(job_id, "name", f"is rq's word for the id; give id={job_id!r} or name={name!r}, not both")
    if not isinstance(name, str):
        raise InvalidJobError(None, "name", f"must be a string, not {name!r}")
    return name


def validate_id(job_id: object) -> str:
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


#: Deeper arguments would overflow the stack of whatever serialises them next (pickle, YAML).
MAX_NESTING = 100


def _string_keys_only(value: object, where: str) -> None:
    """JSON would turn other keys into strings (and merge 1 with "1"); refuse them instead."""
    stack = [(value, where, 0)]
    while stack:
        item, at, depth = stack.pop()
        if depth > MAX_NESTING:
            raise RecursionError

        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"{at} has a non-string key {key!r}; JSON keys are strings")
                stack.append((inner, f"{at}[{key!r}]", depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((inner, f"{at}[{i}]", depth + 1) for i, inner in enumerate(item))


def _check_json(value: object, job_id: str, field: str) -> str:
    try:
        _string_keys_only(value, field)
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
        if not encoded.isascii():
            encoded.encode("utf-8")  # a lone surrogate is no text any reader could print
        return encoded
    except RecursionError:
        raise InvalidJobError(job_id, field, f"is nested more than {MAX_NESTING} levels deep") from None
    except (TypeError, ValueError, UnicodeError) as exc:
        raise InvalidJobError(job_id, field, f"must be JSON-serializable: {exc}") from None


def arguments_size(*encoded: str | None) -> int:
    """Bytes of the JSON-encoded ``args``, ``kwargs`` and ``meta`` together (the limit's measure)."""
    return sum(len(text) if text.isascii() else len(text.encode("utf-8")) for text in encoded if text)


def _check_size(job_id: str, *encoded: str | None) -> None:
    size = arguments_size(*encoded)
    if size > limits.MAX_ARGUMENTS_BYTES:
        raise InvalidJobError(
            job_id,
            "args/kwargs/meta",
            f"take {size:,} bytes JSON-encoded; the limit is {limits.MAX_ARGUMENTS_BYTES:,} "
            "(rediscron.limits.MAX_ARGUMENTS_BYTES). Every run copies them; pass a reference (a key, "
            "a path) to large data instead",
        )


#: Smallest value each rq option accepts; -1 means "forever" where rq allows it.
_INT_MINIMUM = {"job_timeout": -1, "result_ttl": -1, "ttl": 1, "failure_ttl": -1}
_INT_MAXIMUM = MAX_INTERVAL


def _check_int(value: object, job_id: str, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobError(job_id, field, f"must be a whole number of seconds or None, not {value!r}")
    if value > _INT_MAXIMUM:
        raise InvalidJobError(job_id, field, f"must be at most {_INT_MAXIMUM} seconds (100 years), not {value}")
    if value < _INT_MINIMUM[field] or (field == "job_timeout" and value == 0):
        allowed = {
            "job_timeout": "-1 (no limit) or a positive number",
            "ttl": "a positive number",
            "result_ttl": "-1 (forever), 0 or a positive number",
            "failure_ttl": "-1 (forever), 0 or a positive number",
        }[field]
        raise InvalidJobError(job_id, field, f"must be {allowed}, not {value}")
    return value


@dataclass
class Definition:
    """A validated, normalised job definition."""

    id: str
    queue_name: str
    func: Callable[..., Any] | None
    func_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    interval: int | None
    cron: str | None
    meta: dict[str, Any] | None
    ints: dict[str, int | None]
    enabled: bool
    json: dict[str, str | None]
    options: dict[str, Any]


def normalise(
    job_id: object,
    queue_name: object,
    func: object,
    func_name: object,
    args: object,
    kwargs: object,
    interval: object,
    cron: object,
    meta: object,
    ints: dict[str, object],
    enabled: object,
    trusted_func_name: str | None,
    options: Mapping[str, Any],
    trusted_options: Mapping[str, Any] | None = None,
) -> Definition:
    """Check every field of a definition, naming the job and the field on the first error."""
    jid = validate_id(job_id)
    if (
        not isinstance(queue_name, str)
        or not queue_name
        or _BAD_ID_CHARS.search(queue_name)
        or has_control(queue_name)
        or not encodable(queue_name)
    ):
        raise InvalidJobError(jid, "queue_name", f"must be a non-empty name without spaces, not {queue_name!r}")
    if len(queue_name) > limits.MAX_ID_LENGTH:
        raise InvalidJobError(jid, "queue_name", f"is longer than {limits.MAX_ID_LENGTH} characters")
    if interval is not None and cron is not None:
        raise InvalidJobError(jid, "interval/cron", "give exactly one of interval and cron, not both")
    if interval is None and cron is None:
        raise InvalidJobError(jid, "interval/cron", "give exactly one of interval (seconds) and cron")
    try:
        checked_interval = validate_interval(interval) if interval is not None else None
        checked_cron = validate_cron(cron) if cron is not None else None
    except ValueError as exc:
        raise InvalidJobError(jid, "interval" if interval is not None else "cron", str(exc)) from None

    if isinstance(func, str):
        if func_name is not None:
            raise InvalidJobError(jid, "func", "give func or func_name, not both")
        func, func_name = None, func
    resolved: Callable[..., Any] | None = None
    if func is not None:
        if func_name is not None and func_name != trusted_func_name:
            raise InvalidJobError(jid, "func", "give func or func_name, not both")
        if not callable(func):
            raise InvalidJobError(jid, "func", f"{func!r} is not callable")
        resolved = func
        path = trusted_func_name if trusted_func_name is not None else callable_path(func, jid)
    elif func_name is not None:
        path = check_func_name(func_name, jid) if func_name != trusted_func_name else str(func_name)
    else:
        raise InvalidJobError(jid, "func", "give the function (or its dotted path as func_name)")

    if args is None:
        args = ()
    if not isinstance(args, (tuple, list)):
        raise InvalidJobError(jid, "args", f"must be a tuple or list, not {type(args).__name__}")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise InvalidJobError(jid, "kwargs", "must be a dict with string keys")
    if meta is not None and (not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta)):
        raise InvalidJobError(jid, "meta", "must be a dict with string keys or None")
    # Round-trip through JSON now, so what runs later is exactly what was validated.
    args_json = _check_json(list(args), jid, "args")
    kwargs_json = _check_json(kwargs, jid, "kwargs")
    meta_json = _check_json(meta, jid, "meta") if meta is not None else None
    _check_size(jid, args_json, kwargs_json, meta_json)
    if isinstance(meta, dict) and any(key.startswith("rediscron_") for key in meta):
        raise InvalidJobError(jid, "meta", "keys starting with 'rediscron_' are reserved for rediscron")
    checked_ints = {name: _check_int(value, jid, name) for name, value in ints.items()}
    if not isinstance(enabled, bool):
        raise InvalidJobError(jid, "enabled", f"must be True or False, not {enabled!r}")
    checked_options = check_options(jid, options, checked_interval, trusted_options)
    return Definition(
        id=jid,
        queue_name=queue_name,
        func=resolved,
        func_name=path,
        args=tuple(json.loads(args_json)),
        kwargs=json.loads(kwargs_json),
        interval=checked_interval,
        cron=checked_cron,
        meta=json.loads(meta_json) if meta_json is not None else None,
        ints=checked_ints,
        enabled=enabled,
        json={"args": args_json, "kwargs": kwargs_json, "meta": meta_json},
        options=checked_options,
    )


def check_time(value: object, job_id: str, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise InvalidJobError(job_id, field, f"must be a datetime or None, not {value!r}")
    if not 1970 <= value.year <= 9000:
        raise InvalidJobError(job_id, field, f"must be between the years 1970 and 9000, not {value.isoformat()}")
