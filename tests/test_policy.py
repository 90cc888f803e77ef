from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from privacy.errors import PolicyError
from privacy.policy import load_policy, policy_from_dict, policy_json_schema

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = {
    "name": "t",
    "columns": {
        "id": {"rule": "pseudonymize"},
        "age": {"type": "integer", "rule": "keep", "role": "quasi_identifier"},
    },
}


def _write(tmp_path: Path, data: object, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error(tmp_path: Path, data: object) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(_write(tmp_path, data))
    return str(info.value)


def test_demo_policy_loads(demo_policy) -> None:
    assert demo_policy.name == "demo"
    assert demo_policy.columns["name"].rule == "drop"
    assert demo_policy.columns["birth_date"].by == "person_id"
    assert demo_policy.columns_with_role("label") == ["income"]


def test_unknown_key_names_file_path_and_allowed_keys(tmp_path: Path) -> None:
    data = json.loads(json.dumps(MINIMAL))
    data["columns"]["id"]["prefx"] = "p_"
    message = _error(tmp_path, data)
    assert str(tmp_path / "p.yaml") in message
    assert "columns.id.prefx: unknown key" in message
    assert "allowed:" in message and "prefix" in message and "length" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = _error(tmp_path, {**MINIMAL, "privcy": {"k": 3}})
    assert "privcy: unknown key" in message and "privacy" in message


def test_wrong_type_names_key(tmp_path: Path) -> None:
    message = _error(tmp_path, {**MINIMAL, "privacy": {"k": "five"}})
    assert "privacy.k:" in message and "integer" in message


def test_negative_k_is_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, {**MINIMAL, "privacy": {"k": -3}})
    assert "privacy.k:" in message and "greater than or equal to 1" in message


def test_unknown_rule_lists_the_rules(tmp_path: Path) -> None:
    data = json.loads(json.dumps(MINIMAL))
    data["columns"]["id"]["rule"] = "hash"
    message = _error(tmp_path, data)
    assert "columns.id" in message and "pseudonymize" in message and "date_shift" in message


def test_cross_reference_is_checked(tmp_path: Path) -> None:
    data = json.loads(json.dumps(MINIMAL))
    data["columns"]["dob"] = {"type": "date", "rule": "date_shift", "by": "nobody"}
    assert "columns.dob.by: no column named 'nobody'" in _error(tmp_path, data)


def test_generalize_needs_one_method(tmp_path: Path) -> None:
    data = json.loads(json.dumps(MINIMAL))
    data["columns"]["age"] = {"type": "integer", "rule": "generalize"}
    assert "columns.age:" in _error(tmp_path, data)


def test_quasi_identifier_cannot_be_pseudonymized(tmp_path: Path) -> None:
    data = json.loads(json.dumps(MINIMAL))
    data["columns"]["id"]["role"] = "quasi_identifier"
    assert "columns.id: a quasi_identifier must use rule keep or generalize" in _error(
        tmp_path, data
    )


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: t\ncolumns:\n  id: {rule: drop\n")
    with pytest.raises(PolicyError, match=r"bad.yaml: invalid YAML at line \d+"):
        load_policy(path)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    assert "mapping" in _error(tmp_path, ["not", "a", "policy"])


def test_hash_is_stable_under_key_order_formatting_and_defaults(tmp_path: Path) -> None:
    a = load_policy(_write(tmp_path, MINIMAL, "a.yaml"))
    reordered = {"columns": dict(reversed(list(MINIMAL["columns"].items()))), "name": "t"}
    text = "# a comment\n" + yaml.safe_dump(reordered, default_flow_style=True)
    (tmp_path / "b.yaml").write_text(text)
    b = load_policy(tmp_path / "b.yaml")
    explicit = json.loads(json.dumps(MINIMAL))
    explicit["privacy"] = {"k": 5}  # the default, written out
    c = policy_from_dict(explicit)
    assert a.hash == b.hash == c.hash
    assert len(a.hash) == 64


def test_hash_changes_with_any_setting() -> None:
    base = policy_from_dict(MINIMAL).hash
    changed = json.loads(json.dumps(MINIMAL))
    changed["privacy"] = {"k": 6}
    assert policy_from_dict(changed).hash != base
    changed = json.loads(json.dumps(MINIMAL))
    changed["columns"]["id"]["length"] = 40
    assert policy_from_dict(changed).hash != base


def test_committed_json_schema_is_current() -> None:
    committed = json.loads((ROOT / "policies" / "policy.schema.json").read_text())
    assert committed == policy_json_schema(), (
        "run: privpipe policy schema --out policies/policy.schema.json"
    )


def test_every_shipped_policy_validates() -> None:
    for path in sorted((ROOT / "policies").glob("*.yaml")):
        load_policy(path)


def test_schema_accepts_demo_policy_shape() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load((ROOT / "policies" / "demo.yaml").read_text())
    jsonschema.validate(data, policy_json_schema())
    bad = {**data, "privacy": {"k": -1}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, policy_json_schema())


def test_the_classification_metric_needs_the_sensitive_column_as_its_target(
    tmp_path: Path,
) -> None:
    columns = {
        **MINIMAL["columns"],
        "diagnosis": {"rule": "keep", "role": "sensitive"},
        "note": {"rule": "keep"},
    }
    base = {**MINIMAL, "columns": columns}
    no_target = {**base, "privacy": {"metric": "classification"}}
    assert "metric classification needs a target" in _error(tmp_path, no_target)
    not_sensitive = {**base, "privacy": {"metric": "classification", "target": "note"}}
    assert "must be the one column with role sensitive" in _error(tmp_path, not_sensitive)
    missing = {**base, "privacy": {"metric": "classification", "target": "nope"}}
    assert "no column named 'nope'" in _error(tmp_path, missing)
    ok = {**base, "privacy": {"metric": "classification", "target": "diagnosis"}}
    assert load_policy(_write(tmp_path, ok)).privacy.target == "diagnosis"


def test_deidentified_training_input_needs_dp(tmp_path: Path) -> None:
    columns = {**MINIMAL["columns"], "y": {"rule": "keep", "role": "label"}}
    training = {"enabled": True, "label": "y", "input": "deidentified", "dp": False}
    assert "needs dp: true" in _error(
        tmp_path, {**MINIMAL, "columns": columns, "training": training}
    )
    training = {"enabled": True, "label": "y", "dp": False}
    assert (
        load_policy(
            _write(tmp_path, {**MINIMAL, "columns": columns, "training": training})
        ).training.reads
        == "published"
    )
    training = {"enabled": True, "label": "y"}
    assert (
        load_policy(
            _write(tmp_path, {**MINIMAL, "columns": columns, "training": training})
        ).training.reads
        == "deidentified"
    )
