"""Every file the package reads at run time is shipped in its wheel (pyproject's package-data)."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rediscron"


def test_templates_static_files_and_scripts_are_package_data() -> None:
    # The line itself (tomllib is not in Python 3.10).
    line = re.search(r"^rediscron = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert line is not None
    globs = re.findall(r'"([^"]+)"', line.group(1))
    needed = [
        path.relative_to(PACKAGE).as_posix()
        for folder in ("lua", "web/templates", "web/static")
        for path in (PACKAGE / folder).iterdir()
        if path.is_file()
    ]
    assert needed
    assert [name for name in needed if not any(fnmatch(name, glob) for glob in globs)] == []
