"""Object storage (s3://) for inputs and for a run's published artifacts, against a
local S3-compatible server (moto's; the cloud is a true outside boundary): plain and
sealed input objects, the sealed release and its evidence uploaded as they are, one-line
errors for a missing bucket or key and for denied access, and no planted value anywhere
but the input object itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from flows.cli import main
from tests._demo import demo_policy_copy
from tests.conftest import KEYRING, PREFECT_HOME, WORK_TMP

pytestmark = pytest.mark.prefect

SENTINEL = "zyxs3sentinel@sentinel-pii.example"


def _policy(tmp_path: Path, demo_policy_path: Path, store: str | None) -> Path:
    outputs = {"outputs": {"object_store": store}} if store else {}
    return demo_policy_copy(tmp_path / "s3.yaml", demo_policy_path, **outputs)


def _sanitize(source: str, policy: Path, out: Path) -> int:
    return main(["-q", "sanitize", source, "--policy", str(policy), "--out", str(out)])


@pytest.fixture(scope="module")
def bucket(s3, people: pl.DataFrame) -> str:  # type: ignore[no-untyped-def]
    client = s3.client()
    client.create_bucket(Bucket="raw-data")
    client.create_bucket(Bucket="releases")
    planted = people.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.lit(SENTINEL))
        .otherwise(pl.col("email"))
        .alias("email")
    )
    client.put_object(Bucket="raw-data", Key="in/people.csv", Body=planted.write_csv().encode())
    return "raw-data"


@pytest.fixture(scope="module")
def good_run(
    s3, bucket: str, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("s3")
    policy = _policy(folder, demo_policy_path, "s3://releases/people")
    out = folder / "run-1"
    assert _sanitize(f"s3://{bucket}/in/people.csv", policy, out) == 0
    return {"folder": folder, "out": out, "policy": policy}


def test_an_object_is_sanitized_and_the_release_uploaded_sealed(
    good_run: dict[str, Any], s3, people: pl.DataFrame
) -> None:  # type: ignore[no-untyped-def]
    from privacy.crypto._sealed import MAGIC  # the format's own bytes

    out = good_run["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["path"] == "s3://raw-data/in/people.csv"
    assert manifest["input"]["rows"] == people.height
    assert manifest["output"]["object_store"] == "s3://releases/people/run-1"
    client = s3.client()
    listed = client.list_objects_v2(Bucket="releases", Prefix="people/run-1/")
    names = sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"])
    assert names == sorted(
        ["data.parquet.sealed", "manifest.json", "report.html", "audit.jsonl", "audit.jsonl.head"]
    )
    data = client.get_object(Bucket="releases", Key="people/run-1/data.parquet.sealed")[
        "Body"
    ].read()
    assert data.startswith(MAGIC) and data == (out / "data.parquet.sealed").read_bytes()
    report = client.get_object(Bucket="releases", Key="people/run-1/report.html")["Body"].read()
    assert report == (out / "report.html").read_bytes()


def test_a_sealed_object_is_opened_in_memory(
    s3, bucket: str, people: pl.DataFrame, demo_policy_path: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from privacy.crypto import Keyring, seal_bytes
    from tests.conftest import PASSPHRASE

    ring = Keyring.open(KEYRING, PASSPHRASE)
    sealed = seal_bytes(people.write_csv().encode(), ring.for_scope("vault"), {"artifact": "raw"})
    s3.client().put_object(Bucket=bucket, Key="in/people.csv.sealed", Body=sealed)
    policy = _policy(tmp_path, demo_policy_path, None)
    assert _sanitize(f"s3://{bucket}/in/people.csv.sealed", policy, tmp_path / "out") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["input"]["rows"] == people.height


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "s3://no-such-bucket/in/people.csv",
            "s3://no-such-bucket/in/people.csv: bucket no-such-bucket does not exist",
        ),
        ("s3://raw-data/in/nobody.csv", "s3://raw-data/in/nobody.csv: no such object"),
    ],
)
def test_a_missing_bucket_or_key_is_one_line(  # type: ignore[no-untyped-def]
    s3,
    bucket: str,
    demo_policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    url: str,
    expected: str,
) -> None:
    policy = _policy(tmp_path, demo_policy_path, None)
    assert _sanitize(url, policy, tmp_path / "out") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {expected}"]


def test_a_missing_release_bucket_fails_the_run_one_line(  # type: ignore[no-untyped-def]
    s3, bucket: str, demo_policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, demo_policy_path, "s3://no-release-bucket/x")
    assert _sanitize(f"s3://{bucket}/in/people.csv", policy, tmp_path / "out") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bucket no-release-bucket does not exist" in err[0]


def test_denied_access_is_one_line_naming_no_secret(  # type: ignore[no-untyped-def]
    demo_policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests._objectstore import object_store

    with object_store(enforce_auth=True) as strict:  # every key refused
        for key, value in strict.env().items():
            monkeypatch.setenv(key, value)
        policy = _policy(tmp_path, demo_policy_path, None)
        assert _sanitize("s3://raw-data/in/people.csv", policy, tmp_path / "out") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s3://raw-data/in/people.csv: access denied" in err[0], err
    assert "testing-secret-key" not in err[0]


def test_no_planted_value_outside_the_input_object(good_run: dict[str, Any], s3) -> None:  # type: ignore[no-untyped-def]
    """Every uploaded object, the run folder, Prefect's home and the temporary folder:
    the planted value is only in the input object (and, sealed, in the vault)."""
    client = s3.client()
    hits = []
    for name in ("releases", "raw-data"):
        for item in client.list_objects_v2(Bucket=name).get("Contents", []):
            if (name, item["Key"]) == ("raw-data", "in/people.csv"):
                continue
            body = client.get_object(Bucket=name, Key=item["Key"])["Body"].read()
            if SENTINEL.encode() in body:
                hits.append(f"s3://{name}/{item['Key']}")
    for root in (good_run["folder"], PREFECT_HOME, WORK_TMP):
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if SENTINEL.encode() in data:
                hits.append(str(path))
    assert hits == [], hits


def test_a_scheduled_run_skips_an_unchanged_object(  # type: ignore[no-untyped-def]
    s3, bucket: str, people: pl.DataFrame, demo_policy_path: Path, tmp_path: Path
) -> None:
    from flows.serve import scheduled_sanitize_flow

    client = s3.client()
    client.put_object(Bucket=bucket, Key="served/people.csv", Body=people.write_csv().encode())
    policy = _policy(tmp_path, demo_policy_path, None)
    data = yaml.safe_load(policy.read_text())
    data["schedule"] = {"skip_unchanged": True}
    policy.write_text(yaml.safe_dump(data, sort_keys=False))

    def run() -> dict[str, Any]:
        return scheduled_sanitize_flow(
            input_path=f"s3://{bucket}/served/people.csv",
            policy_path=str(policy),
            out_root=str(tmp_path / "root"),
            keyring_path=str(KEYRING),
        )

    first = run()
    assert first["status"] == "ok"
    assert run()["status"] == "skipped"
    client.put_object(
        Bucket=bucket, Key="served/people.csv", Body=people.head(400).write_csv().encode()
    )
    third = run()
    assert third["status"] == "ok" and third["sanitize"]["rows_in"] == 400
