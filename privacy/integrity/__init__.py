"""Signed, append-only files: the bottom layer that the keyring, the audit trail and the
budget ledger all build on.

- the signer interface and key ids (:class:`Signer`, :func:`signing_key_id`);
- the hash chain: genesis, line hashes, serialization, the checkpoint message;
- the witness: every signed head of every trail a keyring signs, kept beside the
  keyring, outside the trails' folders;
- trust: which key a trail, a ledger or a policy is verified under, and the one
  signers-file loader.

It imports nothing of privpipe but the error tree and the atomic-file helpers.
"""

from privacy.integrity._chain import (
    GENESIS,
    canonical_json,
    checkpoint_message,
    line_hash,
    link_into,
    serialize,
    shown,
    utc_now,
)
from privacy.integrity._signer import Signer, signing_key_id
from privacy.integrity._trust import (
    SIGNER_NAME,
    TrustedKey,
    TrustedSigner,
    TrustedSigners,
    consulted_witness,
    decide_trusted_key,
    first_error,
    load_trusted_signers,
)
from privacy.integrity._witness import WITNESS_SUFFIX, Sighting, Witness, subject_of, witness_path

__all__ = [
    "GENESIS",
    "SIGNER_NAME",
    "WITNESS_SUFFIX",
    "Sighting",
    "Signer",
    "TrustedKey",
    "TrustedSigner",
    "TrustedSigners",
    "Witness",
    "canonical_json",
    "checkpoint_message",
    "consulted_witness",
    "decide_trusted_key",
    "first_error",
    "line_hash",
    "link_into",
    "load_trusted_signers",
    "serialize",
    "shown",
    "signing_key_id",
    "subject_of",
    "utc_now",
    "witness_path",
]
