"""A module that records being imported: no process that only reads the registry may import it.

Jobs, callbacks and classes in the tests name it to prove that the scheduler and every viewer
enqueue and show by dotted path, never importing (or unpickling) what Redis holds.
"""

from __future__ import annotations

import os
from typing import Any

from rq.job import Job

_MARKER = os.environ.get("REDISCRON_TRIPWIRE")


def _note(what: str) -> None:
    if _MARKER:
        with open(_MARKER, "a", encoding="utf-8") as out:
            out.write(f"{what} in pid {os.getpid()}\n")


_note("imported")


def fire(*args: Any, **kwargs: Any) -> None:
    _note(f"called with {args!r}")


class Evil(Job):
    pass


#: A pickle that, once loaded, imports this module and calls fire("unpickled").
PAYLOAD = b"ctests.tripwire\nfire\n(S'unpickled'\ntR."
