"""What the release keeps of each quasi-identifier: distinct values before and labels
after, the input values behind a record's label, and the share of published cells
generalized to ``*`` (counted on the records kept)."""

from __future__ import annotations

import polars as pl

from privacy.kanon import anonymize
from privacy.policy import policy_from_dict


def _policy(**privacy: object) -> object:
    return policy_from_dict(
        {
            "version": 1,
            "name": "info",
            "columns": {
                "zip": {
                    "rule": "keep",
                    "role": "quasi_identifier",
                    "hierarchy": {"kind": "prefix"},
                },
                "sex": {"rule": "keep", "role": "quasi_identifier"},
            },
            "privacy": {"k": 2, "max_suppression": 0.0, **privacy},
        }
    )


def test_information_counts_distinct_values_and_top_cells_of_the_published_records() -> None:
    # four ZIPs, each once per sex: k = 2 needs the ZIP cut by one digit (two values
    # left); sex can stay exact
    frame = pl.DataFrame(
        {
            "zip": ["12345", "12346", "12355", "12356"] * 2,
            "sex": ["F"] * 4 + ["M"] * 4,
        }
    )
    _, result = anonymize(frame, _policy())
    info = result.summary()["information"]
    assert info["sex"] == {
        "distinct_before": 2,
        "distinct_after": 2,
        "values_per_label": 1.0,
        "top_share": 0.0,
        "changed_share": 0.0,
    }
    assert result.node == {"zip": 1, "sex": 0}  # 1234* and 1235*
    # each label stands for two ZIPs
    assert info["zip"] == {
        "distinct_before": 4,
        "distinct_after": 2,
        "values_per_label": 2.0,
        "top_share": 0.0,
        "changed_share": 1.0,
    }


def test_a_column_taken_to_the_top_has_all_its_cells_at_star() -> None:
    frame = pl.DataFrame({"zip": ["11111", "22222", "33333", "44444"], "sex": ["F", "F", "M", "M"]})
    _, result = anonymize(frame, _policy())
    info = result.summary()["information"]
    # no common prefix below *: k = 2 takes the ZIP to the top, sex stays
    assert result.node == {"zip": 5, "sex": 0}
    assert info["zip"] == {
        "distinct_before": 4,
        "distinct_after": 1,
        "values_per_label": 4.0,
        "top_share": 1.0,
        "changed_share": 1.0,
    }
    assert info["sex"]["top_share"] == 0.0


def test_mondrian_labels_count_the_input_values_each_stands_for() -> None:
    # Mondrian cuts the ZIPs into ranges of two: more labels than a full-domain level
    # would keep, each standing for two input values; nothing at the top
    frame = pl.DataFrame(
        {
            "zip": ["10001", "10002", "20001", "20002"] * 2,
            "sex": ["F"] * 4 + ["M"] * 4,
        }
    )
    _, result = anonymize(frame, _policy(algorithm="mondrian"))
    info = result.summary()["information"]
    assert info["zip"]["top_share"] == 0.0
    assert 1.0 < info["zip"]["values_per_label"] <= 2.0
    assert info["zip"]["distinct_before"] == 4
    assert info["zip"]["changed_share"] == 1.0 and info["sex"]["changed_share"] == 0.0
