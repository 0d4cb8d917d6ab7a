"""The ``rqrcron`` command line: watch, operate and run rediscron's cron jobs.

Conventions follow rq's own CLI: ``-u/--url``, ``-c/--config`` (an rq settings module),
``-P/--path``; exit status 0 on success, 1 when Redis is unreachable or an operation
fails (one line on stderr, never a traceback), 2 on a usage error. `base` holds the group
and what every command shares; each other module holds one group of commands.
"""

from . import changes, edit, preview, run, schedules, watch, web, worker  # noqa: F401 - importing a module registers its commands
from .base import main
from .edit import ADD_OPTIONS, add

__all__ = ["ADD_OPTIONS", "add", "main"]
