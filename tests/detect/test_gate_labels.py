"""The gate's residual scan of quasi-identifiers reads a label the search made as the
input values it is made of: a Mondrian range of two ZIP codes is no phone number. A value
that was in the input stays scanned as it stands, so a phone number kept in a
quasi-identifier is still refused."""

from __future__ import annotations

import polars as pl
import pytest

from privacy import stages
from privacy.detect import TextScanner
from privacy.errors import PrivacyGuaranteeError
from privacy.policy import Policy, policy_from_dict


def _policy() -> Policy:
    return policy_from_dict(
        {
            "version": 1,
            "name": "labels",
            "columns": {
                "zip": {
                    "rule": "keep",
                    "role": "quasi_identifier",
                    "hierarchy": {"kind": "prefix"},
                    "acknowledge_pii": ["ZIP_CODE"],
                },
                "marital": {"rule": "keep", "role": "quasi_identifier"},
            },
            "privacy": {"k": 2, "max_suppression": 0.0, "algorithm": "mondrian"},
        }
    )


RAW = pl.DataFrame(
    {
        "zip": ["83594", "94332", "83594", "94332"],
        "marital": ["Divorced", "Widowed", "Widowed", "Divorced"],
    }
)


def test_a_range_of_two_zip_codes_reads_as_a_phone_number_on_its_own(
    scanner: TextScanner,
) -> None:
    """The premise: scanned as it stands, the label is a phone number to Presidio."""
    (spans,) = scanner.scan(["83594-94332"])
    assert "PHONE_NUMBER" in {s.entity_type for s in spans}


def test_mondrian_labels_made_of_input_values_pass(scanner: TextScanner) -> None:
    out = pl.DataFrame({"zip": ["83594-94332"] * 4, "marital": ["{Divorced|Widowed}"] * 4})
    record = stages.gate(RAW, out, _policy(), scanner)
    assert "residual-pii" in record.params["checks"]
    assert "PHONE_NUMBER" not in record.counts["residual_pii"].get("zip", {})


def test_a_label_not_made_of_input_values_is_scanned_as_it_stands(scanner: TextScanner) -> None:
    # '83594-94399': 94399 was never an input value, so this is no range the search made
    out = pl.DataFrame({"zip": ["83594-94399"] * 4, "marital": ["{Divorced|Widowed}"] * 4})
    with pytest.raises(PrivacyGuaranteeError, match=r"'zip': PHONE_NUMBER in 1 checked"):
        stages.gate(RAW, out, _policy(), scanner)


def test_a_phone_number_in_the_input_of_a_quasi_identifier_is_refused(
    scanner: TextScanner,
) -> None:
    # '212-555' and '0134' are input values too, but the published value is one of the
    # input's own: it is scanned whole, never split into two harmless halves
    raw = RAW.with_columns(pl.Series("zip", ["212-555-0134", "212-555", "0134", "94332"]))
    out = pl.DataFrame({"zip": ["212-555-0134"] * 4, "marital": ["{Divorced|Widowed}"] * 4})
    with pytest.raises(PrivacyGuaranteeError, match=r"'zip': PHONE_NUMBER in 1 checked"):
        stages.gate(raw, out, _policy(), scanner)
