"""The layout of a sanitize output folder, and what each sealed file in it is bound to.

Every layer that reads a run's folder (DP training, the schedule, the report) needs the
same names and the same associated data as the stages that write it; they live here,
below all of them, so that none imports the stages for a file name.
"""

from __future__ import annotations

from collections.abc import Mapping

from privacy.policy import Policy

__all__ = [
    "AUDIT_FILE",
    "DATA_FILE",
    "MANIFEST_FILE",
    "SEALED_DATA_FILE",
    "TRAINING_VIEW_FILE",
    "VAULT_DIR",
    "STATISTICS_CARD",
    "SYNTHETIC_CARD",
    "published_associated_data",
    "release_associated_data",
    "release_file",
    "training_view_associated_data",
]

DATA_FILE = "data.parquet"
SEALED_DATA_FILE = "data.parquet.sealed"
AUDIT_FILE = "audit.jsonl"
MANIFEST_FILE = "manifest.json"
TRAINING_VIEW_FILE = "training-view.parquet.sealed"  # in the vault folder
VAULT_DIR = "vault"  # the custodian's folder in a run's output
SYNTHETIC_CARD = "synthetic_card.json"  # a DP synthetic table's folder
STATISTICS_CARD = "statistics_card.json"  # a DP statistics release's folder


def release_file(kind: str, *, sealed: bool, format: str = "parquet") -> str:
    """The data file of a DP release folder: ``synthetic.parquet.sealed``,
    ``statistics.csv``, ..."""
    return f"{kind}.{format}" + (".sealed" if sealed else "")


def release_associated_data(policy: Policy, kind: str) -> dict[str, str]:
    """What a sealed DP release (``synthetic``, ``statistics``) is bound to: it opens
    as that release of this policy only."""
    return {"artifact": kind, "dataset": policy.name, "policy_sha256": policy.hash}


def training_view_associated_data(
    policy: Policy, input_digest: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What a training view is bound to (as :func:`published_associated_data`): a view
    cannot be opened as another policy's, nor as the published data, nor the reverse."""
    bound = {"artifact": "training-view", "dataset": policy.name, "policy_sha256": policy.hash}
    if input_digest is not None:
        bound["input_hmac_sha256"] = str(input_digest["hmac_sha256"])
        bound["input_key_id"] = str(input_digest["key_id"])
    return bound


def published_associated_data(
    policy: Policy, input_digest: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What a published sealed file is bound to: opening it as another data set's output,
    or under another policy, fails. :func:`publish` adds the raw input's keyed digest
    (``input_hmac_sha256``, ``input_key_id``; ``input_digest`` from :func:`ingest`): the
    budget ledger's identity of the raw data, authenticated with the file, so deleting or
    editing the manifest beside it cannot shed it. Without ``input_digest`` this is what
    a reader expects (a header's extra fields pass the check)."""
    bound = {"artifact": "published", "dataset": policy.name, "policy_sha256": policy.hash}
    if input_digest is not None:
        bound["input_hmac_sha256"] = str(input_digest["hmac_sha256"])
        bound["input_key_id"] = str(input_digest["key_id"])
    return bound
