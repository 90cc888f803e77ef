"""``-m "not prefect"`` starts no Prefect: tests/conftest.py fails any test that starts
or talks to Prefect's temporary server without the ``prefect`` mark. Here that check is
shown to catch a flow in an unmarked test, before and after the server runs, and to let
a marked one and an unmarked one without Prefect pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import pytest
from prefect import flow


@flow
def tiny() -> int:
    return 1


def test_unmarked_flow_starting_the_server():
    assert tiny() == 1


@pytest.mark.prefect
def test_marked_flow():
    assert tiny() == 1


def test_unmarked_flow_on_the_running_server():
    assert tiny() == 1


def test_unmarked_without_prefect():
    assert 1 + 1 == 2
"""


@pytest.mark.prefect
def test_an_unmarked_test_that_runs_a_flow_fails(tmp_path: Path) -> None:
    (tmp_path / "test_child.py").write_text(CHILD)
    command = [
        *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest"),
        *("-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-rA", "-q"),
        str(tmp_path / "test_child.py"),
    ]
    # a loaded machine takes more than Prefect's default 20 s to start the server
    env = {**os.environ, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    outcomes = {
        line.split("::")[1].split()[0]: line.split()[0]
        for line in done.stdout.splitlines()
        if line.startswith(("PASSED", "ERROR", "FAILED")) and "::" in line
    }
    assert outcomes == {
        "test_unmarked_flow_starting_the_server": "ERROR",
        "test_marked_flow": "PASSED",
        "test_unmarked_flow_on_the_running_server": "ERROR",
        "test_unmarked_without_prefect": "PASSED",
    }, done.stdout[-3000:]
    assert "without @pytest.mark.prefect" in done.stdout
