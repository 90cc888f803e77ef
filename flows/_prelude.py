"""What every flow does first: the one run prelude of ``sanitize`` and ``train`` (and so
of ``run``, whose subflows they are), and the one failed-step record.

A flow loads its policy and checks its signature (a policy that must be signed and is
not is refused before anything else), takes the keyring the command line unlocked,
names its run and the fields every audit record of it shares, and then works inside
:func:`audited`: its trail open, and a NOT RELEASABLE report written if the work fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from flows._tasks import unlocked
from privacy.audit import AuditTrail
from privacy.crypto import Keyring
from privacy.policy import Policy, load_policy
from privacy.policy_signing import enforce_policy_signature
from privacy.report import report_on_failure

__all__ = ["FlowRun", "audited", "record_failed_step", "start_run"]


@dataclass(frozen=True)
class FlowRun:
    """A flow run as it starts: its policy (signature checked), keyring and run id, and
    ``context``, the fields every record of its trail carries (the policy as audit
    records have always named it, ``{"id", "sha256"}`` and who signed it)."""

    policy: Policy
    policy_path: str
    ring: Keyring
    run_id: str
    context: dict[str, Any]

    @property
    def policy_ref(self) -> dict[str, str]:
        """What a task is handed of the policy: its path and hash (it re-checks both)."""
        return {"path": self.policy_path, "sha256": self.policy.hash}


def start_run(flow: str, policy_path: str, keyring_path: str) -> FlowRun:
    """Load and check the policy, then take the unlocked keyring: refused before any
    work when either cannot be used."""
    policy = load_policy(policy_path)
    signed = enforce_policy_signature(policy)  # {} or {"signed_by": [...]}
    ring = unlocked(keyring_path)
    run_id = str(flow_run.id or "local")
    identity = policy.identity()
    context = {
        "run_id": run_id,
        "flow": flow,
        "policy": {"id": identity["name"], "sha256": identity["sha256"], **signed},
    }
    return FlowRun(policy, policy_path, ring, run_id, context)


@contextlib.contextmanager
def audited(
    run: FlowRun, out: Path, trail_path: Path, *, report: bool = True
) -> Iterator[AuditTrail]:
    """The run's trail, open (signed when it closes, however the work ends); with
    ``report``, a failure writes the failed run's report in ``out`` after the trail is
    closed, before the error goes on."""
    with (
        report_on_failure(out, run.ring, trail_path, run.context, enabled=report),
        AuditTrail(trail_path, run.ring, context=run.context) as trail,
    ):
        yield trail


def record_failed_step(
    trail: AuditTrail,
    step: str,
    exc: BaseException,
    *,
    duration_s: float | None = None,
    inputs: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> None:
    """A step that failed, on the record at once (its error's type, never its message:
    a message may quote data), and flushed so a crash right after cannot lose it."""
    trail.append(
        step,
        outcome="failed",
        error=type(exc).__name__,
        duration_s=duration_s,
        inputs=inputs,
        params=params,
    )
    trail.flush()
