"""The shipped policies against the detector: every value the synthetic people can hold
in a column the demo policy keeps passes the gate's residual-PII rule for that column.

The gate counts pattern findings in any sampled cell of a kept text column; a new
recognizer that matches a kept value (the NRP list matched "Amer-Indian-Eskimo") fails
every demo run that happens to publish one, so the whole value domain is checked here.
"""

from __future__ import annotations

import polars as pl

from privacy.detect import TextScanner
from privacy.policy import load_policy
from privacy.synth import synthesize
from tests.conftest import DEMO_POLICY


def test_kept_demo_values_hold_nothing_the_policy_does_not_acknowledge() -> None:
    policy = load_policy(DEMO_POLICY)
    scanner = TextScanner.for_policy(policy)
    people = synthesize(20_000, seed=7)
    kept = [
        name
        for name, spec in policy.columns.items()
        if spec.rule == "keep" and people.schema.get(name) == pl.String
    ]
    assert "race" in kept and "native_country" in kept
    for column in kept:
        values = people.get_column(column).drop_nulls().unique().to_list()
        allowed = set(policy.columns[column].acknowledge_pii)
        for value, spans in zip(values, scanner.scan(values), strict=True):
            found = {s.entity_type for s in spans if not s.from_ner} - allowed
            assert not found, (column, value, found)


def test_the_demo_release_keeps_every_quasi_identifier_and_passes_the_gate() -> None:
    """The demo's release (Mondrian, k = 5, distinct 2-diversity) leaves no
    quasi-identifier at ``*`` in any row and suppresses nothing; and the gate, with the
    policy's own scanner, publishes it: its ZIP ranges and country sets are read as the
    input values they are made of, not as phone numbers or nationalities."""
    from privacy import stages
    from privacy.crypto import StaticKeyProvider
    from privacy.kanon import anonymize

    policy = load_policy(DEMO_POLICY)
    people = synthesize(20_000, seed=7).select(list(policy.columns))
    scanner = TextScanner.for_policy(policy)
    transformed, _ = stages.transform(people, policy, StaticKeyProvider(b"k" * 32), scanner)
    released, result = anonymize(transformed, policy)
    kept = result.summary()["information"]
    assert set(kept) == set(policy.columns_with_role("quasi_identifier"))
    for column, info in kept.items():
        assert info["top_share"] == 0.0, column
        assert (released.get_column(column).cast(pl.String) != "*").all(), column
    assert result.summary()["suppressed"] == 0
    record = stages.gate(people, released, policy, scanner)
    assert "residual-pii" in record.params["checks"]
