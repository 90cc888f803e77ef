"""The sentinel search as wide as the README says, on one set of runs.

One subprocess (its own Prefect home, temporary folder, keyring, passphrases and
ledger) runs a failing sanitize, a good one on a one-worker Dask cluster with five
partitions, a train on its output and a key export; while the sanitize runs, its
workspace is searched after every stage and every partition. The process exits, which
stops Prefect's temporary server (its event and log writers flush on the way out).
Then, for each planted value and for both passphrases:

- every text and blob cell of every table of Prefect's SQLite database (a value split
  across pages or WAL frames escapes a byte search);
- every byte of every file the runs left: Prefect's home, the temporary folder (Dask's
  scratch space included), the outputs, the model, the vault, every trail (the
  keyring's own ``audit.jsonl`` and its ``.witness`` too) and the ledger;
- the environment of each Prefect server process, read while it ran.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tests._helpers.processes import server_environs
from tests._helpers.sentinels import BAD_AGE, SENTINELS, cell_hits, plant
from tests._keys import FAST_SCRYPT

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="Linux /proc"),
]

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "Zq7-sentinel-passphrase-4242-wide"
NEW_PASSPHRASE = "Zq7-sentinel-new-passphrase-4242"
FRAGMENT = "zyxsentinel"  # a piece of the planted name, address and e-mail: any case

# Runs in the subprocess: wraps the CLI's progress callbacks so that the run's
# workspace is searched after every stage and every partition, then runs each command.
DRIVER = r"""
import json, sys, tempfile
from pathlib import Path

from flows import sanitize
from flows.cli import main

needles, report, commands = json.loads(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
seen = {"files": [], "modes": [], "hits": [], "scans": 0}


def search_workspace(*_):
    seen["scans"] += 1
    for work in Path(tempfile.gettempdir()).glob("privpipe-work-*"):
        seen["modes"].append(work.stat().st_mode & 0o777)
        for path in work.rglob("*"):
            try:
                data = path.read_bytes().lower()
            except OSError:  # a folder, or renamed into place meanwhile
                continue
            seen["files"].append(path.name)
            seen["hits"] += [f"{path}: {n}" for n in needles if n.lower().encode() in data]


def hooked(setter):
    def set_callback(callback):
        if callback is None:
            return setter(None)

        def both(*args):
            search_workspace()
            return callback(*args)

        return setter(both)

    return set_callback


sanitize.set_progress = hooked(sanitize.set_progress)
sanitize.set_partitions_progress = hooked(sanitize.set_partitions_progress)
seen["codes"] = [main(command) for command in commands]
report.write_text(json.dumps(seen))
"""


def _needles() -> list[str]:
    return [*SENTINELS.values(), BAD_AGE, FRAGMENT, PASSPHRASE, NEW_PASSPHRASE]


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
    people: pl.DataFrame,
    demo_policy_path: Path,
) -> dict[str, Any]:
    from privacy.crypto import Keyring

    root = tmp_path_factory.mktemp("wide")
    inputs = root / "in"
    inputs.mkdir()
    good, bad = inputs / "good.csv", inputs / "bad.csv"
    planted = plant(people, [3, 250, 401])
    planted.write_csv(good)
    planted.with_columns(
        pl.when(pl.int_range(pl.len()) == 77)
        .then(pl.lit(BAD_AGE))
        .otherwise(pl.col("age"))
        .alias("age")
    ).write_csv(bad)
    policy = inputs / "policy.yaml"
    document = yaml.safe_load(demo_policy_path.read_text())
    document["training"] = {**document["training"], "epochs": 2}
    document["synthetic"] = {**document["synthetic"], "rows": 500, "iterations": 300}
    policy.write_text(yaml.safe_dump(document))

    keyring = root / "keys" / "keyring.json"
    Keyring.create(keyring, PASSPHRASE, scrypt_n=FAST_SCRYPT)
    (root / "tmp").mkdir()
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect-home"),
        "TMPDIR": str(root / "tmp"),
        "PRIVPIPE_KEYRING": str(keyring),
        "PRIVPIPE_PASSPHRASE": PASSPHRASE,
        "PRIVPIPE_NEW_PASSPHRASE": NEW_PASSPHRASE,
        "PRIVPIPE_LEDGER": str(root / "ledger.json"),
    }
    env.pop("PREFECT_API_URL", None)
    out, model = root / "out", root / "model"
    p = ["--policy", str(policy)]
    dask = ["--partition-rows", "100", "--task-runner", "dask", "--dask-workers", "1"]
    commands = [
        ["-q", "sanitize", str(bad), *p, "--out", str(root / "out-bad")],
        ["-q", "sanitize", str(good), *p, "--out", str(out), *dask],
        ["-q", "train", str(out), *p, "--out", str(model)],
        ["-q", "synthesize", str(out), *p, "--out", str(root / "synthetic")],
        ["-q", "stats", str(out), *p, "--out", str(root / "stats")],
        ["keys", "export", "--scope", "published", "--out", str(root / "analyst" / "ring.json")],
    ]
    report = root / "driver.json"
    argv = [json.dumps(_needles()), str(report), json.dumps(commands)]
    command = [sys.executable, "-c", DRIVER, *argv]
    code, err, environs = server_environs(command, env)
    assert code == 0, err[-3000:]
    return {
        "root": root,
        "keyring": keyring,
        "out": out,
        "model": model,
        "good": good,
        "err": err,
        "environs": environs,
        **json.loads(report.read_text()),
    }


def _left_behind(root: Path) -> list[Path]:
    """Every file the runs left: all under the test's folder but its inputs."""
    return sorted(p for p in root.rglob("*") if p.is_file() and root / "in" not in p.parents)


def test_every_command_ran(runs: dict[str, Any]) -> None:
    assert runs["codes"] == [2, 0, 0, 0, 0, 0], runs["err"][-3000:]
    assert "row 78, column 'age': value is not a valid integer" in runs["err"]


def test_the_workspace_holds_only_sealed_files_while_the_run_is_alive(
    runs: dict[str, Any],
) -> None:
    # searched after each stage and each of the five partitions of each wave
    assert runs["scans"] >= 6 + 5 * 3, runs["scans"]
    files = set(runs["files"])
    assert {f"raw-{i}.parquet.sealed" for i in range(5)} <= files, sorted(files)
    assert {f"transformed-{i}.parquet.sealed" for i in range(5)} <= files
    assert "rewrite.json.sealed" in files
    assert all(name.endswith(".sealed") for name in files), sorted(files)
    assert runs["modes"] and set(runs["modes"]) == {0o700}
    assert runs["hits"] == []
    assert not any((runs["root"] / "tmp").glob("privpipe-work-*")), "a workspace was left"


def test_prefects_database_holds_no_planted_value_in_any_text_cell(
    runs: dict[str, Any],
) -> None:
    databases = sorted((runs["root"] / "prefect-home").rglob("*.db"))
    assert databases, "Prefect's database was not where the run was told to keep it"
    for database in databases:
        # read as SQLite reads it: the write-ahead log's frames included
        hits, cells = cell_hits(database, _needles())
        assert hits == [], hits
        text = "\n".join(cells)
        # the query sees what the runs recorded: their parameters, the failure, the train
        assert str(runs["good"]) in text
        assert "row 78, column 'age'" in text
        assert "privpipe-train-summary" in text


def test_no_file_a_run_leaves_holds_a_planted_value_or_a_passphrase(
    runs: dict[str, Any],
) -> None:
    root, keyring, model = runs["root"], runs["keyring"], runs["model"]
    files = _left_behind(root)
    names = {p.relative_to(root).as_posix() for p in files}
    # the search reaches every kind of file the README promises it searches
    assert {
        "keys/keyring.json",
        "keys/keyring.json.witness",
        "keys/audit.jsonl",  # the keyring's own trail: the export is on it
        "out/audit.jsonl",
        "out/audit.jsonl.head",
        "out/manifest.json",
        "out/report.html",
        "out-bad/audit.jsonl",
        "out-bad/report.html",  # a failed run's report: NOT RELEASABLE, and why
        "model/model_card.json",
        "model/encoder.json",
        "model/report.html",
        "model/audit.jsonl",
        "synthetic/synthetic_card.json",  # the DP releases: cards, trails, reports
        "synthetic/report.html",
        "stats/statistics_card.json",
        "stats/audit.jsonl",
        "ledger.json",
    } <= names, sorted(names)
    assert any(n.startswith("prefect-home/") and ".db" in n for n in names)
    assert any(n.startswith("out/vault/") for n in names)
    hits = []
    for path in files:
        data = path.read_bytes().lower()
        hits += [f"{path}: {n}" for n in _needles() if n.lower().encode() in data]
    assert hits == [], hits
    assert keyring.exists() and (model / "encoder.json").stat().st_size


def test_the_sealed_outputs_hold_no_planted_value_once_unsealed(runs: dict[str, Any]) -> None:
    from privacy.crypto import Keyring, unseal_bytes

    ring = Keyring.open(runs["keyring"], PASSPHRASE)
    root = runs["root"]
    for sealed in (
        runs["out"] / "data.parquet.sealed",
        root / "synthetic" / "synthetic.parquet.sealed",
        root / "stats" / "statistics.csv.sealed",
    ):
        plain = io.BytesIO(unseal_bytes(sealed, ring))
        data = pl.read_csv(plain) if sealed.name.endswith(".csv.sealed") else pl.read_parquet(plain)
        for column in data.columns:
            text = data.get_column(column).cast(pl.String).drop_nulls().str.to_lowercase()
            for value in _needles():
                assert not text.str.contains(value.lower(), literal=True).any(), (column, value)


def test_no_prefect_server_process_held_a_passphrase(runs: dict[str, Any]) -> None:
    """The Dask run exports the passphrase for its workers; the server never has it."""
    environs = runs["environs"]
    assert environs, "no Prefect server process was seen"
    for environ in environs:
        names = {item.split(b"=", 1)[0] for item in environ.split(b"\0")}
        assert not names & {b"PRIVPIPE_PASSPHRASE", b"PRIVPIPE_NEW_PASSPHRASE"}
        assert PASSPHRASE.encode() not in environ
        assert NEW_PASSPHRASE.encode() not in environ
