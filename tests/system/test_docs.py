"""The docs site builds with `mkdocs build --strict`: no broken page, link or API reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.conftest import ROOT

pytestmark = pytest.mark.system


def test_the_docs_build_strict(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    # The API pages come from the docstrings, with their cross-references as links.
    assert "Create or update many jobs" in api and "RedisCronJob" in api
    assert ":class:" not in api and ":meth:" not in api and "][" not in api
    assert 'href="#rediscron.RedisCronScheduler.register_birth"' in api
    assert "allow_import" in api and "lock_ttl" in api  # the constructors' parameters
