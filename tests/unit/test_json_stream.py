"""`text.json_stream` writes, piece by piece, exactly the document `text.to_json` writes whole."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rediscron.text import json_stream, to_json

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("indent", [None, 2])
@given(
    head=st.dictionaries(st.sampled_from(["version", "a"]), values, max_size=2),
    pages=st.lists(st.lists(values, max_size=3), max_size=4),
    tail=st.dictionaries(st.sampled_from(["unreadable", "scheduler", "updated"]), values, max_size=3),
)
def test_the_stream_is_the_whole_document(
    indent: int | None, head: dict[str, Any], pages: list[list[Any]], tail: dict[str, Any]
) -> None:
    whole = {**head, "jobs": [item for page in pages for item in page], **tail}
    assert "".join(json_stream(head, "jobs", pages, lambda: tail, indent=indent)) == to_json(whole, indent=indent)
