"""privpipe reidentify: controlled re-identification of reversible pseudonyms.

Only where the policy makes a column's tokens reversible, only with the ``pseudonym``
scope (the custodian's), only with a stated reason; every lookup, and every refusal,
is recorded in the keyring's audit trail (who, when, the policy, the column, how many
tokens and their hashes, the reason; never a value).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import (
    AuditOption,
    KeyringOption,
    app,
    audit_key_op,
    audit_target,
    open_keyring,
)


@app.command()
def reidentify(
    tokens: Annotated[list[str], typer.Argument(metavar="TOKEN...", help="Reversible tokens.")],
    policy: Annotated[Path, typer.Option("--policy", "-p", help="The policy that made them.")],
    column: Annotated[str, typer.Option("--column", "-c", help="The pseudonymized column.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded in the audit trail); required.")
    ],
    keyring: KeyringOption,
    audit: AuditOption = None,
) -> None:
    """Turn reversible pseudonyms back into values: custodian only, audited.

    Prints TOKEN<tab>VALUE per token. Needs the keyring's pseudonym scope, a policy
    whose column sets `reversible: true`, and --reason."""
    from privacy.errors import PolicyError, PrivpipeError
    from privacy.policy import PseudonymizeRule, load_policy
    from privacy.transform.pseudonymize import reverse_token

    loaded = load_policy(policy)
    ring = open_keyring(keyring)
    audit_target(ring, audit)
    record = {
        "policy": loaded.identity(),
        "column": column,
        "tokens": len(tokens),
        "token_sha256": [hashlib.sha256(t.encode()).hexdigest() for t in tokens],
        "reason": reason.strip(),
    }
    try:
        spec = loaded.columns.get(column)
        if not isinstance(spec, PseudonymizeRule):
            raise PolicyError(f"{policy}: columns.{column}: not a pseudonymized column")
        if not spec.reversible:
            raise PolicyError(
                f"{policy}: columns.{column}.reversible is false: its tokens are one-way"
            )
        if not record["reason"]:
            raise PolicyError("--reason: re-identification needs a stated reason")
        key = ring.pseudonym_key()  # ScopeError without the pseudonym scope
        values = [
            reverse_token(key, token, prefix=spec.prefix, policy=loaded.name, column=column)
            for token in tokens
        ]
    except PrivpipeError as exc:
        audit_key_op(
            ring, audit, "reidentify", outcome="refused", error=type(exc).__name__, params=record
        )
        raise
    audit_key_op(ring, audit, "reidentify", params=record)
    for token, value in zip(tokens, values, strict=True):
        typer.echo(f"{token}\t{value}")
