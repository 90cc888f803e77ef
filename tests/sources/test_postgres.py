"""PostgreSQL as an input, against a real server: a table or a query read in partitions
from one snapshot into the same flow, the vault copy of the result set sealed, the source
recorded without its credentials, and one-line errors for every way the source can be
wrong. The sentinel test plants PII in the table and searches everything the run leaves,
the database server's log included, for it and for the password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from flows.cli import main
from tests._demo import demo_policy_copy, leaky_people
from tests.conftest import PREFECT_HOME

pytestmark = pytest.mark.prefect

URI_ENV = "PRIVPIPE_TEST_PG_URI"
SENTINEL_EMAIL = "zyxpgsentinel@sentinel-pii.example"
SENTINEL_NAME = "Qwertolomew Pgsentinel"


@pytest.fixture(scope="module")
def people_table(postgres, people: pl.DataFrame) -> str:  # type: ignore[no-untyped-def]
    frame = people.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit(SENTINEL_EMAIL))
        .otherwise(pl.col("email"))
        .alias("email"),
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit(SENTINEL_NAME))
        .otherwise(pl.col("name"))
        .alias("name"),
    )
    frame.write_database("people", postgres.uri(), engine="adbc", if_table_exists="replace")
    postgres.psql(
        "CREATE TABLE people_age_text AS SELECT * FROM people; "
        "ALTER TABLE people_age_text ALTER COLUMN age TYPE text; "
        "UPDATE people_age_text SET age = 'unknown' WHERE person_id = "
        "(SELECT person_id FROM people_age_text ORDER BY person_id LIMIT 1 OFFSET 9);"
        "CREATE TABLE people_age_date AS SELECT *, DATE '2000-01-01' AS age2 FROM people;"
        "ALTER TABLE people_age_date DROP COLUMN age; "
        "ALTER TABLE people_age_date RENAME COLUMN age2 TO age;"
    )
    return "people"


def _policy(tmp_path: Path, demo_policy_path: Path, **source: Any) -> Path:
    spec = {"kind": "postgres", "uri_env": URI_ENV, **source}
    return demo_policy_copy(tmp_path / "pg.yaml", demo_policy_path, input=spec)


def _sanitize(policy: Path, out: Path, *extra: str) -> int:
    return main(["-q", "sanitize", "--policy", str(policy), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def good_run(
    postgres, people_table: str, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("pg")
    policy = _policy(folder, demo_policy_path, table=people_table, partition_by="person_id")
    out = folder / "out"
    with pytest.MonkeyPatch.context() as env:
        env.setenv(URI_ENV, postgres.uri())
        assert _sanitize(policy, out, "--partition-rows", "200") == 0
    return {"out": out, "policy": policy, "folder": folder}


def test_a_table_is_sanitized_in_partitions_from_one_snapshot(
    good_run: dict[str, Any], postgres, people: pl.DataFrame
) -> None:  # type: ignore[no-untyped-def]
    out = good_run["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["rows"] == people.height
    source = manifest["input"]["source"]
    assert source == {
        "kind": "postgres",
        "host": "127.0.0.1",
        "port": postgres.port,
        "database": "postgres",
        "table": "people",
        "partition_by": "person_id",
        "snapshot": source["snapshot"],
    }
    assert source["snapshot"].endswith("Z")
    ingest = next(s for s in manifest["stages"] if s["stage"] == "ingest")
    assert ingest["counts"]["partitions"] == 3  # 500 rows by 200
    assert (
        manifest["input"]["path"]
        == f"postgresql://127.0.0.1:{postgres.port}/postgres (table people)"
    )
    vault = out / manifest["vault"]["path"]
    assert vault.name == "people.parquet.sealed"
    from privacy.crypto import Keyring, unseal_bytes
    from tests.conftest import KEYRING, PASSPHRASE

    copy = pl.read_parquet(unseal_bytes(vault, Keyring.open(KEYRING, PASSPHRASE)))
    assert copy.height == people.height and SENTINEL_EMAIL in copy.get_column("email").to_list()
    assert "NOT RELEASABLE" not in (out / "report.html").read_text()


def test_the_same_rows_have_the_same_keyed_digest(
    good_run: dict[str, Any], postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(URI_ENV, postgres.uri())
    again = tmp_path / "again"
    assert _sanitize(good_run["policy"], again, "--partition-rows", "200") == 0
    first = json.loads((good_run["out"] / "manifest.json").read_text())["input"]
    second = json.loads((again / "manifest.json").read_text())["input"]
    assert first["hmac_sha256"] == second["hmac_sha256"]
    assert first["source"]["snapshot"] != second["source"]["snapshot"]


def test_a_query_is_a_source_too(
    postgres,
    people_table: str,
    demo_policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(URI_ENV, postgres.uri())
    query = "SELECT * FROM people WHERE age >= 30"
    policy = _policy(tmp_path, demo_policy_path, query=query, partition_by="person_id")
    assert _sanitize(policy, tmp_path / "out") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    import hashlib

    assert manifest["input"]["source"]["query_sha256"] == hashlib.sha256(query.encode()).hexdigest()
    expected = int(postgres.psql("SELECT count(*) FROM people WHERE age >= 30").strip())
    assert manifest["input"]["rows"] == expected
    assert query not in json.dumps(manifest)


@pytest.mark.parametrize(
    ("uri", "source", "expected"),
    [
        (
            "wrong-password",
            {"table": "people"},
            "the database refused the credentials in " + URI_ENV,
        ),
        ("unreachable", {"table": "people"}, "could not connect"),
        ("no-database", {"table": "people"}, "the database does not exist"),
        ("good", {"table": "nobody_here"}, "table nobody_here does not exist"),
        ("good", {"query": "SELECT nonsense FROM people"}, "the query failed (SQLSTATE 42703)"),
        (
            "good",
            {"table": "people_age_text", "partition_by": "person_id"},
            "row 10, column 'age': value is not a valid integer",
        ),
        (
            "good",
            {"table": "people_age_date"},
            "column 'age' is Date in the database, but the policy declares it integer",
        ),
    ],
)
def test_each_bad_source_is_one_line_naming_it_and_nothing_is_published(  # type: ignore[no-untyped-def]
    postgres,
    people_table: str,
    demo_policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uri: str,
    source: dict[str, str],
    expected: str,
) -> None:
    uris = {
        "good": postgres.uri(),
        "wrong-password": postgres.uri(password="not-the-password"),
        "unreachable": postgres.uri().replace(f":{postgres.port}/", ":1/"),
        "no-database": postgres.uri("no_such_db"),
    }
    monkeypatch.setenv(URI_ENV, uris[uri])
    policy = _policy(tmp_path, demo_policy_path, **source)
    out = tmp_path / "out"
    assert _sanitize(policy, out) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert err[0].startswith("error: postgresql://127.0.0.1:")
    assert postgres.password not in err[0] and "not-the-password" not in err[0]
    assert not (out / "manifest.json").exists()


def test_the_uri_variable_must_be_set(
    demo_policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(URI_ENV, raising=False)
    policy = _policy(tmp_path, demo_policy_path, table="people")
    assert _sanitize(policy, tmp_path / "out") != 0
    err = capsys.readouterr().err.strip()
    assert f"the environment variable {URI_ENV} is not set" in err and len(err.splitlines()) == 1


def test_no_raw_value_or_password_leaves_the_vault_and_the_source(
    good_run: dict[str, Any], postgres
) -> None:  # type: ignore[no-untyped-def]
    """Planted in the table: found in no file the run left (the sealed vault and output
    hold it only as ciphertext), not in Prefect's store, not in the server's log. The
    password is nowhere, the server's log included."""
    needles = [SENTINEL_EMAIL, SENTINEL_NAME, postgres.password]
    hits = []
    roots = [good_run["folder"], PREFECT_HOME]
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            data = path.read_bytes()
            hits += [f"{path}: {n}" for n in needles if n.encode() in data]
    log = postgres.server_log()
    assert b"SELECT" in log  # the log holds the statements: the search is real
    hits += [f"server log: {n}" for n in needles if n.encode() in log]
    assert hits == [], hits


def test_a_scheduled_run_skips_an_unchanged_result_set(  # type: ignore[no-untyped-def]
    postgres,
    people_table: str,
    demo_policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """serve's flow on a database source: the second run finds the same rows (by the
    result set's keyed digest) and writes nothing; a new row makes the third run work."""
    from flows.serve import scheduled_sanitize_flow
    from privacy.sources import PostgresSource
    from tests.conftest import KEYRING

    monkeypatch.setenv(URI_ENV, postgres.uri())
    postgres.psql("CREATE TABLE served AS SELECT * FROM people")
    policy = _policy(tmp_path, demo_policy_path, table="served", partition_by="person_id")
    data = yaml.safe_load(policy.read_text())
    data["schedule"] = {"skip_unchanged": True}
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    source = PostgresSource(URI_ENV, "served", None, "person_id").describe()

    def run() -> dict[str, Any]:
        return scheduled_sanitize_flow(
            input_path=source,
            policy_path=str(policy),
            out_root=str(tmp_path / "root"),
            keyring_path=str(KEYRING),
        )

    first = run()
    assert first["status"] == "ok" and first["sanitize"]["rows_in"] == 500
    second = run()
    assert second["status"] == "skipped" and second["last_run"] == first["run"]
    postgres.psql("INSERT INTO served SELECT * FROM people LIMIT 1")
    third = run()
    assert third["status"] == "ok" and third["sanitize"]["rows_in"] == 501


# --------------------------------------------------------------------------- database out


def _with_output(policy: Path, table: str, mode: str = "replace") -> Path:
    data = yaml.safe_load(policy.read_text())
    data["outputs"] = {"database": {"uri_env": URI_ENV, "table": table, "mode": mode}}
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    return policy


def _count(postgres, table: str) -> int:  # type: ignore[no-untyped-def]
    return int(postgres.psql(f"SELECT count(*) FROM {table}").strip())


def test_the_release_is_published_into_a_table_and_recorded(  # type: ignore[no-untyped-def]
    postgres,
    people_table: str,
    demo_policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from privacy.crypto import Keyring, unseal_bytes
    from tests.conftest import KEYRING, PASSPHRASE

    monkeypatch.setenv(URI_ENV, postgres.uri())
    postgres.psql("CREATE SCHEMA IF NOT EXISTS analytics")
    policy = _with_output(
        _policy(tmp_path, demo_policy_path, table=people_table, partition_by="person_id"),
        "analytics.released",
    )
    out = tmp_path / "out"
    assert _sanitize(policy, out, "--partition-rows", "200") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    published = pl.read_parquet(
        unseal_bytes(out / "data.parquet.sealed", Keyring.open(KEYRING, PASSPHRASE))
    )
    assert manifest["output"]["database"] == {
        "kind": "postgres",
        "host": "127.0.0.1",
        "port": postgres.port,
        "database": "postgres",
        "table": "analytics.released",
        "mode": "replace",
        "rows": published.height,
    }
    table = pl.read_database_uri(
        "SELECT * FROM analytics.released ORDER BY person_id", postgres.uri(), engine="adbc"
    )
    assert table.columns == published.columns
    assert table.get_column("person_id").to_list() == sorted(published.get_column("person_id"))
    assert SENTINEL_EMAIL not in table.get_column("email").to_list()
    # again, in append mode: the rows are added
    _with_output(policy, "analytics.released", "append")
    assert _sanitize(policy, tmp_path / "again") == 0
    assert _count(postgres, "analytics.released") == 2 * published.height


def test_a_run_the_gate_refuses_leaves_the_table_as_it_was(  # type: ignore[no-untyped-def]
    postgres,
    people: pl.DataFrame,
    demo_policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(URI_ENV, postgres.uri())
    leaky_people(people).write_database(
        "leaky", postgres.uri(), engine="adbc", if_table_exists="replace"
    )
    postgres.psql("CREATE TABLE kept AS SELECT 1 AS marker")
    policy = _with_output(_policy(tmp_path, demo_policy_path, table="leaky"), "kept")
    assert _sanitize(policy, tmp_path / "out") != 0
    assert postgres.psql("SELECT * FROM kept").strip() == "1"


def test_a_write_that_fails_midway_is_rolled_back(
    postgres, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from privacy.errors import OutputError
    from privacy.sources import PostgresTable

    monkeypatch.setenv(URI_ENV, postgres.uri())
    postgres.psql("CREATE TABLE rolled AS SELECT 1 AS marker")
    frame = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    def frames():  # type: ignore[no-untyped-def]
        yield frame
        raise RuntimeError("the run died between two partitions")

    with pytest.raises(RuntimeError):
        PostgresTable(URI_ENV, "rolled", "replace").write(frames())
    assert postgres.psql("SELECT * FROM rolled").strip() == "1"  # not replaced
    with (  # the files fail after the rows went in: the table is not replaced either
        pytest.raises(OSError),
        PostgresTable(URI_ENV, "rolled", "replace").staged([frame]) as written,
    ):
        assert written["rows"] == 2
        raise OSError("the disk filled up while the files were written")
    assert postgres.psql("SELECT * FROM rolled").strip() == "1"
    with pytest.raises(OutputError, match=r"the table does not take these rows \(SQLSTATE 42"):
        PostgresTable(URI_ENV, "rolled", "append").write([frame])
    assert postgres.psql("SELECT * FROM rolled").strip() == "1"
