"""Text from Redis made safe to print: control characters escaped, long messages cut.

Whatever Redis holds may have been written by anyone with access to it; printed raw, an
escape sequence in a job's description could rewrite an operator's terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# C0 and C1 controls, DEL, the Unicode line/paragraph separators, the bidirectional marks and overrides
# (which reorder what follows them on screen), and invisible characters (zero-width space, word joiner,
# byte order mark). Joiners (U+200C, U+200D) stay: scripts and emoji sequences need them.
_INVISIBLE = "\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b\u200e\u200f\u061c\u2060-\u2064\ufeff"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_INVISIBLE}]")
# What json.dumps leaves raw inside strings (it escapes C0 itself; raw C0 outside strings is layout).
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_INVISIBLE}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), so it prints as one line."""
    return _UNSAFE.sub(_escape, text)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character `printable()` would escape."""
    return _UNSAFE.search(text) is not None


def encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (UTF-8 can encode it: no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def escape_json_text(document: str) -> str:
    """JSON text with the controls JSON leaves raw (DEL, C1, separators) written as ``\\u`` escapes."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def to_json(value: Any, **options: Any) -> str:
    """``json.dumps`` keeping non-ASCII text as characters, with every control character escaped."""
    return escape_json_text(json.dumps(value, ensure_ascii=False, **options))


def json_stream(
    head: dict[str, Any],
    key: str,
    pages: Iterable[list[Any]],
    tail: Callable[[], dict[str, Any]],
    indent: int | None = None,
) -> Iterator[str]:
    """``to_json({**head, key: [every item of pages], **tail()}, indent=indent)``, in pieces: one per page,
    so a listing of a million items is never held whole. ``tail`` is called once the pages are written."""

    def dump(value: Any, depth: int) -> str:
        text = to_json(value, indent=indent)
        return text if indent is None else text.replace("\n", "\n" + " " * (indent * depth))

    pad = "" if indent is None else "\n" + " " * indent
    inner = "" if indent is None else "\n" + " " * (indent * 2)
    comma = "," if indent is not None else ", "
    out = ["{"]
    for name, value in head.items():
        out.append(f"{pad}{dump(name, 1)}: {dump(value, 1)}{comma}")
    out.append(f"{pad}{dump(key, 1)}: [")
    yield "".join(out)
    first = True
    for page in pages:
        if not page:
            continue
        parts = []
        for item in page:
            parts.append(("" if first else comma) + inner + dump(item, 2))
            first = False
        yield "".join(parts)
    out = [("" if first else pad) + "]"]
    for name, value in tail().items():
        out.append(f"{comma}{pad}{dump(name, 1)}: {dump(value, 1)}")
    out.append(("" if indent is None else "\n") + "}")
    yield "".join(out)


def relative(seconds: float) -> str:
    """``in 4 min``, ``in 2 h``, ``12 s ago``: how far a moment is from now, at a glance."""
    ahead = seconds >= 0
    size = abs(seconds)
    if size < 1:
        amount = "now"
    elif size < 60:
        amount = f"{size:.0f} s"
    elif size < 3600:
        amount = f"{size / 60:.0f} min"
    elif size < 86400 * 2:
        amount = f"{size / 3600:.0f} h"
    else:
        amount = f"{size / 86400:.0f} days"
    if amount == "now":
        return amount
    return f"in {amount}" if ahead else f"{amount} ago"


def nested_deeper_than(document: str, limit: int) -> bool:
    """Whether JSON ``document`` nests arrays and objects deeper than ``limit`` (strings skipped): checked
    before parsing, so a hostile document never drives the parser's recursion to its limit."""
    depth, in_string, escaped = 0, False, False
    for char in document:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
