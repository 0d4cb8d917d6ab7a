"""The checks of a job's options beyond rq's cron fields, and the rq objects they become.

Each check takes ``(value, job_id, field)`` and returns the value normalised, or raises
InvalidJobError naming the job and the field; `fields.FIELDS` says which check each option has.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from rq import Callback, Retry
from rq.defaults import CALLBACK_TIMEOUT
from rq.serializers import resolve_serializer

from .errors import InvalidJobError, InvalidJobTypeError
from .imports import (
    IMPORT_ERRORS,
    callable_path,
    check_func_name,
    describe_import_error,
    import_path,
    is_dotted,
    skipped_here,
)
from .schedule import MAX_INTERVAL, validate_timezone
from .text import encodable, has_control

CATCHUP_MODES = ("coalesce", "skip", "all")
OVERLAP_MODES = ("allow", "skip")
#: The longest jitter: one day.
MAX_JITTER = 86400
_MAX_TEXT = 2000


def _fail(job_id: str, field: str, message: str) -> InvalidJobError:
    return InvalidJobError(job_id, field, message)


def check_timezone(value: Any, job_id: str, field: str) -> str:
    try:
        return validate_timezone(value)
    except ValueError as exc:
        raise _fail(job_id, field, str(exc)) from None


def check_seconds(value: Any, job_id: str, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTERVAL:
        raise _fail(
            job_id, field, f"must be a whole number of seconds from 1 to {MAX_INTERVAL}, or None, not {value!r}"
        )
    return value


def check_max_runs(value: Any, job_id: str, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**15:
        raise _fail(job_id, field, f"must be a positive whole number or None, not {value!r}")
    return value


def check_jitter(value: Any, job_id: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_JITTER:
        raise _fail(job_id, field, f"must be a whole number of seconds from 0 to {MAX_JITTER}, not {value!r}")
    return value


def choice(choices: tuple[str, ...]) -> Callable[[Any, str, str], str]:
    def check(value: Any, job_id: str, field: str) -> str:
        if value not in choices:
            raise _fail(job_id, field, f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}")
        return str(value)

    return check


def check_flag(value: Any, job_id: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(job_id, field, f"must be True or False, not {value!r}")
    return value


def check_moment(value: Any, job_id: str, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise _fail(job_id, field, f"must be a timezone-aware datetime or None, not {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(
            job_id,
            field,
            f"{value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime(2030, 1, 1, tzinfo=timezone.utc))",
        )
    moment = value.astimezone(timezone.utc)
    if not 1970 <= moment.year <= 9000:
        raise _fail(job_id, field, f"must be between the years 1970 and 9000, not {value.isoformat()}")
    return moment


#: Most labels one job may carry, and the longest value.
MAX_LABELS = 20
MAX_LABEL_VALUE = 200
#: A label's name: letters, digits and ``_ . - /``, starting with a letter or digit (as Kubernetes' keys).
LABEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")


def check_labels(value: Any, job_id: str, field: str) -> dict[str, str] | None:
    """Labels: ``{name: value}`` text to select jobs by (`rqrcron info --label team=billing`); sorted by name."""
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise _fail(job_id, field, f"must be a dict of name: value text, not {type(value).__name__}")
    if len(value) > MAX_LABELS:
        raise _fail(job_id, field, f"holds {len(value)} labels; at most {MAX_LABELS}")
    for name, text in value.items():
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise _fail(
                job_id,
                field,
                f"name {name!r} is not 1-63 letters, digits and _ . - / (starting with a letter or digit)",
            )
        if not isinstance(text, str) or len(text) > MAX_LABEL_VALUE or has_control(text) or not encodable(text):
            raise _fail(
                job_id,
                field,
                f"{name}: must be text of at most {MAX_LABEL_VALUE} characters without control characters",
            )
    return {name: value[name] for name in sorted(value)}


def labelled(labels: Mapping[str, str] | None, selector: Mapping[str, str] | None) -> bool:
    """Whether a job with ``labels`` is selected by ``selector``: it has every one of its labels (None: all are)."""
    return not selector or (labels is not None and all(labels.get(name) == value for name, value in selector.items()))


def check_text(value: Any, job_id: str, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _fail(job_id, field, f"must be text of at most {_MAX_TEXT} characters or None")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(job_id, field, "is not valid Unicode text") from None
    return value


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_retry(value: Any, job_id: str, field: str) -> dict[str, Any] | None:
    """``Retry(max=3, interval=[10, 60])``, ``3`` or ``{"max": 3, "interval": [10, 60]}``."""
    if value is None:
        return None
    if isinstance(value, Retry):
        spec: dict[str, Any] = {"max": value.max, "interval": list(value.intervals)}
        if getattr(value, "enqueue_at_front", False):
            spec["at_front"] = True
    elif _whole(value):
        spec = {"max": value, "interval": [0]}
    elif isinstance(value, Mapping):
        unknown = set(value) - {"max", "interval", "at_front"}
        if unknown:
            raise _fail(job_id, field, f"has unknown keys {sorted(map(str, unknown))} (use max, interval, at_front)")
        interval = value.get("interval", 0)
        spec = {"max": value.get("max"), "interval": [interval] if _whole(interval) else interval}
        if value.get("at_front"):
            spec["at_front"] = True
    else:
        raise _fail(job_id, field, f"must be an rq Retry, a number of retries, or None, not {value!r}")
    intervals = spec["interval"]
    if not _whole(spec["max"]) or not 1 <= spec["max"] <= 1000:
        raise _fail(job_id, field, f"max must be a whole number from 1 to 1000, not {spec['max']!r}")
    if (
        not isinstance(intervals, list)
        or not intervals
        or len(intervals) > 100
        or not all(_whole(i) and 0 <= i <= MAX_INTERVAL for i in intervals)
    ):
        raise _fail(job_id, field, f"interval must be seconds >= 0, or a list of them, not {intervals!r}")
    if not isinstance(spec.get("at_front", False), bool):
        raise _fail(job_id, field, "at_front must be True or False")
    return spec


def _path_of(value: Any, job_id: str, field: str) -> str:
    """The dotted path of a function, class or module, given as itself or as its path."""
    if isinstance(value, str):
        if not is_dotted(value):
            raise _fail(job_id, field, f"{value!r} is not a dotted path like 'package.module.Class'")
        if skipped_here(value):
            return value
        try:
            import_path(value)
        except IMPORT_ERRORS as exc:
            raise _fail(job_id, field, f"{value} cannot be imported: {describe_import_error(exc)}") from None
        return value
    if isinstance(value, ModuleType):
        return value.__name__
    if inspect.isclass(value):
        path = f"{value.__module__}.{value.__qualname__}"
        try:
            found = import_path(path)
        except IMPORT_ERRORS:
            found = None
        if found is not value:
            raise _fail(job_id, field, f"{path} cannot be imported by dotted path; define it at module level")
        return path
    raise _fail(job_id, field, f"must be a class or its dotted path, not {value!r}")


def check_callback(value: Any, job_id: str, field: str) -> str | dict[str, Any] | None:
    """A function or its dotted path, or an rq ``Callback`` (its timeout is kept), or the stored form of
    one with a timeout, ``{"func": path, "timeout": seconds}`` (as a schedules file has it)."""
    if value is None:
        return None
    timeout: Any = None
    if isinstance(value, Callback):
        timeout = value.timeout
        value = value.func
    elif isinstance(value, Mapping):
        if set(value) - {"func", "timeout"} or "func" not in value:
            raise _fail(
                job_id,
                field,
                f"must be a function, its dotted path, or {{'func': path, 'timeout': seconds}}, not {value!r}",
            )
        timeout, value = value.get("timeout"), value["func"]
    try:
        path = check_func_name(value, job_id) if isinstance(value, str) else callable_path(value, job_id)
    except InvalidJobError as exc:
        raise _fail(job_id, field, exc.message) from None
    if timeout is None or timeout == CALLBACK_TIMEOUT:
        return path
    if not _whole(timeout) or not 1 <= timeout <= MAX_INTERVAL:
        raise _fail(job_id, field, f"the callback timeout must be whole seconds, not {timeout!r}")
    return {"func": path, "timeout": timeout}


def check_subclass(base: type) -> Callable[[Any, str, str], str | None]:
    def check(value: Any, job_id: str, field: str) -> str | None:
        if value is None:
            return None
        path = _path_of(value, job_id, field)
        if isinstance(value, str) and skipped_here(path):
            return path
        found = import_path(path)
        if not inspect.isclass(found) or not issubclass(found, base):
            raise _fail(job_id, field, f"{path} is not a subclass of {base.__module__}.{base.__qualname__}")
        return path

    return check


def check_serializer(value: Any, job_id: str, field: str) -> str | None:
    if value is None:
        return None
    path = _path_of(value, job_id, field)
    if isinstance(value, str) and skipped_here(path):
        return path
    try:
        resolve_serializer(path)
    except Exception as exc:
        raise _fail(job_id, field, f"{path} is not an rq serializer (it needs dumps and loads): {exc}") from None
    return path


Webhook: Any
try:  # rq >= 2.10
    from rq.webhook import Webhook
except ImportError:  # pragma: no cover - older rq
    Webhook = None


def check_webhooks(value: Any, job_id: str, field: str) -> list[dict[str, Any]] | None:
    """rq's ``Webhook`` objects (or their ``to_dict()`` forms), kept as dicts: data, not code."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return None
    if Webhook is None:
        import rq

        raise _fail(job_id, field, f"needs rq 2.10 or newer, which sends webhooks (this is rq {rq.__version__})")
    if not isinstance(value, (list, tuple)):
        raise InvalidJobTypeError(job_id, field, f"must be a list of rq Webhook objects, not {type(value).__name__}")
    checked = []
    for number, item in enumerate(value, 1):
        try:
            hook = (
                item
                if isinstance(item, Webhook)
                else Webhook.from_dict(dict(item))
                if isinstance(item, Mapping)
                else None
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(job_id, field, f"#{number} is not a valid webhook: {exc}") from None
        if hook is None:
            raise InvalidJobTypeError(job_id, field, f"#{number} must be an rq Webhook, not {type(item).__name__}")
        checked.append(hook.to_dict())
    return checked


def build_webhooks(spec: list[dict[str, Any]] | None) -> list[Any] | None:
    """rq's ``Webhook`` objects of a stored webhooks option."""
    if not spec or Webhook is None:
        return None
    return [Webhook.from_dict(item) for item in spec]


#: Whether this rq lets a retry go to the front of the queue (older versions have no such argument).
_RETRY_AT_FRONT = "enqueue_at_front" in inspect.signature(Retry.__init__).parameters


def build_retry(spec: dict[str, Any] | None) -> Retry | None:
    """The rq ``Retry`` of a stored retry option."""
    if spec is None:
        return None
    kwargs: dict[str, Any] = {"max": spec["max"], "interval": spec["interval"]}
    if spec.get("at_front") and _RETRY_AT_FRONT:
        kwargs["enqueue_at_front"] = True
    return Retry(**kwargs)


def build_callback(spec: str | dict[str, Any] | None) -> Callback | None:
    """The rq ``Callback`` of a stored callback option, by dotted path: the worker imports it, not us."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return Callback(spec)
    return Callback(spec["func"], spec.get("timeout"))


def jitter_delay(job_id: str, slot: int, jitter: int, room: float = math.inf) -> int:
    """The deterministic delay of one slot: in [0, jitter], and less than ``room`` (the gap to the next slot)."""
    if jitter <= 0:
        return 0
    digest = hashlib.blake2b(f"{job_id}\x00{slot}".encode(), digest_size=8).digest()
    delay = int.from_bytes(digest, "big") % (jitter + 1)
    return int(min(delay, max(0, room - 1)))
