"""Reading inputs against a policy: every kind of bad input gets a one-line error that
names the file, row and column, and never the value."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from privacy.errors import InputError, OutputError, SchemaError
from privacy.io import (
    atomic_path,
    prepare_output_dir,
    read_input,
    read_input_batches,
    write_frame,
)
from privacy.policy import policy_from_dict

POLICY = policy_from_dict(
    {
        "name": "t",
        "columns": {
            "id": {"rule": "pseudonymize", "nullable": False},
            "age": {"type": "integer", "rule": "keep"},
            "born": {"type": "date", "rule": "keep"},
            "score": {"type": "float", "rule": "keep"},
            "member": {"type": "boolean", "rule": "keep"},
        },
    }
)
HEADER = "id,age,born,score,member\n"
GOOD = HEADER + "a1,34,1990-01-02,1.5,yes\na2,,1985-12-31,2,false\n"


def _csv(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_reads_and_types_a_good_csv(tmp_path: Path) -> None:
    frame = read_input(_csv(tmp_path, GOOD), POLICY)
    assert frame.schema == {
        "id": pl.String,
        "age": pl.Int64,
        "born": pl.Date,
        "score": pl.Float64,
        "member": pl.Boolean,
    }
    assert frame.get_column("age").to_list() == [34, None]
    assert frame.get_column("member").to_list() == [True, False]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: input file not found"):
        read_input(tmp_path / "nope.csv", POLICY)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"in\.csv: input file is empty"):
        read_input(_csv(tmp_path, ""), POLICY)


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="header but no rows"):
        read_input(_csv(tmp_path, HEADER), POLICY)


def test_ragged_row_names_row_and_line(tmp_path: Path) -> None:
    text = HEADER + "a1,34,1990-01-02,1.5,yes\na2,40,1990-01-02,1.5,no,EXTRA\n"
    with pytest.raises(
        InputError, match=r"in\.csv: row 2 \(line 3\) has 6 fields, the header has 5"
    ):
        read_input(_csv(tmp_path, text), POLICY)


def test_short_row_is_ragged_too(tmp_path: Path) -> None:
    text = HEADER + "a1,34,1990-01-02,1.5,yes\na2,40\n"
    with pytest.raises(InputError, match=r"row 2 \(line 3\) has 2 fields"):
        read_input(_csv(tmp_path, text), POLICY)


def test_blank_line_inside_the_data_names_the_line(tmp_path: Path) -> None:
    text = HEADER + "a1,34,1990-01-02,1.5,yes\n\na2,40,1990-01-02,1.5,no\n"
    with pytest.raises(InputError, match=r"in\.csv: line 3: blank line inside the data"):
        read_input(_csv(tmp_path, text), POLICY)


def test_empty_last_field_is_a_null_not_a_short_row(tmp_path: Path) -> None:
    # An empty last field sends the file through the csv module's walk; it passes.
    frame = read_input(_csv(tmp_path, HEADER + "a1,34,1990-01-02,1.5,\n"), POLICY)
    assert frame.get_column("member").to_list() == [None]


def test_invalid_utf8_far_past_the_header_is_found_on_its_line(tmp_path: Path) -> None:
    rows = "".join(f"a{i},34,1990-01-02,1.5,yes\n" for i in range(2000))
    text = (HEADER + rows).encode() + b"a\xff,34,1990-01-02,1.5,no\n"
    with pytest.raises(
        InputError,
        match=r"in\.csv: line 2002 is not UTF-8 \(it looks like Latin-1 or Windows-1252\)",
    ):
        read_input(_csv(tmp_path, text), POLICY)


def test_quoted_newlines_count_lines_not_rows(tmp_path: Path) -> None:
    text = HEADER + 'a1,34,1990-01-02,1.5,yes\n"a\n2",40,1990-01-02,1.5,no\na3,1\n'
    with pytest.raises(InputError, match=r"row 3 \(line 5\)"):
        read_input(_csv(tmp_path, text), POLICY)


def test_missing_declared_column(tmp_path: Path) -> None:
    text = "id,age,born,score\na1,34,1990-01-02,1.5\n"
    with pytest.raises(SchemaError, match=r"column 'member' declared in the policy is missing"):
        read_input(_csv(tmp_path, text), POLICY)


def test_undeclared_column_is_an_error_by_default(tmp_path: Path) -> None:
    text = HEADER.strip() + ",ssn\na1,34,1990-01-02,1.5,yes,123-45-6789\n"
    with pytest.raises(SchemaError, match=r"column 'ssn' is not declared in the policy"):
        read_input(_csv(tmp_path, text), POLICY)


def test_undeclared_column_can_be_dropped_by_policy(tmp_path: Path) -> None:
    text = HEADER.strip() + ",ssn\na1,34,1990-01-02,1.5,yes,123-45-6789\n"
    data = POLICY.model_dump()
    data["input"]["undeclared_columns"] = "drop"
    frame = read_input(_csv(tmp_path, text), policy_from_dict(data))
    assert "ssn" not in frame.columns


def test_wrong_type_names_row_and_column_but_not_the_value(tmp_path: Path) -> None:
    text = HEADER + "a1,34,1990-01-02,1.5,yes\na2,Zebediah Quux,1990-01-02,1.5,no\n"
    with pytest.raises(SchemaError) as info:
        read_input(_csv(tmp_path, text), POLICY)
    message = str(info.value)
    assert "row 2, column 'age': value is not a valid integer" in message
    assert "Zebediah" not in message


def test_bad_date(tmp_path: Path) -> None:
    text = HEADER + "a1,34,1990-13-02,1.5,yes\n"
    with pytest.raises(SchemaError, match=r"row 1, column 'born': value is not a valid date"):
        read_input(_csv(tmp_path, text), POLICY)


def test_not_nullable(tmp_path: Path) -> None:
    text = HEADER + "a1,34,1990-01-02,1.5,yes\n,34,1990-01-02,1.5,yes\n"
    with pytest.raises(SchemaError, match=r"row 2, column 'id': empty, but not nullable"):
        read_input(_csv(tmp_path, text), POLICY)


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    text = (HEADER + "a1,34,1990-01-02,1.5,yes\n").encode() + b"a\xff2,34,1990-01-02,1.5,no\n"
    with pytest.raises(InputError, match=r"in\.csv: line 3 is not UTF-8"):
        read_input(_csv(tmp_path, text), POLICY)


def test_duplicate_header(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="appears twice"):
        read_input(_csv(tmp_path, "id,id\n1,2\n"), POLICY)


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot tell the format"):
        read_input(_csv(tmp_path, GOOD, "in.xlsx"), POLICY)


def test_parquet_and_jsonl_round_trip(tmp_path: Path) -> None:
    frame = read_input(_csv(tmp_path, GOOD), POLICY)
    for name in ("in.parquet", "in.jsonl"):
        write_frame(frame, tmp_path / name)
        assert read_input(tmp_path / name, POLICY).equals(frame)


def test_malformed_jsonl_names_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a1"}\n{"id": \n')
    with pytest.raises(InputError, match=r"in\.jsonl: line 2: invalid JSON"):
        read_input(path, POLICY)


def test_not_parquet(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_input(_csv(tmp_path, GOOD, "in.parquet"), POLICY)


def test_reading_never_modifies_the_input(tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    read_input(path, POLICY)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_output_folder_must_be_empty_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.parquet").write_bytes(b"stale")
    (out / "other.txt").write_text("keep")
    with pytest.raises(OutputError, match="not empty \\(use --overwrite\\)"):
        prepare_output_dir(out, overwrite=False, outputs=("data.parquet",))
    prepare_output_dir(out, overwrite=True, outputs=("data.parquet",))
    assert not (out / "data.parquet").exists() and (out / "other.txt").exists()


def test_unbalanced_quote_names_the_line(tmp_path: Path) -> None:
    text = HEADER + 'a1,34,1990-01-02,1.5,yes\n"a2"x,34,1990-01-02,1.5,yes\n'
    with pytest.raises(InputError, match=r"in\.csv: after line 2: malformed CSV"):
        read_input(_csv(tmp_path, text), POLICY)


def _rows(n: int) -> str:
    return "".join(f"a{i},{20 + i % 50},1990-01-02,1.5,yes\n" for i in range(n))


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_batches_are_the_whole_input_in_order(tmp_path: Path, fmt: str) -> None:
    from privacy.io import read_input_batches

    source = _csv(tmp_path, HEADER + _rows(1000))
    if fmt != "csv":
        whole = read_input(source, POLICY).with_columns(pl.col("born").cast(pl.String))
        source = tmp_path / f"in.{fmt}"
        whole.write_parquet(source) if fmt == "parquet" else whole.write_ndjson(source)
    batches = list(read_input_batches(source, POLICY, batch_rows=300))
    assert [b.height for b in batches] == [300, 300, 300, 100]
    assert pl.concat(batches).equals(read_input(source, POLICY))


def test_a_bad_value_in_a_later_batch_is_named_by_its_row_in_the_file(tmp_path: Path) -> None:
    from privacy.io import read_input_batches

    text = HEADER + _rows(700) + "a700,old,1990-01-02,1.5,yes\n" + _rows(10)
    with pytest.raises(SchemaError, match=r"row 701, column 'age': value is not a valid integer"):
        list(read_input_batches(_csv(tmp_path, text), POLICY, batch_rows=300))


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("a9,34,1990-01-02\n", r"row 702 \(line 703\) has 3 fields, the header has 5"),
        (b"a9,34,1990-01-02,1.5,\xff\xfe\n", r"line 703 is not UTF-8"),
    ],
)
def test_a_broken_row_in_a_later_batch_is_named_by_its_line(
    tmp_path: Path, tail: str | bytes, message: str
) -> None:
    from privacy.io import read_input_batches

    head = (HEADER + _rows(701)).encode()
    text = head + (tail if isinstance(tail, bytes) else tail.encode()) + _rows(5).encode()
    with pytest.raises(InputError, match=message):
        list(read_input_batches(_csv(tmp_path, text), POLICY, batch_rows=300))


def _record_durability(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, bool]]:
    """Every fsync (the inode it reached, whether a folder) and rename, in order: the
    real calls, recorded at the OS boundary."""
    import os
    import stat

    events: list[tuple[str, int, bool]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        events.append(("fsync", info.st_ino, stat.S_ISDIR(info.st_mode)))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        real_replace(src, dst)
        events.append(("replace", os.stat(dst).st_ino, False))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_attack_a_crash_after_an_atomic_rename_loses_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is durable only once the folder holding it is fsynced: without that a
    power cut can leave the old file (or none) although the write returned."""
    from privacy.io import atomic_write_bytes

    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "manifest.json"
    target.write_bytes(b"old")
    events = _record_durability(monkeypatch)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    file_ino, folder_ino = target.stat().st_ino, folder.stat().st_ino
    assert events == [
        ("fsync", file_ino, False),  # the data, before it is renamed in
        ("replace", file_ino, False),
        ("fsync", folder_ino, True),  # then the folder entry pointing at it
    ]


def test_every_atomic_writer_fsyncs_the_folder_after_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record_durability(monkeypatch)
    target = tmp_path / "frame.parquet"
    write_frame(pl.DataFrame({"a": [1, 2]}), target)
    kinds = [(kind, is_dir) for kind, _, is_dir in events]
    assert kinds[-2:] == [("replace", False), ("fsync", True)]
    assert events[-1][1] == tmp_path.stat().st_ino


def test_a_folder_fsync_failure_is_raised_unless_the_filesystem_cannot_fsync_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os
    import stat

    from privacy.io import atomic_write_bytes

    real_fsync = os.fsync
    failure = {"errno": errno.EIO}

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(failure["errno"], os.strerror(failure["errno"]))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):  # the write may not be durable
        atomic_write_bytes(tmp_path / "a.json", b"{}")
    failure["errno"] = errno.EINVAL  # e.g. a FUSE or network filesystem: nothing to flush
    atomic_write_bytes(tmp_path / "b.json", b"{}")
    assert (tmp_path / "b.json").read_bytes() == b"{}"


# ---------------------------------------------------------------- files as people save them

EXCEL = {  # "CSV UTF-8" as Excel saves it: a byte-order mark, CRLF, a quoted newline
    "name": "t",
    "columns": {
        "id": {"rule": "pseudonymize"},
        "Mü\u015fteri ad\u0131": {"rule": "drop"},  # a non-Latin column name
        "notes": {"rule": "keep"},
    },
}


@pytest.mark.parametrize("batch_rows", [None, 1])
def test_an_excel_csv_utf8_with_a_byte_order_mark_is_read(
    tmp_path: Path, batch_rows: int | None
) -> None:
    text = 'id,Mü\u015fteri ad\u0131,notes\r\na1,Zoë,"two\r\nlines"\r\na2,Иван,plain\r\n'
    path = _csv(tmp_path, b"\xef\xbb\xbf" + text.encode())
    policy = policy_from_dict(EXCEL)
    frame = pl.concat(list(read_input_batches(path, policy, batch_rows=batch_rows)))
    assert frame.columns == ["id", "Mü\u015fteri ad\u0131", "notes"]
    assert frame.get_column("id").to_list() == ["a1", "a2"]
    assert frame.get_column("notes").to_list() == ["two\r\nlines", "plain"]
    assert frame.get_column("Mü\u015fteri ad\u0131").to_list() == ["Zoë", "Иван"]


def test_a_jsonl_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    policy = policy_from_dict({"name": "t", "columns": {"id": {"rule": "keep"}}})
    path = _csv(tmp_path, b'\xef\xbb\xbf{"id": "a1"}\n{"id": "a2"}\n', "in.jsonl")
    assert read_input(path, policy).get_column("id").to_list() == ["a1", "a2"]


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ("id,age\r\na1,34\r\n".encode("utf-16"), "it is not UTF-8 (it looks like UTF-16)"),
        ("id,age\na1,34\n".encode("utf-16-le"), "it is not UTF-8 (it looks like UTF-16)"),
        (
            "id,age\nJosé,34\n".encode("latin-1"),
            "line 2 is not UTF-8 (it looks like Latin-1 or Windows-1252)",
        ),
    ],
)
def test_a_file_in_another_encoding_is_named_with_how_to_convert_it(
    tmp_path: Path, data: bytes, named: str
) -> None:
    columns = {"id": {"rule": "keep"}, "age": {"rule": "keep"}}
    policy = policy_from_dict({"name": "t", "columns": columns})
    path = _csv(tmp_path, data)
    with pytest.raises(InputError) as caught:
        read_input(path, policy)
    message = str(caught.value)
    assert message.startswith(f"{path}: {named}") and "iconv -f " in message
    assert "José" not in message and "\n" not in message
