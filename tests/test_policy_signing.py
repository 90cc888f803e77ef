"""Signed policies (four-eyes): a reviewer signs, the operator trusts the reviewer's key,
and sanitize and train refuse a policy that requires a signature it does not have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import main
from privacy.audit import read_trail
from privacy.crypto import Keyring
from privacy.errors import PolicyError
from privacy.policy import load_policy
from privacy.policy_signing import (
    SIGNERS_ENV,
    PolicySignatureError,
    enforce_policy_signature,
    load_trusted_signers,
    sign_policy,
    signature_path,
    signature_status,
    verify_policy_signature,
)
from tests._keys import FAST_SCRYPT
from tests._keys import PASSPHRASE as REVIEWER_PASSPHRASE

REQUIRE = "require_signed_policy: true\n"


@pytest.fixture(autouse=True)
def _no_operator_signers(monkeypatch: pytest.MonkeyPatch) -> None:
    """No signers file from the shell running the tests."""
    monkeypatch.delenv(SIGNERS_ENV, raising=False)


@pytest.fixture
def reviewer(tmp_path: Path) -> Keyring:
    """The reviewer's own keyring: not the one the pipeline runs with."""
    return Keyring.create(
        tmp_path / "reviewer" / "ring.json", REVIEWER_PASSPHRASE, scrypt_n=FAST_SCRYPT
    )


def _policy(tmp_path: Path, demo_policy_path: Path, extra: str = "", name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(demo_policy_path.read_text() + extra)
    return path


def _signers(tmp_path: Path, *rings: Keyring, require: bool = False) -> Path:
    path = tmp_path / "signers.yaml"
    entries = "".join(
        f'  - name: reviewer-{i}\n    public_key: "{r.signing_public_key.hex()}"\n'
        for i, r in enumerate(rings)
    )
    path.write_text(f"require_signed_policy: {str(require).lower()}\nsigners:\n{entries}")
    return path


# --------------------------------------------------------------------------- library


def test_sign_then_verify(tmp_path: Path, demo_policy_path: Path, reviewer: Keyring) -> None:
    policy = load_policy(_policy(tmp_path, demo_policy_path, REQUIRE))
    path, signature, dropped = sign_policy(policy, reviewer, "alice")
    assert path == tmp_path / "p.yaml.sig" == signature_path(policy.source)  # type: ignore[arg-type]
    assert dropped == 0 and signature.key_id == reviewer.signing_key_id
    document = json.loads(path.read_text())
    assert document["policy"] == {"name": "demo", "sha256": policy.hash, "files": {}}
    assert document["signatures"][0]["public_key"] == reviewer.signing_public_key.hex()

    trusted = load_trusted_signers(_signers(tmp_path, reviewer))
    [signer] = verify_policy_signature(policy, trusted)
    # the operator's name for the key, not the one the signature claims
    assert signer.name == "reviewer-0" and signer.key_id == reviewer.signing_key_id
    assert signer.signed_at.endswith("Z")


def test_a_changed_setting_is_refused_as_altered(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring
) -> None:
    path = _policy(tmp_path, demo_policy_path, REQUIRE)
    sign_policy(load_policy(path), reviewer, "alice")
    path.write_text(path.read_text().replace("  k: 5", "  k: 2"))  # one byte, a weaker k
    trusted = load_trusted_signers(_signers(tmp_path, reviewer))
    with pytest.raises(PolicySignatureError, match="altered since it was signed") as caught:
        verify_policy_signature(load_policy(path), trusted)
    assert caught.value.reason == "altered" and str(caught.value).startswith(f"{path}: ")


def test_a_comment_or_formatting_change_keeps_the_signature(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring
) -> None:
    """What is signed is the canonical hash: the validated policy as sorted JSON with
    every default filled in. Comments, blank lines, indentation and writing a default
    out change the file's bytes but not one setting, so the reviewed policy stands."""
    path = _policy(tmp_path, demo_policy_path, REQUIRE)
    sign_policy(load_policy(path), reviewer, "alice")
    text = path.read_text().replace("  k: 5", "  k:     5   # reviewed")
    path.write_text("# a comment added after review\n\n" + text + "outputs: {seal: true}\n")
    trusted = load_trusted_signers(_signers(tmp_path, reviewer))
    assert verify_policy_signature(load_policy(path), trusted)


def test_unsigned_is_refused(tmp_path: Path, demo_policy_path: Path, reviewer: Keyring) -> None:
    path = _policy(tmp_path, demo_policy_path, REQUIRE)
    trusted = load_trusted_signers(_signers(tmp_path, reviewer))
    with pytest.raises(PolicySignatureError, match=r"not signed \(no p.yaml.sig") as caught:
        verify_policy_signature(load_policy(path), trusted)
    assert caught.value.reason == "unsigned"


def test_an_untrusted_signer_is_refused(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring, keyring: Keyring
) -> None:
    """Whoever alters a policy can sign it with a key of their own: only the operator's
    signers file decides whose signature counts."""
    path = _policy(tmp_path, demo_policy_path, REQUIRE)
    sign_policy(load_policy(path), keyring, "mallory")
    trusted = load_trusted_signers(_signers(tmp_path, reviewer))
    with pytest.raises(PolicySignatureError) as caught:
        verify_policy_signature(load_policy(path), trusted)
    assert caught.value.reason == "untrusted"
    assert f"signed by mallory ({keyring.signing_key_id}), not a trusted signer in" in str(
        caught.value
    )


def test_an_edited_signature_file_is_refused(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring
) -> None:
    path = _policy(tmp_path, demo_policy_path, REQUIRE)
    sig, _, _ = sign_policy(load_policy(path), reviewer, "alice")
    document = json.loads(sig.read_text())
    document["signatures"][0]["signed_at"] = "2020-01-01T00:00:00Z"
    sig.write_text(json.dumps(document))
    trusted = load_trusted_signers(_signers(tmp_path, reviewer))
    with pytest.raises(PolicySignatureError, match="does not verify") as caught:
        verify_policy_signature(load_policy(path), trusted)
    assert caught.value.reason == "bad"


def test_a_changed_hierarchy_file_is_refused(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring
) -> None:
    """The canonical hash holds a hierarchy file's path only; the signature binds its bytes."""
    (tmp_path / "sex.csv").write_text("Male;*\nFemale;*\n")
    text = demo_policy_path.read_text().replace(
        "  sex:\n    rule: keep\n    role: quasi_identifier\n",
        "  sex:\n    rule: keep\n    role: quasi_identifier\n"
        "    hierarchy: {kind: file, path: sex.csv}\n",
    )
    path = tmp_path / "p.yaml"
    path.write_text(text)
    sig, _, _ = sign_policy(load_policy(path), reviewer, "alice")
    assert json.loads(sig.read_text())["policy"]["files"].keys() == {"sex.csv"}
    trusted = load_trusted_signers(_signers(tmp_path, reviewer))
    assert verify_policy_signature(load_policy(path), trusted)
    (tmp_path / "sex.csv").write_text("Male;M\nFemale;F\n")
    with pytest.raises(PolicySignatureError, match=r"hierarchy file sex\.csv changed"):
        verify_policy_signature(load_policy(path), trusted)


def test_several_reviewers_sign_and_a_new_version_drops_old_signatures(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring, keyring: Keyring
) -> None:
    path = _policy(tmp_path, demo_policy_path)
    sign_policy(load_policy(path), reviewer, "alice")
    sig, _, _ = sign_policy(load_policy(path), keyring, "bob")
    sign_policy(load_policy(path), reviewer, "alice")  # again: replaces her own
    assert [s["signer"] for s in json.loads(sig.read_text())["signatures"]] == ["bob", "alice"]
    trusted = load_trusted_signers(_signers(tmp_path, reviewer, keyring))
    assert len(verify_policy_signature(load_policy(path), trusted)) == 2

    path.write_text(path.read_text().replace("  k: 5", "  k: 6"))
    _, _, dropped = sign_policy(load_policy(path), keyring, "bob")
    assert dropped == 2
    [only] = verify_policy_signature(load_policy(path), trusted)
    assert only.name == "reviewer-1"


def test_enforcement_follows_the_policy_or_the_operator(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    required = load_policy(_policy(tmp_path, demo_policy_path, REQUIRE, "required.yaml"))
    optional = load_policy(_policy(tmp_path, demo_policy_path, "", "optional.yaml"))
    with pytest.raises(PolicySignatureError, match=f"set {SIGNERS_ENV}") as caught:
        enforce_policy_signature(required)
    assert caught.value.reason == "no_trust"
    assert enforce_policy_signature(optional) == {}

    monkeypatch.setenv(SIGNERS_ENV, str(_signers(tmp_path, reviewer)))
    with pytest.raises(PolicySignatureError, match="not signed"):
        enforce_policy_signature(required)
    assert enforce_policy_signature(optional) == {}  # not required, not signed: nothing
    sign_policy(optional, reviewer, "alice")
    [entry] = enforce_policy_signature(optional)["signed_by"]  # not required, yet recorded
    assert entry["name"] == "reviewer-0" and set(entry) == {"name", "key_id", "signed_at"}
    assert "signature_required" not in enforce_policy_signature(optional)

    # the operator's file can require it of every policy: removing the policy's own
    # flag (an edit a signature would catch only if one were asked for) does not help
    monkeypatch.setenv(SIGNERS_ENV, str(_signers(tmp_path, reviewer, require=True)))
    stripped = load_policy(_policy(tmp_path, demo_policy_path, "", "stripped.yaml"))
    with pytest.raises(PolicySignatureError, match="not signed"):
        enforce_policy_signature(stripped)
    # and the run's audit context says it was required, for the reviewer's report
    assert enforce_policy_signature(optional)["signature_required"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("signers: [{name: a, public_key: abc}]", "signers.0.public_key: String should match"),
        ('signers: [{name: a, public_key: "' + "0" * 64 + '", role: x}]', "signers.0.role:"),
        ('signers: [{name: a, public_key: "' + "1" * 64 + '", key_id: sig-0}]', "key_id: sig-0"),
        (
            'signers: [{name: a, public_key: "'
            + "1" * 64
            + '"}, {name: b, public_key: "'
            + "1" * 64
            + '"}]',
            "signers.1: key sig-",
        ),
    ],
)
def test_a_bad_signers_file_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "signers.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message) as caught:
        load_trusted_signers(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_status_says_unchecked_without_trusted_signers(
    tmp_path: Path, demo_policy_path: Path, reviewer: Keyring
) -> None:
    policy = load_policy(_policy(tmp_path, demo_policy_path))
    assert signature_status(policy, None).state == "unsigned"
    sign_policy(policy, reviewer, "alice")
    status = signature_status(policy, None)
    assert status.state == "unchecked" and "signed by alice" in status.detail
    assert not status.required


# --------------------------------------------------------------------------- command line


def test_policy_sign_and_check_on_the_command_line(
    tmp_path: Path,
    demo_policy_path: Path,
    reviewer: Keyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _policy(tmp_path, demo_policy_path, REQUIRE)
    with monkeypatch.context() as env:
        env.setenv("PRIVPIPE_PASSPHRASE", REVIEWER_PASSPHRASE)
        args = ["policy", "sign", str(path), "--keyring", str(reviewer.path), "--signer", "alice"]
        assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"signed {path} as alice (key {reviewer.signing_key_id})")
    assert reviewer.signing_public_key.hex() in err
    steps = read_trail(reviewer.path.parent / "audit.jsonl")  # the reviewer's own trail
    assert steps[-1]["step"] == "policy.sign"
    assert steps[-1]["params"]["policy_sha256"] == load_policy(path).hash

    signers = _signers(tmp_path, reviewer)
    assert main(["policy", "check", str(path), "--trusted-signers", str(signers), "--json"]) == 0
    signature = json.loads(capsys.readouterr().out)["signature"]
    assert signature["state"] == "verified" and signature["required"] is True
    assert signature["signed_by"][0]["key_id"] == reviewer.signing_key_id

    path.write_text(path.read_text().replace("  k: 5", "  k: 2"))
    monkeypatch.setenv(SIGNERS_ENV, str(signers))
    assert main(["policy", "check", str(path)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("signature: altered (required: sanitize and train refuse it) — ")


def test_sanitize_and_train_refuse_an_unsigned_policy_before_writing_anything(
    tmp_path: Path,
    people_csv: Path,
    demo_policy_path: Path,
    reviewer: Keyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SIGNERS_ENV, str(_signers(tmp_path, reviewer)))
    policy = _policy(tmp_path, demo_policy_path, REQUIRE)
    out = tmp_path / "out"
    assert main(["sanitize", str(people_csv), "--policy", str(policy), "--out", str(out)]) == 2
    expected = f"error: {policy}: not signed (no p.yaml.sig beside it; "
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1
    assert not out.exists()

    model = tmp_path / "model"
    assert main(["train", str(out), "--policy", str(policy), "--out", str(model)]) == 2
    assert capsys.readouterr().err.startswith(expected)
    assert not model.exists()


@pytest.mark.prefect
def test_a_signed_policy_runs_and_the_audit_records_who_signed_it(
    tmp_path: Path,
    people_csv: Path,
    demo_policy_path: Path,
    reviewer: Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SIGNERS_ENV, str(_signers(tmp_path, reviewer)))
    policy = _policy(tmp_path, demo_policy_path, REQUIRE)
    policy.write_text(policy.read_text().replace("  budget: 3.0\n", "  budget: 3.0\n  epochs: 2\n"))
    sign_policy(load_policy(policy), reviewer, "alice")
    expected = [
        {
            "name": "reviewer-0",
            "key_id": reviewer.signing_key_id,
            "signed_at": json.loads(signature_path(policy).read_text())["signatures"][0][
                "signed_at"
            ],
        }
    ]
    out = tmp_path / "out"
    assert main(["sanitize", str(people_csv), "--policy", str(policy), "--out", str(out)]) == 0
    steps = read_trail(out / "audit.jsonl")
    assert steps and all(r["policy"]["signed_by"] == expected for r in steps)

    model = tmp_path / "model"
    args = ["train", str(out), "--policy", str(policy), "--out", str(model)]
    assert main([*args, "--ledger", str(tmp_path / "ledger.json")]) == 0
    steps = read_trail(model / "audit.jsonl")
    assert steps and all(r["policy"]["signed_by"] == expected for r in steps)


def test_a_task_refuses_a_policy_changed_after_the_run_checked_it(
    tmp_path: Path, demo_policy_path: Path
) -> None:
    """The flow verifies the policy (its signature) once; each task loads it again by
    path, so each re-checks the canonical hash the flow verified."""
    import yaml

    from flows._tasks import run_policy
    from privacy.errors import PolicyError
    from privacy.policy import load_policy

    path = tmp_path / "policy.yaml"
    data = yaml.safe_load(demo_policy_path.read_text())
    for column in data["columns"].values():  # hierarchy files stay beside the demo policy
        if (column.get("hierarchy") or {}).get("kind") == "file":
            column["hierarchy"]["path"] = str(demo_policy_path.parent / column["hierarchy"]["path"])
    path.write_text(yaml.safe_dump(data))
    ref = {"path": str(path), "sha256": load_policy(path).hash}
    assert run_policy(ref).hash == ref["sha256"]
    data["privacy"]["k"] = 2  # swapped mid-run
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match="policy changed while the run was going"):
        run_policy(ref)


@pytest.mark.prefect
def test_the_flows_themselves_refuse_an_unsigned_policy(
    tmp_path: Path,
    people_csv: Path,
    demo_policy_path: Path,
    reviewer: Keyring,
    session_keyring: Keyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI refuses first; a flow started some other way (a deployment, a served
    schedule, Python) refuses too, before it writes anything; and so does `run`."""
    from flows import _keys
    from flows.sanitize import sanitize_flow
    from flows.train import train_flow
    from privacy.policy_signing import PolicySignatureError

    monkeypatch.setenv(SIGNERS_ENV, str(_signers(tmp_path, reviewer)))
    policy = _policy(tmp_path, demo_policy_path, REQUIRE)
    _keys.register(session_keyring)
    ring = str(session_keyring.path)
    out, model = tmp_path / "out", tmp_path / "model"
    with pytest.raises(PolicySignatureError, match="not signed"):
        sanitize_flow(str(people_csv), str(policy), str(out), ring)
    assert not out.exists()
    with pytest.raises(PolicySignatureError, match="not signed"):
        train_flow(str(out), str(policy), str(model), ring, str(tmp_path / "ledger.jsonl"))
    assert not model.exists()
    args = ["run", str(people_csv), "--policy", str(policy), "--out", str(tmp_path / "run")]
    assert main(args) == 2
    assert "not signed" in capsys.readouterr().err and not (tmp_path / "run").exists()
