"""privpipe keys, encrypt, decrypt: the keyring and sealed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows._cli_app import (
    AuditOption,
    KeyringOption,
    _audit_key_op,
    _input_and_keyring,
    _open_keyring,
    _pairs,
    _passphrase,
    app,
    keys_app,
)


@keys_app.command("init")
def keys_init(keyring: KeyringOption, audit: AuditOption = None) -> None:
    """Create a keyring (mode 0600) with one active key-encryption key."""
    from privacy.crypto import Keyring

    ring = Keyring.create(keyring, _passphrase(keyring, confirm=True))
    _audit_key_op(
        ring,
        audit,
        "keys.init",
        params={
            "kek_id": ring.active_kek_id,
            "pseudonym_key_id": ring.pseudonym_key_id,
            "signing_key_id": ring.signing_key_id,
        },
    )
    typer.echo(
        f"created {keyring}: active key {ring.active_kek_id}, pseudonym key {ring.pseudonym_key_id}"
    )


@keys_app.command("list")
def keys_list(
    keyring: KeyringOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List key ids, creation times and which key is active (never key bytes)."""
    ring = _open_keyring(keyring)
    keys = [{"id": k.id, "created": k.created, "active": k.active} for k in ring.list_keys()]
    signing = {"id": ring.signing_key_id, "public_key": ring.signing_public_key.hex()}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "keyring": str(keyring),
                    "keys": keys,
                    "pseudonym_key_id": ring.pseudonym_key_id,
                    "signing": signing,
                }
            )
        )
        return
    for key in keys:
        typer.echo(f"{key['id']}  {key['created']}  {'active' if key['active'] else ''}".rstrip())
    typer.echo(f"pseudonym key {ring.pseudonym_key_id}")
    typer.echo(f"audit signing key {signing['id']}  public {signing['public_key']}")


@keys_app.command("rotate")
def keys_rotate(keyring: KeyringOption, audit: AuditOption = None) -> None:
    """Add a new active key-encryption key; older keys stay for decryption."""
    ring = _open_keyring(keyring)
    old = ring.active_kek_id
    new = ring.rotate()
    _audit_key_op(ring, audit, "keys.rotate", params={"from": old, "to": new.id})
    typer.echo(f"rotated {keyring}: active key {new.id} (was {old}); run `privpipe keys rewrap`")


@keys_app.command("rewrap")
def keys_rewrap(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Sealed files.")],
    keyring: KeyringOption,
    audit: AuditOption = None,
) -> None:
    """Re-wrap sealed files' data keys under the active key, without re-encrypting them."""
    from privacy.crypto import rewrap_file

    ring = _open_keyring(keyring)
    moved: dict[str, str] = {}
    try:
        for path in files:
            old, new = rewrap_file(path, ring)
            moved[str(path)] = f"{old} -> {new}"
            typer.echo(f"{path}: {'already under ' + new if old == new else old + ' -> ' + new}")
    except Exception as exc:
        _audit_key_op(
            ring,
            audit,
            "keys.rewrap",
            outcome="failed",
            error=type(exc).__name__,
            params={"files": moved},
        )
        raise
    _audit_key_op(ring, audit, "keys.rewrap", params={"files": moved})


@app.command()
def encrypt(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Plaintext file.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Sealed file to write.")],
    keyring: KeyringOption,
    ad: Annotated[
        list[str] | None,
        typer.Option("--ad", help="Associated data KEY=VALUE bound to the file (repeatable)."),
    ] = None,
    audit: AuditOption = None,
) -> None:
    """Seal a file: AES-256-GCM segments under a fresh data key wrapped by the keyring."""
    from privacy.crypto import seal_file
    from privacy.hashing import sha256_file

    ring = _input_and_keyring(source, keyring)
    header = seal_file(source, target, ring, _pairs(ad or [], "--ad"))
    _audit_key_op(
        ring,
        audit,
        "encrypt",
        inputs={"sha256": sha256_file(source)},
        outputs={"sha256": sha256_file(target)},
        params={"kek_id": header.kek_id},
    )
    typer.echo(f"sealed {source} -> {target} (key {header.kek_id})")


@app.command()
def decrypt(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Sealed file.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Plaintext file to write.")],
    keyring: KeyringOption,
    expect: Annotated[
        list[str] | None,
        typer.Option("--expect", help="Require associated data KEY=VALUE (repeatable)."),
    ] = None,
    audit: AuditOption = None,
) -> None:
    """Unseal a file; every segment is verified, and nothing is written if one fails."""
    from privacy.crypto import unseal_file
    from privacy.hashing import sha256_file

    ring = _input_and_keyring(source, keyring)
    try:
        unseal_file(source, target, ring, expected=_pairs(expect or [], "--expect") or None)
    except Exception as exc:
        _audit_key_op(
            ring,
            audit,
            "decrypt",
            outcome="failed",
            error=type(exc).__name__,
            inputs={"sha256": sha256_file(source)},
        )
        raise
    _audit_key_op(
        ring,
        audit,
        "decrypt",
        inputs={"sha256": sha256_file(source)},
        params={"output": str(target)},
    )
    typer.echo(f"unsealed {source} -> {target}")
