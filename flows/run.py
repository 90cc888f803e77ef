"""The run flow: sanitize, then train on what was published, as one flow run (the two
flows are its subflows, each with its own audit trail in its own folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import flow  # noqa: E402

from flows.sanitize import sanitize_flow  # noqa: E402
from flows.train import train_flow  # noqa: E402

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
    """``out_dir/sanitized`` from the input, then ``out_dir/model`` from it."""
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
    # the run's report, recorded in the last trail it covers (the model's)
    record_report(report, Path(out_dir) / "model" / "audit.jsonl", ring)
    return {"status": "ok", "sanitize": sanitized, "train": trained}
