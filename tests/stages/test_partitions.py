"""Partitioned sanitization: the anonymization planned on merged counts and applied per
partition, the gate fed partition by partition, and whole flow runs (threads and a
two-worker Dask LocalCluster) that publish what the single-partition run publishes."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.cli import main
from privacy import kanon, stages
from privacy.errors import PrivacyGuaranteeError
from privacy.policy import Policy, policy_from_dict


def _parts(frame: pl.DataFrame, rows: int) -> list[pl.DataFrame]:
    return [frame.slice(offset, rows) for offset in range(0, frame.height, rows)]


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(pl.all())


@pytest.mark.parametrize("algorithm", ["optimal", "mondrian"])
@pytest.mark.parametrize("suppressed_records", ["remove", "mask"])
def test_plan_on_merged_counts_applied_per_partition_equals_the_whole(
    demo_policy: Policy, people: pl.DataFrame, algorithm: str, suppressed_records: str
) -> None:
    data = demo_policy.model_dump(mode="json")
    data["privacy"] = {**data["privacy"], "algorithm": algorithm}
    data["privacy"]["suppressed_records"] = suppressed_records
    policy = policy_from_dict(data)
    frame = people.select(list(policy.columns))
    whole, expected = kanon.anonymize(frame, policy)
    if algorithm == "optimal":  # (Mondrian's cuts leave no class to suppress)
        assert expected.suppressed > 0  # so the suppression is exercised too

    parts = _parts(frame, 130)
    counts = [stages.count(p, policy, row_offset=i * 130) for i, p in enumerate(parts)]
    rewrite, record = stages.plan_anonymization(
        [c for c in counts if c is not None], policy, rows=frame.height
    )
    assert rewrite is not None
    # the plan crosses a process boundary as JSON (sealed in the run's workspace)
    rewrite = kanon.Rewrite.from_dict(json.loads(json.dumps(rewrite.to_dict())))
    out = pl.concat([kanon.apply(p, rewrite) for p in parts])

    assert _sorted(out).equals(_sorted(whole))
    summary = expected.summary()
    for key in ("node", "suppressed", "classes", "k_achieved", "l_achieved", "discernibility"):
        assert record.counts[key] == summary[key], key
    assert record.rows_out == whole.height


def test_gate_merges_classes_across_partitions(demo_policy: Policy) -> None:
    """A class split 3 + 3 over two partitions is a class of 6 (k=5 holds); 2 + 2 is not."""
    qis = demo_policy.columns_with_role("quasi_identifier")
    kept = [n for n, s in demo_policy.columns.items() if s.rule != "drop"]

    def rows(n: int, zip_code: str) -> pl.DataFrame:
        base: dict[str, Any] = {c: ["x"] * n for c in kept}
        base.update({q: ["*"] * n for q in qis})
        base["zip"] = [zip_code] * n
        base["occupation"] = [f"job-{i % 3}" for i in range(n)]
        base["age"] = ["20-39"] * n
        return pl.DataFrame(base)

    def raw(n: int) -> pl.DataFrame:  # the input side: only its height matters here
        return pl.DataFrame({c: [f"raw-{c}-{i}" for i in range(n)] for c in demo_policy.columns})

    ok = stages.Gate(demo_policy)
    ok.add(raw(3), rows(3, "111**"))
    ok.add(raw(3), rows(3, "111**"))
    assert ok.finish().counts["verbatim_leaks"] == 0

    small = stages.Gate(demo_policy)
    small.add(raw(2), rows(2, "222**"))
    small.add(raw(2), rows(2, "222**"))
    with pytest.raises(PrivacyGuaranteeError, match=r"has 4 records, below privacy\.k=5"):
        small.finish()


def test_gate_finds_a_protected_value_leaked_into_another_partition(
    demo_policy: Policy, people: pl.DataFrame
) -> None:
    from privacy.crypto import StaticKeyProvider

    frame = people.select(list(demo_policy.columns))
    first, second = frame.slice(0, 250), frame.slice(250)
    keys = StaticKeyProvider(b"k" * 32)
    transformed = [stages.transform(p, demo_policy, keys, None)[0] for p in (first, second)]
    counts = [stages.count(t, demo_policy) for t in transformed]
    rewrite, _ = stages.plan_anonymization(counts, demo_policy, rows=frame.height)  # type: ignore[arg-type]
    assert rewrite is not None
    out_first, out_second = (kanon.apply(t, rewrite) for t in transformed)
    assert stages.Gate(demo_policy).add(first, out_first).add(second, out_second).finish()
    leaked = first.get_column("email")[3]  # a raw value of partition 1 ...
    out_second = out_second.with_columns(  # ... appears in the output of partition 2
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit(leaked))
        .otherwise(pl.col("occupation"))
        .alias("occupation")
    )
    gate = stages.Gate(demo_policy).add(first, out_first).add(second, out_second)
    with pytest.raises(PrivacyGuaranteeError, match="'email' in 'occupation'") as caught:
        gate.finish()
    assert leaked not in str(caught.value)


def _published(out: Path, keyring: Any) -> pl.DataFrame:
    from privacy.crypto import unseal_bytes

    return pl.read_parquet(io.BytesIO(unseal_bytes(out / "data.parquet.sealed", keyring)))


def _run(people_csv: Path, policy: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = [
        "--debug",
        "sanitize",
        str(people_csv),
        "--policy",
        str(policy),
        "--out",
        str(out),
        "--json",
    ]
    assert main([*args, *extra]) == 0
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return manifest


def _node(manifest: dict[str, Any]) -> Any:
    return next(s["counts"]["node"] for s in manifest["stages"] if s["stage"] == "anonymize")


@pytest.mark.prefect
def test_partitioned_runs_publish_what_one_partition_publishes(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path, session_keyring: Any
) -> None:
    """Threads, then a two-worker Dask LocalCluster (workers report to this session's
    Prefect server through PREFECT_API_URL, and unlock the keyring with
    PRIVPIPE_PASSPHRASE): the same rows, up to order, and the same chosen node."""
    whole = _run(people_csv, demo_policy_path, tmp_path / "whole")
    parts = _run(people_csv, demo_policy_path, tmp_path / "parts", "--partition-rows", "130")
    expected = _published(tmp_path / "whole", session_keyring)
    partitioned = {s["stage"]: s for s in parts["stages"]}
    assert partitioned["ingest"]["counts"]["partitions"] == 4
    assert partitioned["transform"]["counts"]["partitions"] == 4
    assert _node(parts) == _node(whole)
    assert _sorted(_published(tmp_path / "parts", session_keyring)).equals(_sorted(expected))

    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the session's own temporary server
    server.start()
    before = os.environ.get("PREFECT_API_URL")  # the server the runs above used
    mp = pytest.MonkeyPatch()
    mp.setenv("PREFECT_API_URL", server.api_url)  # else each worker starts a server
    try:
        dask = _run(
            people_csv,
            demo_policy_path,
            tmp_path / "dask",
            "--partition-rows",
            "130",
            "--task-runner",
            "dask",
            "--dask-workers",
            "2",
        )
    finally:
        mp.undo()
    assert os.environ.get("PREFECT_API_URL") == before
    assert _node(dask) == _node(whole)
    assert _sorted(_published(tmp_path / "dask", session_keyring)).equals(_sorted(expected))
    assert main(["audit", "verify", str(tmp_path / "dask" / "audit.jsonl")]) == 0
