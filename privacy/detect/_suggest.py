"""A draft policy from a column scan: a starting point a person then reviews."""

from __future__ import annotations

from typing import Any

from privacy.detect._columns import ColumnFinding

__all__ = ["suggest_policy"]

_ACT_ON = 0.3  # share of sampled cells above which a finding shapes the rule
_BY_ENTITY: dict[str, dict[str, Any]] = {
    "PERSON": {"rule": "drop", "role": "identifier"},
    "EMAIL_ADDRESS": {"rule": "pseudonymize", "role": "identifier"},
    "PHONE_NUMBER": {"rule": "redact", "role": "identifier"},
    "US_SSN": {"rule": "drop", "role": "identifier"},
    "STREET_ADDRESS": {"rule": "drop", "role": "identifier"},
    "PERSON_ID": {"rule": "pseudonymize", "role": "identifier"},
    "CREDIT_CARD": {"rule": "drop", "role": "identifier"},
    "IBAN_CODE": {"rule": "drop", "role": "identifier"},
    "IP_ADDRESS": {"rule": "redact", "role": "identifier"},
    # quasi-identifiers: published only as the k-anonymity search generalizes them
    "ZIP_CODE": {
        "rule": "keep",
        "role": "quasi_identifier",
        "hierarchy": {"kind": "prefix"},
        "acknowledge_pii": ["ZIP_CODE"],
    },
    "LOCATION": {"rule": "keep", "role": "quasi_identifier", "acknowledge_pii": ["LOCATION"]},
}


def suggest_policy(name: str, findings: list[ColumnFinding]) -> dict[str, Any]:
    """A policy document (validates as is) with one reviewed-by-nobody rule per column."""
    columns: dict[str, Any] = {}
    for f in findings:
        spec: dict[str, Any] = {"type": f.inferred_type}
        acted = f.entity is not None and f.share >= _ACT_ON
        if f.kind == "free_text" and f.entities:
            spec |= {"rule": "scrub", "operator": "placeholder"}
        elif f.entity == "DATE_OF_BIRTH" and spec["type"] in ("date", "datetime"):
            spec |= {
                "rule": "keep",
                "role": "quasi_identifier",
                "hierarchy": {"kind": "dates"},
                "acknowledge_pii": ["DATE_OF_BIRTH"],
            }
        elif acted and f.entity in _BY_ENTITY:
            spec |= _BY_ENTITY[f.entity]
        else:
            spec["rule"] = "keep"
        if acted:
            spec["description"] = (
                f"scan: {f.entity} in {f.share:.0%} of {f.sampled} sampled cells "
                f"(confidence {f.confidence:.2f})"
            )
        columns[f.column] = spec
    return {
        "version": 1,
        "name": name,
        "description": "DRAFT from `privpipe scan`: review every rule before use.",
        "columns": columns,
    }
