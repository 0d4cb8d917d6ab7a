"""rq's own cron test suite, from rq's source release, run against rediscron's classes.

The suite of the installed rq (3.x) is downloaded from PyPI once (pip download, cached in
the virtualenv), rq's ``CronJob``/``CronScheduler`` are swapped for rediscron's through
``rq_cron_conftest.py`` (which only supplies ids), and the outcome must match
``rq_cron_differences.py`` exactly: every other test passes, every listed one fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from rediscron.testing import RedisServer
from tests.compat.rq_cron_differences import EXPECTED, NOT_RUN

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "api.md"
RQ_VERSION = metadata.version("rq")
SUITE = ("tests/test_cron.py", "tests/test_cron_job.py")

pytestmark = pytest.mark.skipif(
    int(RQ_VERSION.split(".")[0]) < 3,
    reason=f"the differences are recorded for rq 3's cron suite, not rq {RQ_VERSION}'s",
)


def rq_source() -> Path:
    """rq's source release of the installed version, unpacked (downloaded once into the virtualenv)."""
    cache = Path(sys.prefix) / "rq-sources"
    root = cache / f"rq-{RQ_VERSION}"
    if (root / "tests" / "test_cron.py").exists():
        return root
    cache.mkdir(exist_ok=True)
    download = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"rq=={RQ_VERSION}",
            "-d",
            str(cache),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    archive = cache / f"rq-{RQ_VERSION}.tar.gz"
    if download.returncode != 0 or not archive.exists():
        pytest.fail(
            f"COULD NOT DOWNLOAD rq {RQ_VERSION}'s source release to run its cron tests against rediscron "
            f"(pip download rq=={RQ_VERSION} --no-binary :all:): {download.stderr.strip()[-500:]}"
        )
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(f"rq-{RQ_VERSION}/tests/")]
        tar.extractall(cache, members=members, filter="data")
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Test id -> outcome ('passed', 'failed', 'error', 'skipped') of rq's cron suite against rediscron."""
    source = rq_source()
    work = tmp_path_factory.mktemp("rq-suite")
    shutil.copytree(source / "tests", work / "tests")
    shutil.copy(HERE / "rq_cron_conftest.py", work / "conftest.py")
    server = RedisServer()
    server.start()
    try:
        report = work / "report.xml"
        deselect = [arg for test in NOT_RUN for arg in ("--deselect", test)]
        env = {**os.environ, "REDISCRON_RQ_TESTS_URL": f"{server.url.rsplit('/', 1)[0]}/4"}
        env.pop("PYTHONPATH", None)  # rq's `tests` package, not ours
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(work),
                "-o",
                "addopts=",
                "--timeout",
                "60",
                f"--junitxml={report}",
                *deselect,
                *SUITE,
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if not report.exists():
            pytest.fail(f"rq's cron suite did not run:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        yield outcomes(report)
    finally:
        server.cleanup()


def outcomes(report: Path) -> dict[str, str]:
    found = {}
    for case in ElementTree.parse(report).iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)
        name = f"{module[0].replace('.', '/')}.py::{module[1]}::{case.get('name')}"
        state = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                state = child.tag.replace("failure", "failed")
        found[name] = state
    return found


def test_rq_cron_suite_passes_but_for_the_recorded_differences(results: dict[str, str]) -> None:
    assert len(results) >= 50, f"too few of rq's cron tests ran: {sorted(results)}"
    unexpected = {test: state for test, state in results.items() if state != "passed" and test not in EXPECTED}
    assert not unexpected, f"rq's cron tests failing against rediscron, not recorded as differences: {unexpected}"
    now_passing = [test for test in EXPECTED if results.get(test) == "passed"]
    assert not now_passing, f"recorded as differences, but they pass now (remove them from the list): {now_passing}"
    missing = [test for test in EXPECTED if test not in results]
    assert not missing, f"recorded differences that did not run (renamed upstream?): {missing}"


def test_every_difference_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    undocumented = [test for test in (*EXPECTED, *NOT_RUN) if test.rsplit("::", 1)[1] not in text]
    assert not undocumented, f"docs/api.md does not name these recorded differences: {undocumented}"
