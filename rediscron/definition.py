"""A job's definition checked: every field of `fields.FIELDS` validated and normalised, and the checks
between fields; the first error names the job and the field."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import limits
from .errors import InvalidJobError
from .fields import FIELDS, validate_id
from .imports import callable_path, check_func_name


def id_from_name(job_id: str | None, name: object) -> str | None:
    """The id of a job given rq's ``name=`` (rq's word for it) and/or rediscron's ``id=``."""
    if name in (None, ""):
        return job_id
    if job_id is not None and name != job_id:
        raise InvalidJobError(job_id, "name", f"is rq's word for the id; give id={job_id!r} or name={name!r}, not both")
    if not isinstance(name, str):
        raise InvalidJobError(None, "name", f"must be a string, not {name!r}")
    return name


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


@dataclass
class Definition:
    """A validated, normalised definition: every field's value by name, the function if one was given
    (else ``values["func_name"]`` is its dotted path), and the JSON fields as they will be stored."""

    values: dict[str, Any]
    func: Callable[..., Any] | None
    texts: dict[str, str]

    @property
    def id(self) -> str:
        return str(self.values["id"])


#: The fields checked one by one: rq's (but the id and the function, checked first, apart), then the options.
_RQ_FIELDS = [
    (name, field.default, field.check, field.json)
    for name, field in FIELDS.items()
    if not field.option and name not in ("id", "func_name")
]
_OPTIONS = [(name, field.default, field.check) for name, field in FIELDS.items() if field.option]


def normalise(
    values: Mapping[str, Any],
    func: object = None,
    *,
    trusted_func_name: str | None = None,
    trusted: Mapping[str, Any] | None = None,
) -> Definition:
    """Check every field of ``values`` (missing ones take their default), naming the job and the field on
    the first error.

    ``func`` is the function (or its dotted path) given instead of ``values["func_name"]``. A
    ``func_name`` equal to ``trusted_func_name``, and a value equal to its entry in ``trusted``
    (both as read back from Redis), are kept unchecked: nothing read back is imported.
    """
    jid = validate_id(values.get("id"))
    if values.get("interval") is not None and values.get("cron") is not None:
        raise InvalidJobError(jid, "interval/cron", "give exactly one of interval and cron, not both")
    if values.get("interval") is None and values.get("cron") is None:
        raise InvalidJobError(jid, "interval/cron", "give exactly one of interval (seconds) and cron")
    resolved, path = _function(jid, func, values.get("func_name"), trusted_func_name)
    checked: dict[str, Any] = {"id": jid, "func_name": path}
    texts: dict[str, str] = {}
    for name, default, check, from_json in _RQ_FIELDS:
        checked[name] = _rq_field(name, check, from_json, values.get(name, default), jid, texts)
    trusted = trusted or {}
    # An option's default (the very object) is valid and normal by construction (a test holds that); a
    # value as read back from Redis is kept as it is (it may name code, never imported here).
    checked.update({
        name: value if value is default or (name in trusted and trusted[name] == value) else check(value, jid, name)
        for name, default, check in _OPTIONS
        for value in (values.get(name, default),)
    })  # fmt: skip
    _check_size(jid, *texts.values())
    start, end = checked["start_time"], checked["end_time"]
    if start is not None and end is not None and end <= start:
        raise InvalidJobError(jid, "end_time", f"{end.isoformat()} is not after start_time {start.isoformat()}")
    interval = checked["interval"]
    if interval is not None and checked["jitter"] >= interval:
        raise InvalidJobError(
            jid, "jitter", f"must be shorter than the interval ({interval}s), not {checked['jitter']}"
        )
    return Definition(checked, resolved, texts)


def _rq_field(name: str, check: Any, from_json: Any, value: object, jid: str, texts: dict[str, str]) -> Any:
    """One of rq's fields checked and normalised; a JSON one's text goes into ``texts``."""
    value = check(value, jid, name)
    if from_json is not None and value is not None:
        # Round-trip through JSON now, so what runs later is exactly what was validated.
        texts[name] = _check_json(value, jid, name)
        value = from_json(json.loads(texts[name]))
    return value


def normalise_like(values: Mapping[str, Any], job_id: str, texts: Mapping[str, str]) -> Definition:
    """Some of rq's fields (``values``: a job's ``args``, ``kwargs``, ``meta``) checked and normalised as
    `normalise` does, for a job whose other fields are those of a definition already checked, whose JSON
    ``texts`` are given. The result holds only the id and those fields, and the JSON texts of all."""
    jid = validate_id(job_id)
    checked: dict[str, Any] = {"id": jid}
    mine: dict[str, str] = {}
    for name, _default, check, from_json in _RQ_FIELDS:
        if name in values:
            checked[name] = _rq_field(name, check, from_json, values[name], jid, mine)
    merged = {name: text for name, text in texts.items() if name not in values} | mine
    _check_size(jid, *merged.values())
    return Definition(checked, None, {name: merged[name] for name, *_ in _RQ_FIELDS if name in merged})


def _function(
    jid: str, func: object, func_name: object, trusted_func_name: str | None
) -> tuple[Callable[..., Any] | None, str]:
    """The function given (None for a dotted path) and its dotted path."""
    if isinstance(func, str):
        if func_name is not None:
            raise InvalidJobError(jid, "func", "give func or func_name, not both")
        func, func_name = None, func
    if func is not None:
        if func_name is not None and func_name != trusted_func_name:
            raise InvalidJobError(jid, "func", "give func or func_name, not both")
        if not callable(func):
            raise InvalidJobError(jid, "func", f"{func!r} is not callable")
        return func, trusted_func_name if trusted_func_name is not None else callable_path(func, jid)
    if func_name is not None:
        return None, check_func_name(func_name, jid) if func_name != trusted_func_name else str(func_name)
    raise InvalidJobError(jid, "func", "give the function (or its dotted path as func_name)")


def check_time(value: object, job_id: str, field: str) -> None:
    """Refuse a scheduler-kept time that is not a datetime (or None) between 1970 and 9000."""
    if value is None:
        return
    if not isinstance(value, datetime):
        raise InvalidJobError(job_id, field, f"must be a datetime or None, not {value!r}")
    if not 1970 <= value.year <= 9000:
        raise InvalidJobError(job_id, field, f"must be between the years 1970 and 9000, not {value.isoformat()}")
