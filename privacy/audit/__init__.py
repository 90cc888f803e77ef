"""The audit trail: hash-chained JSON-lines records, Ed25519-signed checkpoints, and a
verifier. Records hold counts, names, hashes and parameters, never values from data."""

from privacy.audit._trail import GENESIS, AuditTrail, actor, checkpoint_message, serialize
from privacy.audit._verify import AuditVerificationError, TrailSummary, read_trail, verify_trail

__all__ = [
    "GENESIS",
    "AuditTrail",
    "AuditVerificationError",
    "TrailSummary",
    "actor",
    "checkpoint_message",
    "read_trail",
    "serialize",
    "verify_trail",
]
