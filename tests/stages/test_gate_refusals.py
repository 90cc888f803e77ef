"""Each refusal of the gate, alone: an output that only that check can catch, and the
check's own message. (Mutation-tested: guarding any one of these raises with
``if False:`` turns exactly its test red.)"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from privacy import stages
from privacy.errors import PrivacyGuaranteeError
from privacy.policy import Policy


def _out(policy: Policy, n: int, *, occupations: int = 3) -> pl.DataFrame:
    """``n`` output rows forming one equivalence class (k=5 holds for n >= 5), with
    ``occupations`` distinct sensitive values, and no protected value in any cell."""
    kept = [name for name, spec in policy.columns.items() if spec.rule != "drop"]
    base: dict[str, Any] = {c: ["x"] * n for c in kept}
    base.update({q: ["*"] * n for q in policy.columns_with_role("quasi_identifier")})
    base["occupation"] = [f"job-{i % occupations}" for i in range(n)]
    return pl.DataFrame(base)


def _raw(policy: Policy, n: int) -> pl.DataFrame:
    return pl.DataFrame({c: [f"raw-{c}-{i}" for i in range(n)] for c in policy.columns})


def test_the_fixture_output_passes(demo_policy: Policy) -> None:
    """The baseline each refusal below departs from by one thing."""
    record = stages.gate(_raw(demo_policy, 100), _out(demo_policy, 100), demo_policy)
    assert record.counts["verbatim_leaks"] == 0


@pytest.mark.parametrize("column", ["ssn", "not_in_the_policy"])
def test_a_dropped_or_undeclared_output_column_is_refused(demo_policy: Policy, column: str) -> None:
    # a dropped column that came back ('ssn'), or one the policy never declared
    out = _out(demo_policy, 100).with_columns(pl.lit("y").alias(column))
    with pytest.raises(
        PrivacyGuaranteeError,
        match=rf"^gate: output column '{column}' is dropped or undeclared in the policy; "
        "nothing was published$",
    ):
        stages.Gate(demo_policy).add(_raw(demo_policy, 100), out)


@pytest.mark.parametrize(("rows_out", "lost"), [(94, 6), (101, -1)])
def test_suppression_over_the_limit_or_rows_from_nowhere_are_refused(
    demo_policy: Policy, rows_out: int, lost: int
) -> None:
    """max_suppression 0.05 of 100 rows: 5 may go (see the next test), 6 may not; and an
    output longer than its input is refused too."""
    with pytest.raises(
        PrivacyGuaranteeError,
        match=rf"^gate: {lost} rows removed, over privacy\.max_suppression; "
        "nothing was published$",
    ):
        stages.gate(_raw(demo_policy, 100), _out(demo_policy, rows_out), demo_policy)


def test_suppression_at_the_limit_passes(demo_policy: Policy) -> None:
    assert stages.gate(_raw(demo_policy, 100), _out(demo_policy, 95), demo_policy)


def test_a_class_with_too_few_distinct_sensitive_values_is_refused(
    demo_policy: Policy,
) -> None:
    """k holds (one class of 100) but every record has the same occupation: distinct
    2-diversity fails, re-counted by the gate from the output rows."""
    assert demo_policy.privacy.l_diversity is not None
    assert demo_policy.privacy.l_diversity.variant == "distinct"
    out = _out(demo_policy, 100, occupations=1)
    with pytest.raises(
        PrivacyGuaranteeError,
        match=r"^gate: an equivalence class of the output has 1 distinct values of "
        r"'occupation', below privacy\.l_diversity\.l=2; nothing was published$",
    ):
        stages.gate(_raw(demo_policy, 100), out, demo_policy)


def test_distinct_values_are_counted_across_partitions(demo_policy: Policy) -> None:
    """Two partitions of one class, each with a single occupation but different ones:
    the merged class has 2 distinct values, and passes."""
    gate = stages.Gate(demo_policy)
    gate.add(_raw(demo_policy, 50), _out(demo_policy, 50, occupations=1))
    second = _out(demo_policy, 50, occupations=1).with_columns(occupation=pl.lit("job-9"))
    gate.add(_raw(demo_policy, 50), second)
    assert gate.finish().counts["verbatim_leaks"] == 0
