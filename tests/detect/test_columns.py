"""Column classification on synthetic people, and the draft policy it suggests."""

from __future__ import annotations

import pytest

from privacy.detect import TextScanner, classify_columns, suggest_policy
from privacy.policy import policy_from_dict


@pytest.fixture(scope="module")
def findings(people):  # type: ignore[no-untyped-def]
    frame = people.with_columns(people["birth_date"].cast(str), people["age"].cast(str))
    return {f.column: f for f in classify_columns(frame, TextScanner(), sample=150)}


@pytest.mark.parametrize(
    ("column", "entity"),
    [
        ("person_id", "PERSON_ID"),
        ("name", "PERSON"),
        ("email", "EMAIL_ADDRESS"),
        ("phone", "PHONE_NUMBER"),
        ("ssn", "US_SSN"),
        ("address", "STREET_ADDRESS"),
        ("zip", "ZIP_CODE"),
        ("birth_date", "DATE_OF_BIRTH"),
    ],
)
def test_identifier_columns_are_classified(findings, column: str, entity: str) -> None:  # type: ignore[no-untyped-def]
    finding = findings[column]
    assert finding.entity == entity and finding.share >= 0.8, finding


def test_plain_columns_are_not(findings) -> None:  # type: ignore[no-untyped-def]
    for column in ("sex", "race", "education", "occupation", "income"):
        assert findings[column].entity is None, findings[column]
    assert findings["age"].kind == "numeric" and findings["age"].inferred_type == "integer"
    assert findings["zip"].inferred_type == "string"  # leading zeros are kept
    assert findings["notes"].kind == "free_text" and findings["notes"].entities


def test_suggested_policy_validates_and_protects(findings) -> None:  # type: ignore[no-untyped-def]
    draft = suggest_policy("people", list(findings.values()))
    policy = policy_from_dict(draft)
    rules = {name: spec.rule for name, spec in policy.columns.items()}
    assert rules["name"] == rules["ssn"] == rules["address"] == "drop"
    assert rules["notes"] == "scrub" and rules["person_id"] == "pseudonymize"
    assert rules["phone"] == "redact" and rules["income"] == "keep"
    # a ZIP code is a quasi-identifier: kept for the k-anonymity search to generalize
    assert rules["zip"] == "keep" and policy.columns["zip"].role == "quasi_identifier"
    assert policy.columns["zip"].hierarchy is not None
