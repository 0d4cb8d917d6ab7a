"""Functions named by dotted path: what the scheduler and workers import to run a job."""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import inspect
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import ImportNotAllowed, InvalidJobError

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def import_path(path: str) -> Any:
    """Import ``package.module.attr[.attr...]`` and return the attribute.

    The error says which part is missing: ``no module 'myapp.taks'`` for a mistyped module,
    ``module 'myapp.tasks' has no attribute 'rebuld'`` for a mistyped function.
    """
    parts = path.split(".")
    # From the whole path down: "myapp.tasks" given for a function is a module, and says so.
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only a missing prefix means "try a shorter module"; a module missing inside it is a real error.
            if exc.name == module_name or module_name.startswith(f"{exc.name}."):
                continue
            raise
        for depth, attr in enumerate(parts[split:], split):
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                owner = ".".join(parts[:depth])
                if inspect.ismodule(obj) and depth < len(parts) - 1:
                    # More dots follow: it was meant as a module.
                    raise ImportError(
                        f"no module {'.'.join(parts[: depth + 1])!r} (module {owner!r} has no {attr!r})"
                    ) from None
                kind = "module" if inspect.ismodule(obj) else type(obj).__name__
                raise ImportError(f"{kind} {owner!r} has no attribute {attr!r}") from None
        return obj
    if len(parts) < 2:
        raise ImportError(f"{path!r} names no module (expected package.module.function)")
    raise ImportError(
        f"no module {parts[0]!r} on the path of this process; is the app's directory on "
        "sys.path here? (run from it, set PYTHONPATH, or pass -P DIR to rqrcron)"
    )


def module_importable(path: str) -> bool:
    """Whether the top-level package of dotted ``path`` can be found here, without importing anything."""
    top = path.split(".", 1)[0]
    if not top.isidentifier():
        return False
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


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
        raise InvalidJobError(job_id, "func", f"{qualname} is defined inside another function; move it to module level")
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
        raise InvalidJobError(
            job_id, field, f"{path} is an instance method; use a function, a staticmethod or a classmethod"
        )


def check_func_name(func_name: object, job_id: str | None) -> str:
    """``func_name`` if it names a function importable here, else InvalidJobError saying what is wrong.

    Inside `checked_where_importable()`, a path whose top-level package is not on this
    process's path is only checked for its shape, and noted as unchecked.
    """
    if not isinstance(func_name, str) or not _DOTTED.match(func_name):
        raise InvalidJobError(job_id, "func_name", f"{func_name!r} is not a dotted path like 'package.module.function'")
    if skipped_here(func_name):
        return func_name
    try:
        target = import_path(func_name)
    except IMPORT_ERRORS as exc:
        raise InvalidJobError(
            job_id, "func_name", f"{func_name} cannot be imported: {describe_import_error(exc)}"
        ) from None
    if inspect.ismodule(target):
        raise InvalidJobError(
            job_id, "func_name", f"{func_name} is a module; name a function in it ({func_name}.FUNCTION)"
        )
    if not callable(target) or inspect.isclass(target):
        raise InvalidJobError(job_id, "func_name", f"{func_name} is not a function")
    _refuse_instance_method(func_name, job_id, "func_name")
    return func_name


def is_dotted(path: object) -> bool:
    """Whether ``path`` has the shape of ``package.module.name``."""
    return isinstance(path, str) and bool(_DOTTED.match(path))


#: Set inside checked_where_importable(): the paths left unchecked, and whether to check none at all.
_UNCHECKED: contextvars.ContextVar[tuple[set[str], bool] | None] = contextvars.ContextVar(
    "rediscron_unchecked", default=None
)


@contextlib.contextmanager
def checked_where_importable(check: bool = True) -> Iterator[set[str]]:
    """Check dotted paths only where their package is importable in this process; yields those skipped.

    For tools run away from the app's code (``rqrcron add`` on an operator's host): a path
    whose package is present is still checked in full, so a typo in it is caught. With
    ``check=False`` no path is imported, only its form checked (restoring an export as it is).
    """
    skipped: set[str] = set()
    token = _UNCHECKED.set((skipped, check))
    try:
        yield skipped
    finally:
        _UNCHECKED.reset(token)


def skipped_here(path: str) -> bool:
    """Inside `checked_where_importable()`: whether ``path`` is left unchecked (and note it)."""
    state = _UNCHECKED.get()
    if state is None or (state[1] and module_importable(path)):
        return False
    state[0].add(path)
    return True


#: What a scheduler imports by default for the options naming code: rq's own classes and serializers.
DEFAULT_ALLOWED_IMPORTS: tuple[str, ...] = ("rq",)


class ImportAllowlist:
    """Dotted-path prefixes a process may import when a stored job names code (``job_class``...).

    ``"myapp"`` allows ``myapp.jobs.AuditJob`` and ``myapp.serializers.Compact``, not
    ``myappx.Evil``. The default is rq's own package.
    """

    def __init__(self, prefixes: Iterable[str] = DEFAULT_ALLOWED_IMPORTS) -> None:
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        checked = []
        for prefix in prefixes:
            if not isinstance(prefix, str) or not re.fullmatch(
                r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", prefix
            ):
                raise ValueError(f"allow_import: {prefix!r} is not a dotted module prefix like 'myapp.jobs'")
            checked.append(prefix)
        self.prefixes: tuple[str, ...] = tuple(dict.fromkeys(checked))

    def add(self, path: str) -> None:
        """Allow one more prefix (or exact path)."""
        self.prefixes = ImportAllowlist((*self.prefixes, path)).prefixes

    def allows(self, path: str) -> bool:
        """Whether ``path`` lies under one of the prefixes."""
        return any(path == prefix or path.startswith(f"{prefix}.") for prefix in self.prefixes)

    def load(self, path: str, job_id: str, option: str) -> Any:
        """Import ``path`` for ``option`` of job ``job_id``, or ImportNotAllowed if it is outside the list.

        What the path resolves to must itself come from an allowed module: ``rq.utils.os.system``
        names ``os.system`` through rq's module, and is refused.
        """
        if not self.allows(path):
            raise ImportNotAllowed(job_id, option, path, self.prefixes)
        found = import_path(path)
        origin = found.__name__ if inspect.ismodule(found) else getattr(found, "__module__", None)
        if not isinstance(origin, str) or not self.allows(origin):
            raise ImportNotAllowed(job_id, option, path, self.prefixes, origin=str(origin))
        return found

    def __repr__(self) -> str:
        return f"ImportAllowlist({list(self.prefixes)!r})"
