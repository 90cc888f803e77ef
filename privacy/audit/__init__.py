"""The audit trail: hash-chained JSON-lines records, Ed25519-signed checkpoints, and a
verifier. Records hold counts, names, hashes and parameters, never values from data.

The chain, the signer interface and the witness it builds on are
:mod:`privacy.integrity`'s."""

from privacy.audit._files import RecordedFile, last_run, recorded_files, run_records, sha256_of
from privacy.audit._trail import AppendRefused, AuditTrail, actor
from privacy.audit._verify import AuditVerificationError, TrailSummary, read_trail, verify_trail

__all__ = [
    "AppendRefused",
    "AuditTrail",
    "AuditVerificationError",
    "RecordedFile",
    "TrailSummary",
    "actor",
    "last_run",
    "read_trail",
    "recorded_files",
    "run_records",
    "sha256_of",
    "verify_trail",
]
