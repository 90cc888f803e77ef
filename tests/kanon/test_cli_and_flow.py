"""privpipe risk, and privpipe sanitize on Adult with the shipped adult policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from privacy.errors import PolicyError
from privacy.policy import policy_from_dict

from .conftest import QIS


def test_risk_reports_before_and_after_and_changes_nothing(
    adult_dir: Path, adult_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = adult_csv.read_bytes()
    assert main(["risk", str(adult_csv), "--policy", str(adult_dir / "adult.yaml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["records"] == 30162
    assert report["risk_before"]["classes"] == 18109  # distinct quasi-identifier rows
    assert report["risk_before"]["prosecutor_highest"] == 1.0
    assert report["risk_after"]["prosecutor_highest"] == 0.2  # k = 5
    assert report["risk_after"]["records_above_threshold"] == 0.0
    assert report["anonymization"]["suppressed"] == 105
    assert report["anonymization"]["discernibility"] == 7_220_555
    assert adult_csv.read_bytes() == before
    assert not list(adult_dir.glob("*.parquet"))


def test_risk_does_not_import_prefect_or_presidio(adult_dir: Path, adult_csv: Path) -> None:
    args = ["risk", str(adult_csv), "--policy", str(adult_dir / "adult.yaml"), "--json"]
    code = (
        "import sys; from flows.cli import main; "
        f"rc = main({args!r}); "
        "assert rc == 0; "
        "assert not {'prefect', 'presidio_analyzer', 'torch'} & set(sys.modules), 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.prefect
def test_sanitize_adult_publishes_unsealed_k_anonymous_data(
    adult_dir: Path, adult_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "adult-out"
    rc = main(
        [
            "sanitize",
            str(adult_csv),
            "--policy",
            str(adult_dir / "adult.yaml"),
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    anonymity = summary["anonymization"]
    assert anonymity["k_achieved"] == 5 and anonymity["suppressed"] == 105
    assert anonymity["classes"] == 356 and anonymity["discernibility"] == 7_220_555
    assert anonymity["node"] == {
        "sex": 0,
        "age": 0,
        "race": 1,
        "marital-status": 2,
        "education": 3,
        "native-country": 2,
        "workclass": 2,
        "occupation": 1,
    }
    data = pl.read_parquet(out / "data.parquet")  # published unsealed, as the policy says
    assert data.height == 30162 - 105
    sizes = data.group_by(QIS).len().get_column("len")  # the independent re-count
    assert sizes.min() >= 5 and sizes.len() == 356


def test_policy_refuses_a_hierarchy_on_a_generalize_rule_and_l_without_sensitive() -> None:
    with pytest.raises(PolicyError, match="use rule keep"):
        policy_from_dict(
            {
                "name": "t",
                "columns": {
                    "age": {
                        "type": "integer",
                        "rule": "generalize",
                        "width": 10,
                        "role": "quasi_identifier",
                        "hierarchy": {"kind": "intervals", "widths": [5]},
                    }
                },
            }
        )
    with pytest.raises(PolicyError, match=r"privacy\.l_diversity: needs exactly one column"):
        policy_from_dict(
            {
                "name": "t",
                "columns": {"zip": {"rule": "keep", "role": "quasi_identifier"}},
                "privacy": {"l_diversity": {"l": 2}},
            }
        )
