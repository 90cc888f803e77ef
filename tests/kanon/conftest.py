"""The UCI Adult benchmark (ARX's copy in ../shared), copied with the adult policy into
a temporary folder; tests that need it skip cleanly where ../shared is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from privacy.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
ADULT = ROOT.parent / "shared" / "data" / "adult"
# the adult policy's quasi-identifiers, in its order (the hierarchies are not read here)
QIS = load_policy(ROOT / "policies" / "adult.yaml").columns_with_role("quasi_identifier")


@pytest.fixture(scope="session")
def adult_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ADULT / "adult.csv").is_file():
        pytest.skip(f"../shared is absent: no Adult benchmark data at {ADULT}")
    folder = tmp_path_factory.mktemp("adult")
    for path in ADULT.glob("adult_hierarchy_*.csv"):
        shutil.copy(path, folder / path.name)
    shutil.copy(ROOT / "policies" / "adult.yaml", folder / "adult.yaml")
    return folder


@pytest.fixture(scope="session")
def adult_csv(adult_dir: Path) -> Path:
    return ADULT / "adult.csv"


@pytest.fixture(scope="session")
def adult_frame(adult_dir: Path, adult_csv: Path) -> pl.DataFrame:
    from privacy.io import read_input
    from privacy.policy import load_policy

    return read_input(adult_csv, load_policy(adult_dir / "adult.yaml"))
