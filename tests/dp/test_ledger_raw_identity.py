"""Where the ledger's raw-input identity of a published file comes from: the sealed
file's authenticated associated data, not the manifest beside it (which anyone who can
write the output folder may delete or edit).

The sanitize stages here are the real ones a run strings together (ingest, transform,
publish), called without Prefect: the ledger only needs what publish writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from privacy import stages
from privacy.crypto import Keyring, read_header
from privacy.dp import BudgetLedger, DataIdentity, load_published
from privacy.errors import BudgetExhausted, IntegrityError
from privacy.hashing import content_key
from privacy.policy import Policy, policy_from_dict
from privacy.synth import synthesize

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "people.csv"
    synthesize(400, seed=11).write_csv(path)
    return path


def _policy(*, keep_last: int = 4, **outputs: Any) -> Policy:
    data = yaml.safe_load(DEMO.read_text())
    data["columns"]["email"]["keep_last"] = keep_last
    data["outputs"] = {**data.get("outputs", {}), **outputs}
    return policy_from_dict(data)


def _sanitize(source: Path, policy: Policy, out: Path, ring: Keyring) -> Path:
    """``source`` ingested, transformed and published into ``out`` under ``policy``."""
    out.mkdir(parents=True)
    parts, ingested = stages.ingest(
        source,
        policy,
        ring.for_scope("vault"),
        out / stages.VAULT_DIR,
        content=content_key(ring),
        save=lambda offset, part: part,
    )
    frame, transformed = stages.transform(pl.concat(parts), policy, ring)
    stages.publish(
        frame,
        policy,
        out,
        keys=ring.for_scope("published"),
        input_path=source,
        input_digest=ingested.params["input"],
        run_id="run",
        stages=[ingested.to_dict(), transformed.to_dict()],
    )
    return out


def _raw(identity: DataIdentity) -> tuple[str | None, str | None]:
    return identity.input_hmac_sha256, identity.input_key_id


def test_attack_manifest_deleted_gives_fresh_budget(
    source: Path, tmp_path: Path, ring: Keyring
) -> None:
    """Re-sanitize the same raw data under an edited policy (new sanitized bytes),
    delete the manifest, train on the data file alone: before, only the sanitized
    digest was left, and the same raw data got a fresh budget."""
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    first = _policy()
    _, _, spent = load_published(_sanitize(source, first, tmp_path / "a", ring), first, ring)
    ledger.charge(spent, epsilon=2.5, delta=1e-6, budget=3.0, run_id="first")

    edited = _policy(keep_last=2)
    out = _sanitize(source, edited, tmp_path / "b", ring)
    (out / stages.MANIFEST_FILE).unlink()
    renamed = out.parent / "elsewhere.sealed"
    (out / stages.SEALED_DATA_FILE).rename(renamed)
    _, _, again = load_published(renamed, edited, ring)
    assert again.sanitized_sha256 != spent.sanitized_sha256  # new bytes, same raw data
    with pytest.raises(BudgetExhausted, match=rf"{spent.dataset_id} .*spent 2\.5 of 3\.0"):
        ledger.charge(again, epsilon=1.0, delta=1e-6, budget=3.0, run_id="second")
    assert len(ledger.datasets()) == 1
    assert _raw(again) == _raw(spent) and again.input_hmac_sha256


def test_the_raw_identity_is_in_the_sealed_files_associated_data(
    source: Path, tmp_path: Path, ring: Keyring
) -> None:
    policy = _policy()
    out = _sanitize(source, policy, tmp_path / "out", ring)
    manifest = json.loads((out / stages.MANIFEST_FILE).read_text())
    with (out / stages.SEALED_DATA_FILE).open("rb") as handle:
        bound = read_header(handle).associated_data
    assert bound == {
        **stages.published_associated_data(policy),
        "input_hmac_sha256": manifest["input"]["hmac_sha256"],
        "input_key_id": manifest["input"]["key_id"],
    }
    _, _, identity = load_published(out, policy, ring)
    assert _raw(identity) == (manifest["input"]["hmac_sha256"], manifest["input"]["key_id"])


@pytest.mark.parametrize("field", ["hmac_sha256", "key_id"])
def test_a_manifest_whose_input_digest_differs_from_the_sealed_files_is_refused(
    source: Path, tmp_path: Path, ring: Keyring, field: str
) -> None:
    """The output.sha256 still matches: only the raw identity was edited."""
    policy = _policy()
    out = _sanitize(source, policy, tmp_path / "out", ring)
    path = out / stages.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["input"][field] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="input digest is not the one its sealed") as refused:
        load_published(out, policy, ring)
    assert "\n" not in str(refused.value)


def test_a_sealed_file_of_another_policy_is_still_refused(
    source: Path, tmp_path: Path, ring: Keyring
) -> None:
    out = _sanitize(source, _policy(), tmp_path / "out", ring)
    with pytest.raises(IntegrityError, match="associated data mismatch: policy_sha256"):
        load_published(out, _policy(keep_last=2), ring)


def test_a_plain_outputs_raw_identity_is_only_its_manifests(
    source: Path, tmp_path: Path, ring: Keyring
) -> None:
    """``outputs.seal: false``: no associated data; the manifest is all there is."""
    policy = _policy(seal=False)
    out = _sanitize(source, policy, tmp_path / "out", ring)
    manifest = json.loads((out / stages.MANIFEST_FILE).read_text())
    _, _, identity = load_published(out, policy, ring)
    assert _raw(identity) == (manifest["input"]["hmac_sha256"], manifest["input"]["key_id"])
    (out / stages.MANIFEST_FILE).unlink()
    _, _, alone = load_published(out / stages.DATA_FILE, policy, ring)
    assert _raw(alone) == (None, None) and alone.sanitized_sha256 == identity.sanitized_sha256
