"""The run flow: sanitize, then train on what was published, then the policy's DP
releases (a synthetic table, statistics), as one flow run (each flow is a subflow with
its own audit trail in its own folder, all charged to one ledger)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import flow  # noqa: E402

from flows.release import statistics_flow, synthesize_flow  # noqa: E402
from flows.sanitize import sanitize_flow  # noqa: E402
from flows.train import train_flow  # noqa: E402
from privacy.policy import load_policy  # noqa: E402

__all__ = ["run_flow"]


@flow(name="run", persist_result=False, log_prints=False, validate_parameters=True)
def run_flow(
    input_path: str,
    policy_path: str,
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    device: str = "auto",
    overwrite: bool = False,
) -> dict[str, Any]:
    """``out_dir/sanitized`` from the input, then ``out_dir/model`` from it, then
    ``out_dir/synthetic`` and ``out_dir/stats`` when the policy makes them."""
    sanitized_dir = str(Path(out_dir) / "sanitized")
    sanitized = sanitize_flow(input_path, policy_path, sanitized_dir, keyring_path, overwrite)
    trained = train_flow(
        sanitized_dir,
        policy_path,
        str(Path(out_dir) / "model"),
        keyring_path,
        ledger_path,
        device,
        overwrite,
        out_root=out_dir,  # model/ is privpipe's: a link there is refused
    )
    releases: dict[str, Any] = {}
    last_trail = Path(out_dir) / "model" / "audit.jsonl"
    for kind, folder, release_flow in (
        ("synthetic", "synthetic", synthesize_flow),
        ("statistics", "stats", statistics_flow),
    ):
        if kind in load_policy(policy_path).releases():
            target = str(Path(out_dir) / folder)
            releases[kind] = release_flow(
                sanitized_dir, policy_path, target, keyring_path, ledger_path, overwrite, out_dir
            )
            last_trail = Path(target) / "audit.jsonl"
    from flows._keys import keyring as _keyring
    from privacy.integrity import witness_path
    from privacy.report import record_report, write_report

    ring = _keyring(keyring_path)
    report = write_report(
        Path(out_dir),
        ring.signing_public_key,
        witness=witness_path(keyring_path),
        ledger=Path(ledger_path) if Path(ledger_path).is_file() else None,
    )
    # the run's report, recorded in the last trail it covers
    record_report(report, last_trail, ring)
    return {"status": "ok", "sanitize": sanitized, "train": trained, **releases}
