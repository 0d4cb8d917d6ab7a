"""Functions named by dotted path: what the scheduler and workers import to run a job."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import sys
import weakref
from collections.abc import Callable
from typing import Any

from .errors import InvalidJobError

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def import_path(path: str) -> Any:
    """Import ``package.module.attr[.attr...]`` and return the attribute."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only a missing prefix means "try a shorter module"; a module missing inside it is a real error.
            if exc.name == module_name or module_name.startswith(f"{exc.name}."):
                continue
            raise
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {'.'.join(parts[split:])!r}") from None
        return obj
    if len(parts) < 2:
        raise ImportError(f"{path!r} names no module (expected package.module.function)")
    raise ImportError(f"there is no module {parts[0]!r} on the path of the process that tried; is the app's "
                      "directory on sys.path there? (run from it, set PYTHONPATH, or pass -P DIR to rqrcron)")


def describe_import_error(exc: BaseException) -> str:
    """An import failure in one line, without repr's nested quotes."""
    return f"{type(exc).__name__}: {exc}"


#: What importing user code may raise: a module that calls sys.exit() (e.g. argparse) must not
#: end the scheduler or the caller.
IMPORT_ERRORS = (Exception, SystemExit)


#: Functions already found importable, and by which path (registering many jobs of one function checks it once).
_PATHS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def callable_path(func: Callable[..., Any], job_id: str | None) -> str:
    """The dotted path another process imports ``func`` by, or InvalidJobError saying why there is none."""
    try:
        known = _PATHS.get(func)
    except TypeError:  # neither hashable nor weakly referable: check it every time
        known = None
    if known is not None and _still_at(func):
        return known
    path = _check_callable(func, job_id)
    with contextlib.suppress(TypeError):
        _PATHS[func] = path
    return path


def _still_at(func: Any) -> bool:
    """Whether ``func``'s module, already imported, still holds it under its name (no reload replaced it)."""
    obj = sys.modules.get(func.__module__)
    for attr in func.__qualname__.split("."):
        obj = getattr(obj, attr, None)
    return obj is func


def _check_callable(func: Callable[..., Any], job_id: str | None) -> str:
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not callable(func) or not module or not qualname:
        raise InvalidJobError(job_id, "func", f"{func!r} is not a function importable by dotted path")
    if inspect.isclass(func):
        raise InvalidJobError(job_id, "func", f"{qualname} is a class; schedule a function")
    if "<lambda>" in qualname:
        raise InvalidJobError(
            job_id,
            "func",
            "a lambda cannot be imported by the scheduler or workers; define a named function in a module",
        )
    if "<locals>" in qualname:
        raise InvalidJobError(
            job_id, "func", f"{qualname} is defined inside another function; move it to module level"
        )
    if module == "__main__":
        raise InvalidJobError(
            job_id,
            "func",
            f"{qualname} is defined in __main__, which other processes cannot import; "
            "move it into a module (e.g. tasks.py) and import it from there",
        )
    path = f"{module}.{qualname}"
    try:
        resolved = import_path(path)
    except IMPORT_ERRORS as exc:
        raise InvalidJobError(job_id, "func", f"{path} cannot be imported: {describe_import_error(exc)}") from None
    if resolved is not func and resolved != func:
        raise InvalidJobError(job_id, "func", f"{path} does not resolve to {func!r} when imported")
    _refuse_instance_method(path, job_id, "func")
    return path


def _refuse_instance_method(path: str, job_id: str | None, field: str) -> None:
    """A plain function found on a class is an instance method: a worker would call it without ``self``."""
    owner_path, _, name = path.rpartition(".")
    try:
        owner = import_path(owner_path) if "." in owner_path else None
    except IMPORT_ERRORS:
        return
    if inspect.isclass(owner) and inspect.isfunction(inspect.getattr_static(owner, name, None)):
        raise InvalidJobError(job_id, field, f"{path} is an instance method; use a function, a staticmethod "
                                             "or a classmethod")


def check_func_name(func_name: object, job_id: str | None) -> str:
    if not isinstance(func_name, str) or not _DOTTED.match(func_name):
        raise InvalidJobError(job_id, "func_name", f"{func_name!r} is not a dotted path like 'package.module.function'")
    try:
        target = import_path(func_name)
    except IMPORT_ERRORS as exc:
        raise InvalidJobError(job_id, "func_name",
                              f"{func_name} cannot be imported: {describe_import_error(exc)}") from None
    if not callable(target) or inspect.isclass(target):
        raise InvalidJobError(job_id, "func_name", f"{func_name} is not a function")
    _refuse_instance_method(func_name, job_id, "func_name")
    return func_name
