"""The audit trail: hash-chained JSON-lines records, Ed25519-signed checkpoints, and a
verifier. Records hold counts, names, hashes and parameters, never values from data."""

from privacy.audit._files import RecordedFile, last_run, recorded_files, run_records, sha256_of
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
    "RecordedFile",
    "TrailSummary",
    "actor",
    "checkpoint_message",
    "last_run",
    "read_trail",
    "recorded_files",
    "run_records",
    "serialize",
    "sha256_of",
    "verify_trail",
    "Witness",
    "WitnessError",
    "witness_path",
]
