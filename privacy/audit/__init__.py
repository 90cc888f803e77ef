"""The audit trail: hash-chained JSON-lines records, Ed25519-signed checkpoints, and a
verifier. Records hold counts, names, hashes and parameters, never values from data."""

from privacy.audit._trail import (
    GENESIS,
    AppendRefused,
    AuditTrail,
    actor,
    checkpoint_message,
    serialize,
)
from privacy.audit._verify import AuditVerificationError, TrailSummary, read_trail, verify_trail
from privacy.audit._witness import Witness, WitnessError, witness_path

__all__ = [
    "GENESIS",
    "AppendRefused",
    "AuditTrail",
    "AuditVerificationError",
    "TrailSummary",
    "actor",
    "checkpoint_message",
    "read_trail",
    "serialize",
    "verify_trail",
    "Witness",
    "WitnessError",
    "witness_path",
]
