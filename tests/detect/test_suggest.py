"""The draft policy of `privpipe scan --suggest-policy`: its quasi-identifiers and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from privacy import kanon, stages
from privacy.detect import ColumnFinding, TextScanner, classify_columns, suggest_policy
from privacy.detect._suggest import draft_yaml
from privacy.errors import PrivacyGuaranteeError
from privacy.io import read_frame, read_input
from privacy.policy import Policy, policy_from_dict

# --------------------------------------------------------------------------- the demo's people


@pytest.fixture(scope="module")
def people_file(people, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("suggest") / "people.csv"
    people.write_csv(path)
    return path


@pytest.fixture(scope="module")
def scanner() -> TextScanner:
    return TextScanner()


@pytest.fixture(scope="module")
def scanned(people_file: Path, scanner: TextScanner) -> tuple[pl.DataFrame, list[ColumnFinding]]:
    frame = read_frame(people_file)  # as the CLI reads it: every column as text
    return frame, classify_columns(frame, scanner, sample=150)


@pytest.fixture(scope="module")
def draft(scanned: tuple[pl.DataFrame, list[ColumnFinding]]) -> dict[str, Any]:
    frame, findings = scanned
    return suggest_policy("people", findings, frame=frame)


@pytest.fixture(scope="module")
def policy(draft: dict[str, Any]) -> Policy:
    return policy_from_dict(draft)


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("sex", None),  # None: no hierarchy, the two levels value -> *
        ("race", None),
        ("marital_status", None),
        ("education", None),
        ("native_country", None),
        ("age", "intervals"),
        ("zip", "prefix"),
        ("birth_date", "dates"),
    ],
)
def test_demographics_dates_geography_and_nationality_are_quasi_identifiers(
    policy: Policy, column: str, kind: str | None
) -> None:
    spec = policy.columns[column]
    assert (spec.rule, spec.role) == ("keep", "quasi_identifier"), spec
    assert (spec.hierarchy.kind if spec.hierarchy else None) == kind
    assert spec.description and spec.description.startswith("quasi-identifier")


def test_the_draft_names_what_the_demo_policy_does(policy: Policy, demo_policy: Policy) -> None:
    assert set(policy.columns_with_role("quasi_identifier")) == {
        *demo_policy.columns_with_role("quasi_identifier"),
        "birth_date",  # the demo date-shifts it; the draft lets the search generalize it
    }


def test_age_bands_come_from_the_observed_range(policy: Policy, demo_policy: Policy) -> None:
    # ages 18..89: the tails below 20 and from 80 coded together, as the demo policy does
    assert policy.columns["age"].type == "integer"
    assert policy.columns["age"].hierarchy == demo_policy.columns["age"].hierarchy


def test_zip_is_a_string_and_categories_are_counted(policy: Policy) -> None:
    assert policy.columns["zip"].type == "string"  # 00613 keeps its zeros
    assert "(2 distinct values)" in str(policy.columns["sex"].description)
    assert "file hierarchy" in str(policy.columns["native_country"].description)


def test_identifiers_are_not_quasi_identifiers(policy: Policy) -> None:
    for column in ("person_id", "name", "email", "phone", "ssn", "address"):
        spec = policy.columns[column]
        assert spec.role == "identifier" and spec.rule != "keep", column
    assert policy.columns["notes"].rule == "scrub"


def test_other_columns_are_kept_plain(policy: Policy) -> None:
    """Hours worked, occupation, work class and income are none of the issue's four
    kinds (demographics, dates, geography, nationality): the demo uses occupation as the
    sensitive attribute and income as the label, and each extra quasi-identifier
    multiplies the search and coarsens the others. The reviewer can add them."""
    for column in ("hours_per_week", "occupation", "workclass", "income"):
        spec = policy.columns[column]
        assert (spec.rule, spec.role) == ("keep", "none"), column
        assert spec.description and "published as is" in spec.description


def test_every_column_says_why(draft: dict[str, Any]) -> None:
    assert all(spec.get("description") for spec in draft["columns"].values())


def test_the_draft_runs_detect_and_anonymize(
    people_file: Path, policy: Policy, scanner: TextScanner
) -> None:
    frame = read_input(people_file, policy)
    stages.detect(frame, policy, scanner)  # every kept column acknowledges what it holds
    out, result = kanon.anonymize(frame, policy)
    assert result.summary()
    sizes = out.group_by(policy.columns_with_role("quasi_identifier")).len()["len"]
    assert out.height and sizes.min() >= policy.privacy.k  # type: ignore[operator]


def test_an_unacknowledged_finding_still_fails_closed(
    people_file: Path, draft: dict[str, Any], scanner: TextScanner
) -> None:
    columns = dict(draft["columns"])
    columns["native_country"] = {
        k: v for k, v in columns["native_country"].items() if k != "acknowledge_pii"
    }
    policy = policy_from_dict({**draft, "columns": columns})
    with pytest.raises(PrivacyGuaranteeError, match="native_country"):
        stages.detect(read_input(people_file, policy), policy, scanner)


def test_draft_yaml_comments_each_column(draft: dict[str, Any]) -> None:
    text = draft_yaml(draft)
    lines = text.splitlines()
    for column, spec in draft["columns"].items():
        at = lines.index(f"  {column}:")
        assert lines[at - 1].startswith("  # "), column
        assert spec["description"].split()[0] in " ".join(
            line for line in lines[:at] if line.startswith("  # ")
        )
    without = {
        c: {k: v for k, v in s.items() if k != "description"} for c, s in draft["columns"].items()
    }
    assert yaml.safe_load(text) == {**draft, "columns": without}
    policy_from_dict(yaml.safe_load(text))


# --------------------------------------------------------------------------- by name, no spaCy


def _finding(column: str, inferred_type: str = "string", **kw: Any) -> ColumnFinding:
    kind = {"integer": "numeric", "float": "numeric", "date": "temporal"}.get(
        inferred_type, "structured"
    )
    return ColumnFinding(
        column, "String", kw.pop("kind", kind), 100, inferred_type=inferred_type, **kw
    )


def _spec(*findings: ColumnFinding, frame: pl.DataFrame | None = None) -> dict[str, Any]:
    draft = suggest_policy("t", list(findings), frame=frame)
    policy_from_dict(draft)
    return dict(draft["columns"][findings[0].column])


@pytest.mark.parametrize(
    ("column", "inferred_type", "kind", "acknowledged"),
    [
        ("gender", "string", None, []),
        ("Ethnicity", "string", None, ["NRP"]),
        ("religion", "string", None, ["NRP"]),
        ("maritalStatus", "string", None, []),
        ("education_level", "string", None, []),
        ("citizenship", "string", None, ["LOCATION", "NRP"]),
        ("country_of_birth", "string", None, ["LOCATION", "NRP"]),  # a place, not a date
        ("birth_city", "string", None, ["LOCATION", "NRP"]),
        ("city", "string", None, ["LOCATION"]),
        ("state", "string", None, ["LOCATION"]),
        ("postal_code", "string", "prefix", ["ZIP_CODE"]),
        ("ZipCode", "integer", "prefix", ["ZIP_CODE"]),
        ("patient_age", "integer", "intervals", []),
        ("age_group", "string", None, []),  # already banded: value -> *
        ("admission_date", "date", "dates", []),
        ("last_seen", "datetime", "dates", []),  # a date in a people table, whatever its name
        ("birth_year", "integer", "intervals", []),
        ("death_date", "string", None, []),  # not ISO: no dates hierarchy until typed
    ],
)
def test_name_rules(
    column: str, inferred_type: str, kind: str | None, acknowledged: list[str]
) -> None:
    spec = _spec(_finding(column, inferred_type))
    assert (spec["rule"], spec.get("role")) == ("keep", "quasi_identifier"), spec
    assert spec.get("hierarchy", {}).get("kind") == kind
    assert spec.get("acknowledge_pii", []) == acknowledged
    if kind == "prefix":
        assert spec["type"] == "string"


@pytest.mark.parametrize("column", ["usage", "stage", "page_views", "wage", "message", "income"])
def test_words_inside_other_words_do_not_count(column: str) -> None:
    spec = _spec(_finding(column))
    assert spec["rule"] == "keep" and "role" not in spec, spec


def test_an_identifier_finding_wins_over_the_name() -> None:
    spec = _spec(_finding("city", entity="PERSON", share=0.9, entities={"PERSON": 0.9}))
    assert (spec["rule"], spec["role"]) == ("drop", "identifier")


@pytest.mark.parametrize(
    ("column", "entity", "kind"),
    [("code", "ZIP_CODE", "prefix"), ("place", "LOCATION", None), ("group", "NRP", None)],
)
def test_a_scan_finding_alone_makes_a_quasi_identifier(
    column: str, entity: str, kind: str | None
) -> None:
    spec = _spec(_finding(column, entity=entity, share=0.9, entities={entity: 0.9}))
    assert spec["role"] == "quasi_identifier"
    assert spec.get("hierarchy", {}).get("kind") == kind
    assert entity in spec["acknowledge_pii"]
    assert f"scan: {entity} in 90%" in spec["description"]


def test_only_quasi_identifying_entities_are_acknowledged() -> None:
    """A person's name in a city column stays unacknowledged: the detect stage fails."""
    found = {"LOCATION": 0.8, "PERSON": 0.2, "DATE_TIME": 0.1}
    spec = _spec(_finding("city", entity="LOCATION", share=0.8, entities=found))
    assert spec["acknowledge_pii"] == ["LOCATION"]


def test_a_date_of_birth_in_text_is_not_acknowledged() -> None:
    spec = _spec(_finding("dob", entity="DATE_OF_BIRTH", share=1.0, hint="DATE_OF_BIRTH"))
    assert spec["role"] == "quasi_identifier" and "hierarchy" not in spec
    assert "acknowledge_pii" not in spec  # the detect stage refuses it until it is typed
    dated = _spec(_finding("dob", "date", entity="DATE_OF_BIRTH", share=1.0, hint="DATE_OF_BIRTH"))
    assert dated["hierarchy"] == {"kind": "dates"}
    assert dated["acknowledge_pii"] == ["DATE_OF_BIRTH"]


@pytest.mark.parametrize(
    ("ages", "bounds"),
    [
        (["18", " 89", "", "40"], {"bottom": 20, "top": 80}),
        ([0, 7, 104], {"top": 90}),  # HIPAA: 90 and over together; nothing below 0
        ([34, 36], {}),  # too narrow to code a tail
        ([25.5, 61.0], {"bottom": 30, "top": 60}),
    ],
)
def test_age_bands(ages: list[Any], bounds: dict[str, int]) -> None:
    inferred = "float" if isinstance(ages[-1], float) else "integer"
    spec = _spec(_finding("age", inferred), frame=pl.DataFrame({"age": ages}))
    assert spec["hierarchy"] == {"kind": "intervals", "widths": [5, 10, 20], **bounds}


def test_without_a_frame() -> None:
    findings = [_finding("age", "integer"), _finding("sex")]
    draft = suggest_policy("t", findings)  # the call the CLI makes today
    policy_from_dict(draft)
    assert draft["columns"]["age"]["hierarchy"] == {
        "kind": "intervals",
        "widths": [5, 10, 20],
        "top": 90,
    }
    assert "value -> * (no hierarchy)" in draft["columns"]["sex"]["description"]


def test_distinct_values_are_counted_from_the_frame() -> None:
    frame = pl.DataFrame({"sex": ["F", "M", None, " ", "M"], "country": [str(i) for i in range(5)]})
    assert "(2 distinct values)" in _spec(_finding("sex"), frame=frame)["description"]
    many = pl.DataFrame({"country": [str(i) for i in range(11)]})
    assert "file hierarchy" in _spec(_finding("country"), frame=many)["description"]
    assert "(5 distinct values)" in _spec(_finding("country"), frame=frame)["description"]
