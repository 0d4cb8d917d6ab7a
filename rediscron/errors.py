"""The exceptions rediscron raises.

Every error derives from [RediscronError][rediscron.RediscronError]; specific errors also derive from
the builtin that fits, so ``except ValueError`` keeps working for callers that
only know rq's own cron API.
"""

from __future__ import annotations

from rq.exceptions import StopRequested


class RediscronError(Exception):
    """Base class of every rediscron error."""


class InvalidJobError(RediscronError, ValueError):
    """A cron job definition was refused; nothing was written.

    ``job_id`` and ``field`` name what was wrong, so a bulk caller can report it.
    """

    def __init__(self, job_id: str | None, field: str, message: str) -> None:
        self.job_id = job_id
        self.field = field
        self.message = message
        who = f"cron job {job_id!r}" if job_id else "cron job"
        super().__init__(f"{who}: {field}: {message}")


class InvalidJobTypeError(InvalidJobError, TypeError):
    """A definition was refused for a value of the wrong type, where rq raises ``TypeError`` too."""


class JobNotFound(RediscronError, LookupError):
    """No cron job with that id."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"cron job {job_id!r} does not exist")


class EditConflict(RediscronError):
    """A job was changed by someone else since the caller read it; nothing was written."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"cron job {job_id!r} was changed elsewhere since it was read; nothing was written")


class CorruptJobError(RediscronError, ValueError):
    """A stored cron job record cannot be read back (bad field, unimportable function)."""

    def __init__(self, job_id: str, message: str) -> None:
        self.job_id = job_id
        self.message = message
        super().__init__(f"cron job {job_id!r} is unusable: {message}")


class LockLostError(RediscronError, StopRequested):
    """This scheduler's lock is held by another; it must stop enqueueing (rq's StopRequested)."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(f"the scheduler lock is now held by {holder}")


class SchedulerLockedError(RediscronError, RuntimeError):
    """Another scheduler holds the singleton lock."""

    def __init__(self, holder: str | None) -> None:
        self.holder = holder
        super().__init__(
            f"another rediscron scheduler holds the lock: {holder or 'unknown holder'}; "
            "it is released when that scheduler stops, or after the lock TTL if it died "
            "(start this one with --standby, or start(standby=True), to wait and take over)"
        )


class ImportNotAllowed(RediscronError, ImportError):
    """A stored option names code outside the import allowlist of the process reading it."""

    def __init__(
        self, job_id: str, option: str, path: str, allowed: tuple[str, ...], origin: str | None = None
    ) -> None:
        self.job_id = job_id
        self.option = option
        self.path = path
        if origin is not None:
            super().__init__(
                f"cron job {job_id!r}: {option} {path} resolves to an object of module {origin!r}, outside this "
                f"process's import allowlist ({', '.join(allowed) or 'empty'}); name it by its own module's path"
            )
            return
        prefix = path.rsplit(".", 1)[0]
        super().__init__(
            f"cron job {job_id!r}: {option} {path} is outside this process's import allowlist "
            f"({', '.join(allowed) or 'empty'}); to let it be imported here, pass --allow-import {prefix} "
            f"(to rqrcron scheduler, or trigger), or allow_import=[{prefix!r}] to RedisCronScheduler"
        )
