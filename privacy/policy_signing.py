"""Signed policies (four-eyes): a reviewer signs a policy with an Ed25519 key they hold;
a run that requires a signature refuses a policy that no trusted reviewer signed as it
is now.

**The signature file** lies beside the policy, named after it (``demo.yaml`` ->
``demo.yaml.sig``); several reviewers may sign the same policy::

    {"format": "privpipe-policy-signature", "version": 1,
     "policy": {"name": "demo", "sha256": "<canonical hash>", "files": {"h.csv": "<sha256>"}},
     "signatures": [{"signer": "alice", "key_id": "sig-…", "public_key": "<hex>",
                     "signed_at": "2026-…Z", "signature": "<hex>"}, …]}

Each signature is Ed25519 over ``privpipe-policy-signature/v1`` and a newline, then the
sorted, compact JSON of the policy's name, canonical hash and files, and the signature's
own signer, key id, public key and time: none of them can be changed alone. What is
signed is the *canonical* hash (:func:`privacy.policy.policy_hash`), not the file's
bytes: a comment or a reformatting leaves the signature valid, a changed setting does
not. ``files`` are the hierarchy files the policy names, whose contents the canonical
hash does not cover (it holds their paths only).

**Trust** comes from the operator who runs the pipeline, never from the policy or the
signature file (whoever alters a policy can sign it with a key of their own):
``PRIVPIPE_POLICY_SIGNERS`` names a YAML (or JSON) file::

    require_signed_policy: false   # true: every policy run here must be signed
    signers:
      - {name: alice, public_key: "<64 hex>"}   # from `privpipe policy sign` or `keys list`

A policy is run only with a valid signature by one of these keys when the policy sets
``require_signed_policy: true`` *or* the signers file does. The second matters: whoever
can edit a policy can also remove its flag, but not the operator's file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from privacy._atomic import atomic_path
from privacy.errors import PolicyError, PolicySignatureError, SignatureReason
from privacy.hashing import sha256_file
from privacy.integrity import (
    SIGNER_NAME,
    Signer,
    TrustedSigner,
    TrustedSigners,
    first_error,
    load_trusted_signers,
    signing_key_id,
)
from privacy.policy import FileHierarchy, Policy

__all__ = [
    "SIGNATURE_SUFFIX",
    "SIGNERS_ENV",
    "PolicySignature",
    "PolicySignatureError",
    "SignatureStatus",
    "TrustedSigner",
    "TrustedSigners",
    "VerifiedSigner",
    "enforce_policy_signature",
    "load_trusted_signers",
    "read_signatures",
    "sign_policy",
    "signature_path",
    "signature_status",
    "trusted_signers_from_env",
    "verify_policy_signature",
]

SIGNERS_ENV = "PRIVPIPE_POLICY_SIGNERS"
SIGNATURE_SUFFIX = ".sig"
FORMAT = "privpipe-policy-signature"
_DOMAIN = b"privpipe-policy-signature/v1\n"
_NAME = SIGNER_NAME  # one printable line: it ends up in messages and audits

_MISSING = "missing"

Reason = SignatureReason  # kept for callers: the tree is in privacy.errors


# --------------------------------------------------------------------------- formats


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SignedPolicy(_Strict):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    files: dict[str, str] = Field(default_factory=dict)


class PolicySignature(_Strict):
    """One reviewer's signature, as the signature file holds it."""

    signer: str = Field(pattern=_NAME)
    key_id: str
    public_key: str = Field(pattern=r"^[0-9a-f]{64}$")
    signed_at: str
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")


class _SignatureFile(_Strict):
    format: Literal["privpipe-policy-signature"]
    version: Literal[1]
    policy: _SignedPolicy
    signatures: list[PolicySignature] = Field(min_length=1)


@dataclass(frozen=True)
class VerifiedSigner:
    """A valid signature by a trusted key: what the audit records (never a secret)."""

    name: str
    key_id: str
    signed_at: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "key_id": self.key_id, "signed_at": self.signed_at}


@dataclass(frozen=True)
class SignatureStatus:
    """What ``privpipe policy check`` says of a policy's signature.

    ``state``: verified (signed by a trusted key), unchecked (validly signed, but no
    trusted signers are configured), or a :class:`PolicySignatureError` reason."""

    state: str
    detail: str
    required: bool
    signed_by: tuple[VerifiedSigner, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "detail": self.detail,
            "required": self.required,
            "signed_by": [s.to_dict() for s in self.signed_by],
        }


# --------------------------------------------------------------------------- trust


def trusted_signers_from_env() -> TrustedSigners | None:
    """The signers file ``PRIVPIPE_POLICY_SIGNERS`` names, or None when it is unset."""
    value = os.environ.get(SIGNERS_ENV)
    return load_trusted_signers(Path(value).expanduser(), named_by=SIGNERS_ENV) if value else None


# --------------------------------------------------------------------------- signing


def signature_path(policy_path: str | Path) -> Path:
    """Where a policy's signatures are: ``POLICY.sig`` beside it."""
    path = Path(policy_path)
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def sign_policy(policy: Policy, signer: Signer, name: str) -> tuple[Path, PolicySignature, int]:
    """Sign ``policy`` (loaded from its file) as ``name`` with ``signer``'s Ed25519 key.

    Adds the signature to ``POLICY.sig`` (replacing one by the same key); signatures of
    an earlier version of the policy are dropped, since they no longer hold. Returns the
    file, the new signature and how many stale signatures were dropped."""
    source = _source(policy)
    if not re.match(_NAME, name):
        raise PolicyError(f"--signer: {name!r} must be one printable line of 1 to 64 characters")
    files = _file_hashes(policy)
    for relative, digest in files.items():
        if digest == _MISSING:
            raise PolicyError(f"{source}: hierarchy file {relative} not found; nothing signed")
    signed = _SignedPolicy(name=policy.name, sha256=policy.hash, files=files)
    public = signer.signing_public_key
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {
        "signer": name,
        "key_id": signing_key_id(public),
        "public_key": public.hex(),
        "signed_at": when,
    }
    signature = PolicySignature(**fields, signature=signer.sign(_message(signed, fields)).hex())
    path = signature_path(source)
    kept: list[PolicySignature] = []
    dropped = 0
    if path.exists():
        try:
            previous = _read(path)
        except PolicySignatureError:
            previous = None  # unreadable: replaced by a fresh file
        if previous is not None and previous.policy == signed:
            kept = [s for s in previous.signatures if s.key_id != signature.key_id]
        elif previous is not None:
            dropped = len(previous.signatures)
    document = _SignatureFile(
        format=FORMAT, version=1, policy=signed, signatures=[*kept, signature]
    )
    _write_json(path, document.model_dump(mode="json"))
    return path, signature, dropped


def read_signatures(policy: Policy) -> list[PolicySignature]:
    """The signatures beside a policy, each checked against its own key and against the
    policy as it is now. Raises :class:`PolicySignatureError` (unsigned, malformed,
    altered, bad); says nothing about trust."""
    source = _source(policy)
    path = signature_path(source)
    if not path.exists():
        raise PolicySignatureError(
            f"{source}: not signed (no {path.name} beside it; a reviewer signs it with "
            "`privpipe policy sign`)",
            reason="unsigned",
        )
    document = _read(path)
    if document.policy.sha256 != policy.hash or document.policy.name != policy.name:
        raise PolicySignatureError(
            f"{source}: altered since it was signed (signed sha256 "
            f"{document.policy.sha256[:12]}…, now {policy.hash[:12]}…): review and sign it again",
            reason="altered",
        )
    current = _file_hashes(policy)
    for relative in sorted(set(current) | set(document.policy.files)):
        if current.get(relative) != document.policy.files.get(relative):
            raise PolicySignatureError(
                f"{source}: hierarchy file {relative} changed since the policy was signed",
                reason="altered",
            )
    for sig in document.signatures:
        if not _valid(document.policy, sig):
            raise PolicySignatureError(
                f"{path}: the signature by {sig.signer} ({sig.key_id}) does not verify: "
                "the signature file was altered",
                reason="bad",
            )
    return list(document.signatures)


def verify_policy_signature(policy: Policy, trusted: TrustedSigners) -> list[VerifiedSigner]:
    """The trusted reviewers who signed ``policy`` as it is now (at least one), named as
    the operator's signers file names them. Raises :class:`PolicySignatureError`."""
    signatures = read_signatures(policy)
    verified = []
    for sig in signatures:
        name = trusted.name_for(bytes.fromhex(sig.public_key))
        if name is not None:
            verified.append(VerifiedSigner(name, sig.key_id, sig.signed_at))
    if not verified:
        who = ", ".join(f"{s.signer} ({s.key_id})" for s in signatures)
        where = f" in {trusted.path}" if trusted.path is not None else ""
        raise PolicySignatureError(
            f"{_source(policy)}: signed by {who}, not a trusted signer{where}",
            reason="untrusted",
        )
    return verified


def enforce_policy_signature(policy: Policy) -> dict[str, Any]:
    """Refuse ``policy`` where a signature is required and it has no valid one by a
    signer trusted through ``PRIVPIPE_POLICY_SIGNERS``; return the fields for the run's
    audit context: ``{"signed_by": [{name, key_id, signed_at}, …]}`` (with
    ``"signature_required": True`` where it was required), or ``{}``.

    Required: the policy's ``require_signed_policy``, or the signers file's. Where it is
    not required, a valid trusted signature is still recorded, and anything else is
    recorded as nothing (the policy's hash is in the audit either way)."""
    trusted = trusted_signers_from_env()
    required = policy.require_signed_policy or bool(trusted and trusted.require_signed_policy)
    if trusted is None:
        if required:
            raise PolicySignatureError(
                f"{_label(policy)}: require_signed_policy is set, but no trusted signers "
                f"are configured: set {SIGNERS_ENV} to a signers file",
                reason="no_trust",
            )
        return {}
    try:
        signers = verify_policy_signature(policy, trusted)
    except PolicySignatureError:
        if required:
            raise
        return {}
    signed: dict[str, Any] = {"signed_by": [s.to_dict() for s in signers]}
    if required:
        signed["signature_required"] = True
    return signed


def signature_status(policy: Policy, trusted: TrustedSigners | None) -> SignatureStatus:
    """The signature's state for a report; raises only for a policy not read from a file."""
    required = policy.require_signed_policy or bool(trusted and trusted.require_signed_policy)
    try:
        signatures = read_signatures(policy)
        if trusted is None:
            who = ", ".join(f"{s.signer} ({s.key_id}) at {s.signed_at}" for s in signatures)
            return SignatureStatus(
                "unchecked",
                f"signed by {who}; not checked against trusted signers ({SIGNERS_ENV} unset)",
                required,
            )
        verified = verify_policy_signature(policy, trusted)
    except PolicySignatureError as exc:
        return SignatureStatus(exc.reason, str(exc), required)
    who = ", ".join(f"{s.name} ({s.key_id}) at {s.signed_at}" for s in verified)
    return SignatureStatus("verified", f"signed by {who}", required, tuple(verified))


# --------------------------------------------------------------------------- internals


def _source(policy: Policy) -> Path:
    if policy.source is None:
        raise PolicySignatureError(
            "<policy>: only a policy read from a file can be signed or verified",
            reason="unsigned",
        )
    return policy.source


def _label(policy: Policy) -> str:
    return str(policy.source) if policy.source is not None else "<policy>"


def _file_hashes(policy: Policy) -> dict[str, str]:
    """SHA-256 of each hierarchy file the policy names, by the path written in it."""
    hashes: dict[str, str] = {}
    for spec in policy.columns.values():
        if isinstance(spec.hierarchy, FileHierarchy):
            path = policy.resolve_path(spec.hierarchy.path)
            try:
                hashes[spec.hierarchy.path] = sha256_file(path)
            except OSError:
                hashes[spec.hierarchy.path] = _MISSING
    return hashes


def _message(policy: _SignedPolicy, fields: dict[str, str]) -> bytes:
    body = {
        "policy": policy.name,
        "policy_sha256": policy.sha256,
        "files": policy.files,
        **fields,
    }
    return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _valid(policy: _SignedPolicy, sig: PolicySignature) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public = bytes.fromhex(sig.public_key)
    if signing_key_id(public) != sig.key_id:
        return False
    fields = sig.model_dump(exclude={"signature"})
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            bytes.fromhex(sig.signature), _message(policy, fields)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _read(path: Path) -> _SignatureFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise PolicySignatureError(
            f"{path}: not a policy signature file", reason="malformed"
        ) from None
    try:
        return _SignatureFile.model_validate(data)
    except ValidationError as exc:
        raise PolicySignatureError(
            f"{path}: malformed policy signature file: {first_error(exc)}", reason="malformed"
        ) from None


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
