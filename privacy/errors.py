"""The one error tree of privpipe.

Every error a user can cause is a subclass of :class:`PrivpipeError`. The command
line maps these to exit status 2 with a single ``error: ...`` line; anything else is
an internal error (exit 1).

Messages name the file, row, column or policy key at fault and never carry a value
taken from the data: they may end up in logs, in Prefect's database and in audit
records, all of which must stay free of personal data.

    PrivpipeError
    ├── PolicyError            a policy file is missing, malformed or invalid
    │   └── PolicySignatureError  a required policy signature is missing, altered or untrusted
    ├── InputError             an input file is missing, unreadable or malformed
    │   └── SchemaError        the input does not match the policy's declared schema
    ├── OutputError            an output location cannot be written as asked
    ├── KeyAccessError         a key is missing, or the caller may not use it
    │   └── ScopeError         the keyring does not hold the key scope an action needs
    ├── IntegrityError         sealed data or an audit trail failed verification
    │   ├── AuditVerificationError  an audit trail is not what was written (exit 3)
    │   ├── AppendRefused       a trail's tail does not verify: not extended (exit 3)
    │   ├── WitnessError        the witness is not what was written (exit 3)
    │   └── LedgerIntegrityError  the budget ledger is not what was written (exit 3)
    ├── PrivacyGuaranteeError  the output would break a privacy guarantee (fail closed)
    ├── BudgetExhausted        a privacy budget would be overspent
    ├── ServerError            the orchestration server a command needs is missing
    └── TrainingStopped        a training run ended early on purpose (resumable)
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AppendRefused",
    "AuditVerificationError",
    "BudgetExhausted",
    "InputError",
    "IntegrityError",
    "KeyAccessError",
    "LedgerIntegrityError",
    "OutputError",
    "PolicyError",
    "PolicySignatureError",
    "PrivacyGuaranteeError",
    "PrivpipeError",
    "SchemaError",
    "ScopeError",
    "ServerError",
    "SignatureReason",
    "TrainingStopped",
    "WitnessError",
]


class PrivpipeError(Exception):
    """Base class of every error a user can cause. The message is safe to log."""

    exit_code = 2


class PolicyError(PrivpipeError):
    """A policy file is missing, malformed, or fails validation."""


SignatureReason = Literal["unsigned", "malformed", "altered", "bad", "untrusted", "no_trust"]


class PolicySignatureError(PolicyError):
    """A policy's signature is missing, altered, invalid or not trusted. ``reason`` says
    which: unsigned, malformed, altered, bad, untrusted or no_trust (nobody trusted)."""

    def __init__(self, message: str, *, reason: SignatureReason) -> None:
        super().__init__(message)
        self.reason: SignatureReason = reason


class InputError(PrivpipeError):
    """An input file is missing, unreadable, empty or malformed."""


class SchemaError(InputError):
    """The input's columns or values do not match the schema the policy declares."""


class OutputError(PrivpipeError):
    """An output location cannot be written as asked."""


class KeyAccessError(PrivpipeError):
    """A key is missing, malformed, or not available to the caller."""


class ScopeError(KeyAccessError):
    """The keyring does not hold the key scope an action needs (``scope``); the refusal
    is itself audited by the command line."""

    def __init__(self, message: str, *, scope: str = "", keyring: str = "") -> None:
        super().__init__(message)
        self.scope = scope
        self.keyring = keyring


class IntegrityError(PrivpipeError):
    """Sealed data or an audit trail failed verification."""


class AuditVerificationError(IntegrityError):
    """The audit trail is not what was written: exit status 3."""

    exit_code = 3


class AppendRefused(IntegrityError):
    """The trail's tail does not verify, so it is not extended: exit status 3."""

    exit_code = 3


class WitnessError(IntegrityError):
    """The witness itself is not what was written: exit status 3."""

    exit_code = 3


class LedgerIntegrityError(IntegrityError):
    """The ledger is not what was written (deleted, rolled back, edited): exit 3."""

    exit_code = 3


class PrivacyGuaranteeError(PrivpipeError):
    """Publishing would break a privacy guarantee; the run fails closed. ``guarantee``
    names which one (``k``, ``l``, ``t``, ``suppression``, ``anonymity`` (no release
    meets them together), ``residual-pii``, ``undeclared-pii``, ``columns``,
    ``verbatim-identifiers``) and ``required`` / ``achieved`` give the
    figures, so that a failed run's audit record and report can say what failed."""

    def __init__(
        self,
        message: str,
        *,
        guarantee: str = "",
        required: float | str | None = None,
        achieved: float | str | None = None,
    ) -> None:
        super().__init__(message)
        self.guarantee = guarantee
        self.required = required
        self.achieved = achieved

    def audit_fields(self) -> dict[str, object]:
        """What the failed step's audit record keeps: the guarantee, its figures and the
        message (which, like every privpipe message, names places, never values)."""
        return {
            "guarantee": self.guarantee,
            "required": self.required,
            "achieved": self.achieved,
            "message": str(self),
        }


class BudgetExhausted(PrivpipeError):
    """A training run would spend more privacy budget than the policy allows."""


class ServerError(PrivpipeError):
    """The Prefect server a command needs (scheduled runs) is not set, or does not answer."""


class TrainingStopped(PrivpipeError):
    """A run ended early on purpose (``stop_after``); its checkpoint resumes it."""
