"""privpipe policy: validate and sign policies, export their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import (
    AuditOption,
    KeyringOption,
    audit_key_op,
    echo_err,
    open_keyring,
    policy_app,
)

TrustedSignersOption = Annotated[
    Path | None,
    typer.Option(
        "--trusted-signers",
        envvar="PRIVPIPE_POLICY_SIGNERS",
        help="Signers file: the reviewers' public keys this operator trusts "
        "(or set PRIVPIPE_POLICY_SIGNERS, which sanitize and train read).",
    ),
]

# --------------------------------------------------------------------------- policy


@policy_app.command("schema")
def policy_schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Print (or write) the JSON Schema of a policy file."""
    from privacy.io import atomic_write_bytes
    from privacy.policy import policy_json_schema

    text = json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_bytes(out, text.encode("utf-8"))
        echo_err(f"wrote {out}")


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="Policy YAML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    trusted_signers: TrustedSignersOption = None,
) -> None:
    """Validate a policy; print its name, canonical hash, rules and signature status."""
    from privacy.policy import load_policy
    from privacy.policy_signing import load_trusted_signers, signature_status

    policy = load_policy(file)
    trusted = load_trusted_signers(trusted_signers) if trusted_signers else None
    signature = signature_status(policy, trusted)
    rules: dict[str, int] = {}
    for spec in policy.columns.values():
        rules[spec.rule] = rules.get(spec.rule, 0) + 1
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "status": "ok",
                    "name": policy.name,
                    "sha256": policy.hash,
                    "rules": rules,
                    "signature": signature.to_dict(),
                }
            )
        )
        return
    summary = ", ".join(f"{n} {r}" for r, n in sorted(rules.items()))
    typer.echo(f"{file}: ok — policy {policy.name!r}, {len(policy.columns)} columns ({summary})")
    typer.echo(f"sha256 {policy.hash}")
    note = ""
    if signature.required:
        refused = signature.state != "verified"
        note = " (required: sanitize and train refuse it)" if refused else " (required)"
    typer.echo(f"signature: {signature.state}{note} — {signature.detail}")


@policy_app.command("sign")
def policy_sign(
    file: Annotated[Path, typer.Argument(help="Policy YAML file to sign.")],
    keyring: KeyringOption,
    signer: Annotated[
        str | None,
        typer.Option("--signer", help="Your name as the signature states it (default: OS user)."),
    ] = None,
    audit: AuditOption = None,
) -> None:
    """Sign a policy you reviewed with your keyring's Ed25519 key: writes POLICY.sig.

    The signature covers the policy's canonical hash (and its hierarchy files): any later
    change of a setting voids it; comments and formatting do not. Operators accept it
    only if your public key is in their signers file (PRIVPIPE_POLICY_SIGNERS)."""
    import getpass

    from privacy.policy import load_policy
    from privacy.policy_signing import sign_policy

    policy = load_policy(file)
    name = signer if signer is not None else getpass.getuser()
    ring = open_keyring(keyring)
    path, signature, dropped = sign_policy(policy, ring, name)
    audit_key_op(
        ring,
        audit,
        "policy.sign",
        params={
            "policy": policy.name,
            "policy_sha256": policy.hash,
            "signer": name,
            "signing_key_id": signature.key_id,
        },
    )
    stale = f"; dropped {dropped} signature(s) of an earlier version" if dropped else ""
    typer.echo(f"signed {file} as {name} (key {signature.key_id}): {path}{stale}")
    typer.echo(f"sha256 {policy.hash}")
    echo_err(
        "operators trust this key with an entry in their signers file: "
        f'{{name: {json.dumps(name)}, public_key: "{signature.public_key}"}}'
    )
