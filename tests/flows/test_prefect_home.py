"""Where Prefect keeps its database: privpipe's own persistent home, unless set."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flows._prefect_env import configure_prefect


def test_without_prefect_home_privpipe_uses_its_own_private_persistent_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_HOME")
    monkeypatch.setenv("PRIVPIPE_HOME", str(tmp_path / "privpipe"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("PREFECT_PROFILES_PATH", "")  # recorded, so what the test sets goes
    monkeypatch.delenv("PREFECT_PROFILES_PATH")
    configure_prefect()
    home = tmp_path / "privpipe" / "prefect"
    assert os.environ["PREFECT_HOME"] == str(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert "PREFECT_PROFILES_PATH" not in os.environ  # no ~/.prefect profiles to keep


def test_a_users_prefect_profiles_are_still_read_and_a_set_home_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = tmp_path / "user" / ".prefect" / "profiles.toml"
    profiles.parent.mkdir(parents=True)
    profiles.write_text('active = "default"\n')
    monkeypatch.delenv("PREFECT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("PRIVPIPE_HOME", str(tmp_path / "privpipe"))
    monkeypatch.setenv("PREFECT_PROFILES_PATH", "")  # recorded, so what the test sets goes
    monkeypatch.delenv("PREFECT_PROFILES_PATH")
    configure_prefect()
    assert os.environ["PREFECT_PROFILES_PATH"] == str(profiles)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "mine"))
    configure_prefect()
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "mine")
