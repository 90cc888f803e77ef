"""privpipe keys, encrypt, decrypt: the keyring and sealed files."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.app import (
    AuditOption,
    KeyringOption,
    app,
    ask_passphrase,
    audit_key_op,
    audit_target,
    input_and_keyring,
    keys_app,
    open_keyring,
    parse_pairs,
)


def _warn_if_weak(keyring: Path, passphrase: str) -> None:
    """One ``warning:`` line on stderr for a weak passphrase (never refused, never shown)."""
    from privacy.crypto import passphrase_weakness

    why = passphrase_weakness(passphrase)
    if why:
        typer.echo(
            f"warning: {keyring}: the passphrase is weak ({why}); "
            "a phrase of several unrelated words is stronger",
            err=True,
        )


def _new_passphrase(target: Path) -> str:
    """A new keyring passphrase: PRIVPIPE_NEW_PASSPHRASE, else a prompt (confirmed)."""
    value = os.environ.get("PRIVPIPE_NEW_PASSPHRASE")
    if value:
        return value
    text: str = typer.prompt(
        f"New passphrase for {target}", hide_input=True, confirmation_prompt=True, err=True
    )
    return text


def _unlock(keyring: Path) -> tuple[Any, str]:
    """Unlock ``keyring`` now, so that a wrong passphrase is told before another prompt,
    and return it with its passphrase: the command changes it under the lock later."""
    from flows import _keys
    from privacy.crypto import Keyring

    passphrase = ask_passphrase(keyring)
    ring = Keyring.open(keyring, passphrase)
    _keys.register(ring)
    return ring, passphrase


@contextlib.contextmanager
def _changing(keyring: Path, passphrase: str) -> Iterator[Any]:
    """The keyring unlocked under its lock, for one change (see Keyring.open_to_change):
    concurrent key commands take their turns, each from the keyring the last one saved,
    and one that waited out a passphrase change is refused as a wrong passphrase."""
    from flows import _keys
    from privacy.crypto import Keyring

    with Keyring.open_to_change(keyring, passphrase) as ring:
        _keys.register(ring)
        yield ring


@keys_app.command("init")
def keys_init(keyring: KeyringOption, audit: AuditOption = None) -> None:
    """Create a keyring (mode 0600) with one active key-encryption key."""
    from privacy.crypto import Keyring

    passphrase = ask_passphrase(keyring, confirm=True)
    _warn_if_weak(keyring, passphrase)
    ring = Keyring.create(keyring, passphrase)
    keks = {k.scope or "all": k.id for k in ring.list_keys() if k.active}
    audit_key_op(
        ring,
        audit,
        "keys.init",
        params={
            "kek_ids": keks,
            "scopes": sorted(ring.scopes),
            "pseudonym_key_id": ring.pseudonym_key_id,
            "signing_key_id": ring.signing_key_id,
            "generation": ring.generation,
        },
    )
    active = ", ".join(f"{scope} {kek}" for scope, kek in keks.items())
    typer.echo(
        f"created {keyring}: scopes {', '.join(sorted(ring.scopes))}; active keys {active}; "
        f"pseudonym key {ring.pseudonym_key_id}"
    )


@keys_app.command("list")
def keys_list(
    keyring: KeyringOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List key ids, creation times and which key is active (never key bytes)."""
    from privacy.crypto import SCOPES

    ring = open_keyring(keyring)
    keys = [
        {"id": k.id, "scope": k.scope, "created": k.created, "active": k.active}
        for k in ring.list_keys()
    ]
    signing = {"id": ring.signing_key_id, "public_key": ring.signing_public_key.hex()}
    scopes = [s for s in SCOPES if s in ring.scopes]
    pseudonym = ring.pseudonym_key_id if "pseudonym" in ring.scopes else None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "keyring": str(keyring),
                    "scopes": scopes,
                    "keys": keys,
                    "pseudonym_key_id": pseudonym,
                    "signing": signing,
                }
            )
        )
        return
    typer.echo(f"scopes: {', '.join(scopes)}")
    for key in keys:
        line = f"{key['id']}  {key['scope'] or 'all'}  {key['created']}"
        typer.echo(f"{line}  {'active' if key['active'] else ''}".rstrip())
    if pseudonym:
        typer.echo(f"pseudonym key {pseudonym}")
    role = "audit" if "audit" in ring.scopes else "own (not the pipeline's audit key)"
    typer.echo(f"signing key, {role}: {signing['id']}  public {signing['public_key']}")


ScopeOption = Annotated[
    str | None,
    typer.Option("--scope", help="vault or published (default: every scope it holds)."),
]


@keys_app.command("rotate")
def keys_rotate(
    keyring: KeyringOption, scope: ScopeOption = None, audit: AuditOption = None
) -> None:
    """Add a new active key-encryption key per scope; older keys stay for decryption.

    Under the keyring's lock, unlocked after any change under way: the key it replaces
    is the one really active when its turn came."""
    with _changing(keyring, ask_passphrase(keyring)) as ring:
        audit_target(ring, audit)
        before = {k.scope: k.id for k in ring.list_keys() if k.active}
        new = ring.rotate(scope)
    moves = {info.scope or "all": f"{before.get(info.scope)} -> {info.id}" for info in new}
    audit_key_op(ring, audit, "keys.rotate", params={"keys": moves, "generation": ring.generation})
    for name, move in moves.items():
        typer.echo(f"rotated {keyring} {name}: {move}")
    typer.echo("re-wrap files sealed under the old keys: `privpipe keys rewrap FILE...`")


@keys_app.command("export")
def keys_export(
    keyring: KeyringOption,
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="A scope the new keyring holds (repeatable): vault, pseudonym, published, audit.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The new keyring file.")],
    audit: AuditOption = None,
) -> None:
    """A keyring holding only some scopes, e.g. an analyst's: --scope published.

    Its passphrase comes from PRIVPIPE_NEW_PASSPHRASE or a prompt. Without the audit
    scope it gets a signing key of its own: what its holder records is signed, never
    as the pipeline."""
    ring, current = _unlock(keyring)
    audit_target(ring, audit)
    passphrase = _new_passphrase(out)
    _warn_if_weak(out, passphrase)
    with _changing(keyring, current) as ring:
        new = ring.export(out, passphrase, scope)
    audit_key_op(
        ring,
        audit,
        "keys.export",
        params={"scopes": sorted(new.scopes), "to": str(out), "signing_key_id": new.signing_key_id},
    )
    typer.echo(f"wrote {out}: scopes {', '.join(sorted(new.scopes))}")


@keys_app.command("passphrase")
def keys_passphrase(keyring: KeyringOption, audit: AuditOption = None) -> None:
    """Change the keyring's passphrase: its secrets are re-wrapped under the new one,
    with scrypt at today's cost (an older, cheaper keyring is upgraded).

    The current passphrase comes from PRIVPIPE_PASSPHRASE or a prompt, the new one from
    PRIVPIPE_NEW_PASSPHRASE or a prompt. A key command that waits for this one is then
    refused as a wrong passphrase, unless the passphrase stayed the same (an upgrade of
    the scrypt cost alone); a process holding the keyring open must open it again with
    the new passphrase before it can change it."""
    ring, current = _unlock(keyring)
    audit_target(ring, audit)
    passphrase = _new_passphrase(keyring)
    _warn_if_weak(keyring, passphrase)
    with _changing(keyring, current) as ring:
        ring.rewrap(passphrase)  # at today's scrypt cost
    audit_key_op(
        ring,
        audit,
        "keys.passphrase",
        params={"scrypt_n": ring.scrypt_n, "generation": ring.generation},
    )
    typer.echo(
        f"{keyring}: re-wrapped under the new passphrase "
        f"(scrypt n = 2^{ring.scrypt_n.bit_length() - 1}); generation {ring.generation}"
    )


@keys_app.command("rewrap")
def keys_rewrap(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Sealed files.")],
    keyring: KeyringOption,
    audit: AuditOption = None,
) -> None:
    """Re-wrap sealed files' data keys under the active key, without re-encrypting them."""
    from privacy.crypto import rewrap_file

    ring = open_keyring(keyring)
    audit_target(ring, audit)
    moved: dict[str, str] = {}
    try:
        for path in files:
            old, new = rewrap_file(path, ring)
            moved[str(path)] = f"{old} -> {new}"
            typer.echo(f"{path}: {'already under ' + new if old == new else old + ' -> ' + new}")
    except Exception as exc:
        audit_key_op(
            ring,
            audit,
            "keys.rewrap",
            outcome="failed",
            error=type(exc).__name__,
            params={"files": moved},
        )
        raise
    audit_key_op(ring, audit, "keys.rewrap", params={"files": moved})


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
    import hashlib

    from privacy.crypto import seal_file
    from privacy.hashing import content_key

    ring = input_and_keyring(source, keyring)
    audit_target(ring, audit)
    # the plaintext only by its keyed digest (a plain hash of it can be brute-forced);
    # a keyring without the pseudonym secret records the ciphertext's hash alone. Both
    # are taken while sealing: one pass over the bytes.
    key = content_key(ring) if "pseudonym" in ring.scopes else None
    mac, sha = key.mac() if key else None, hashlib.sha256()
    header = seal_file(
        source,
        target,
        ring,
        parse_pairs(ad or [], "--ad"),
        plain=[mac] if mac else [],
        sealed=[sha],
    )
    plain = {"hmac_sha256": mac.hexdigest(), "key_id": key.key_id} if key and mac else {}
    audit_key_op(
        ring,
        audit,
        "encrypt",
        inputs=plain,
        outputs={"sha256": sha.hexdigest()},
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
    import hashlib

    from privacy.crypto import unseal_file
    from privacy.hashing import sha256_file

    ring = input_and_keyring(source, keyring)
    audit_target(ring, audit)
    sha = hashlib.sha256()  # of the sealed file, taken while it is opened
    try:
        unseal_file(
            source,
            target,
            ring,
            expected=parse_pairs(expect or [], "--expect") or None,
            sealed=[sha],
        )
    except Exception as exc:
        audit_key_op(
            ring,
            audit,
            "decrypt",
            outcome="failed",
            error=type(exc).__name__,
            inputs={"sha256": sha256_file(source)},
        )
        raise
    audit_key_op(
        ring,
        audit,
        "decrypt",
        inputs={"sha256": sha.hexdigest()},
        params={"output": str(target)},
    )
    typer.echo(f"unsealed {source} -> {target}")
