"""The trust decision: which Ed25519 key a trail, a ledger or a policy is verified under.

Trust comes from the operator, never from the file being verified: a key given out of
band (``--public-key``), a key pinned by its id (``--signer``), a key listed in a signers
file, or the key of a keyring that proved itself by being unlocked with its passphrase.
A keyring's public key read from the file alone is only as trustworthy as whoever can
write that file, so it is refused unless one of those vouches for it.

One signers-file format serves both audit signers and policy reviewers::

    require_signed_policy: false   # policies only: true makes every policy need a signature
    signers:
      - {name: alice, public_key: "<64 hex>", key_id: "sig-…"}   # key_id optional, checked

Reading a keyring is the keyring's business (the layer above): the decision takes a
function that reads a keyring's public key, and one that unlocks it and returns the
authenticated key, so this layer never imports the keyring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from privacy.errors import AuditVerificationError, InputError, KeyAccessError, PolicyError
from privacy.integrity._signer import signing_key_id
from privacy.integrity._witness import witness_path

__all__ = [
    "SIGNER_NAME",
    "TrustedKey",
    "TrustedSigner",
    "TrustedSigners",
    "consulted_witness",
    "decide_trusted_key",
    "first_error",
    "load_trusted_signers",
]

SIGNER_NAME = r"^[^\x00-\x1f\x7f]{1,64}$"  # one printable line: it ends up in messages


class _SignerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SIGNER_NAME)
    public_key: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="Ed25519, 32 bytes hex.")
    key_id: str | None = Field(None, description="Optional; checked against the key if given.")


class _SignersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    require_signed_policy: bool = False
    signers: list[_SignerEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class TrustedSigner:
    name: str
    key_id: str
    public_key: bytes


@dataclass(frozen=True)
class TrustedSigners:
    """The keys the operator trusts (from a signers file)."""

    path: Path | None
    signers: tuple[TrustedSigner, ...]
    require_signed_policy: bool = False

    def name_for(self, public_key: bytes) -> str | None:
        return next((s.name for s in self.signers if s.public_key == public_key), None)


def first_error(exc: ValidationError) -> str:
    """A pydantic error as ``key.path: message`` (never the input value)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def load_trusted_signers(path: str | Path, *, named_by: str | None = None) -> TrustedSigners:
    """Read a signers file (YAML or JSON). Errors name the file and the entry (and
    ``named_by``, the variable that named the file, when it is not found)."""
    import yaml  # the CLI's verify path loads it only when a signers file is read

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        where = f" ({named_by})" if named_by else ""
        raise PolicyError(f"{path}: trusted signers file not found{where}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise PolicyError(f"{path}: not a readable YAML or JSON signers file") from None
    try:
        parsed = _SignersFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise PolicyError(f"{path}: {first_error(exc)}") from None
    signers: list[TrustedSigner] = []
    for i, entry in enumerate(parsed.signers):
        public = bytes.fromhex(entry.public_key)
        key = signing_key_id(public)
        if entry.key_id is not None and entry.key_id != key:
            raise PolicyError(f"{path}: signers.{i}.key_id: {entry.key_id} is not this key's id")
        if any(s.public_key == public for s in signers):
            raise PolicyError(f"{path}: signers.{i}: key {key} is listed twice")
        signers.append(TrustedSigner(entry.name, key, public))
    return TrustedSigners(path, tuple(signers), parsed.require_signed_policy)


@dataclass(frozen=True)
class TrustedKey:
    """The Ed25519 key a trail is verified against, why it is trusted, and the keyring
    it came from (None for a key given out of band)."""

    public_key: bytes
    why: str
    keyring: Path | None = None

    @property
    def key_id(self) -> str:
        return signing_key_id(self.public_key)

    def __str__(self) -> str:
        return f"{self.key_id} ({self.why})"


def decide_trusted_key(
    public_key: str | None,
    keyring: Path | None,
    *,
    signer: str | None = None,
    signers: Path | None = None,
    default_signers: Path | None = None,
    read_key: Callable[[Path], bytes],
    unlock: Callable[[Path], bytes] | None = None,
) -> TrustedKey | None:
    """The key to verify under, or None when neither ``public_key`` (hex) nor
    ``keyring`` is given.

    ``public_key`` is trusted as given (checked against ``signer`` if that is given too).
    ``keyring``'s key (``read_key(keyring)``) is trusted only when it is pinned by
    ``signer`` (an id ``sig-…`` or the key's hex), listed in ``signers`` (else in
    ``default_signers`` when that file exists), or authenticated by ``unlock(keyring)``
    (the key the unlocked keyring holds, not the one read before). Otherwise refused:
    :class:`AuditVerificationError` (exit 3) where the key is shown not to be the one
    named, :class:`KeyAccessError` saying how to go on where nothing vouches for it."""
    if public_key:
        try:
            key = bytes.fromhex(public_key)
        except ValueError:
            raise KeyAccessError("--public-key: not a hex string") from None
        if len(key) != 32:
            raise KeyAccessError("--public-key: an Ed25519 public key is 64 hex digits")
        trusted = TrustedKey(key, "given with --public-key")
        if signer and signer.lower() not in (trusted.key_id, key.hex()):
            raise AuditVerificationError(f"--public-key is {trusted.key_id}, not --signer {signer}")
        return trusted
    if keyring is None:
        return None
    key = read_key(keyring)
    key_id = signing_key_id(key)
    if signer:
        if signer.lower() not in (key_id, key.hex()):
            raise AuditVerificationError(
                f"{keyring}: its signing key is {key_id}, not --signer {signer}: the keyring "
                "file was changed or is another one; do not trust trails it verifies"
            )
        return TrustedKey(key, "pinned with --signer", keyring)
    listed = signers if signers is not None else default_signers
    if listed is not None and (signers is not None or listed.is_file()):
        if not listed.is_file():
            raise KeyAccessError(f"{listed}: audit signers file not found")
        try:
            name = load_trusted_signers(listed).name_for(key)
        except PolicyError as exc:
            raise KeyAccessError(str(exc)) from None
        if name is not None:
            return TrustedKey(key, f"listed in {listed} as {name}", keyring)
        if signers is not None:
            raise AuditVerificationError(
                f"{keyring}: its signing key {key_id} is not listed in {listed}"
            )
    if unlock is not None:
        return TrustedKey(unlock(keyring), "authenticated by its passphrase", keyring)
    raise KeyAccessError(
        f"{keyring}: its public signing key {key_id} is only as trustworthy as the file: "
        "pin it with --signer ID (from `privpipe keys list`, out of band), list it in an "
        "audit signers file (--signers FILE or PRIVPIPE_AUDIT_SIGNERS), set "
        "PRIVPIPE_PASSPHRASE to check it against the keyring, or pass --public-key HEX"
    )


def consulted_witness(trusted: TrustedKey, witness: Path | None) -> Path | None:
    """The witness a verification consults: ``witness`` (which must exist), else the
    one beside the trusted keyring where there is one, else None."""
    if witness is not None:
        if not witness.is_file():
            raise InputError(f"{witness}: witness file not found")
        return witness
    if trusted.keyring is not None and witness_path(trusted.keyring).is_file():
        return witness_path(trusted.keyring)
    return None
