"""Reading inputs against a policy's schema, and writing outputs atomically.

Readers check everything a policy promises about its input (the file exists and is not
empty, it parses, every row has every field, every declared column is present and no
undeclared one slips through, every value parses as its declared type) and report the
first problem by file, row and column, never by value. Writers go through a temporary
file in the destination folder and an atomic rename, so a crash leaves the old file or
nothing, never half of a new one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import polars as pl

from privacy._atomic import FILE_MODE, FOLDER_MODE, atomic_path, private_dir, refuse_links
from privacy.crypto import (
    KeyEncryptionProvider,
    SealedWriter,
    is_sealed,
    open_sealed,
    unseal_bytes,
)
from privacy.errors import InputError, KeyAccessError, OutputError, SchemaError
from privacy.hashing import sha256_file
from privacy.policy import ColumnType, Policy
from privacy.sources.objectstore import download_bytes, object_url

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "InputFormat",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "SEALED_SUFFIX",
    "conform_frame",
    "detect_format",
    "plain_name",
    "iter_json_lines",
    "open_input",
    "plaintext_blocks",
    "prepare_output_dir",
    "private_dir",
    "read_frame",
    "read_input",
    "read_input_batches",
    "sha256_file",
    "write_frame",
]

InputFormat = Literal["csv", "parquet", "jsonl"]
_SUFFIXES: dict[str, InputFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
}
SEALED_SUFFIX = ".sealed"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def detect_format(path: Path, declared: str = "auto") -> InputFormat:
    """The input's format: the policy's declaration, else the file's suffix."""
    if declared != "auto":
        return declared  # type: ignore[return-value]
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        allowed = ", ".join(sorted(_SUFFIXES))
        raise InputError(
            f"{path}: cannot tell the format from the suffix (use one of {allowed}, "
            "or set input.format in the policy)"
        )
    return fmt


def plain_name(path: Path) -> Path:
    """The name a sealed file's plaintext has: ``data.parquet.sealed`` -> ``data.parquet``."""
    return path.with_suffix("") if path.suffix == SEALED_SUFFIX else path


def read_input(
    path: str | Path, policy: Policy, keys: KeyEncryptionProvider | None = None
) -> pl.DataFrame:
    """Read ``path`` and return a frame with exactly the policy's columns, typed as declared.

    A sealed input is decrypted in memory with ``keys``, never to a temporary file.
    Raises :class:`InputError` for a missing, empty or malformed file and
    :class:`SchemaError` when columns or values do not match the policy.
    """
    return pl.concat(read_input_batches(path, policy, keys))


def read_input_batches(
    path: str | Path,
    policy: Policy,
    keys: KeyEncryptionProvider | None = None,
    *,
    batch_rows: int | None = None,
    source: Path | bytes | None = None,
) -> Iterator[pl.DataFrame]:
    """:func:`read_input` in batches of ``batch_rows`` rows (the last one shorter; all
    of them in one batch when ``None``), each checked and typed as the whole would be,
    with errors naming the row in the whole file. A plain CSV is parsed batch by batch,
    so memory holds one batch; other inputs are parsed whole, then cut.
    """
    name = object_url(path)  # s3://bucket/key, as it was given, in every message
    path = cast(Path, name) if name is not None else Path(path)
    if source is None:
        source = _open_source(path, keys)
    fmt = detect_format(plain_name(Path(path)), policy.input.format)
    if fmt == "csv" and batch_rows is not None:
        raws = _csv_batches(source, path, policy.input.separator, batch_rows)
    else:
        if fmt == "csv":
            whole = _read_csv(source, path, policy.input.separator)
        elif fmt == "parquet":
            whole = _read_parquet(source, path)
        else:
            whole = _read_jsonl(source, path)
        step = batch_rows or max(whole.height, 1)
        raws = (whole.slice(offset, step) for offset in range(0, whole.height, step))
    offset = 0
    for raw in raws:
        if not raw.height:
            continue
        yield _conform(raw, policy, path, row_offset=offset)
        offset += raw.height
    if offset == 0:
        raise InputError(f"{path}: input has a header but no rows")


def _csv_batches(
    source: Path | bytes, name: Path, separator: str, rows: int
) -> Iterator[pl.DataFrame]:
    """A CSV parsed by polars ``rows`` rows at a time, with :func:`_read_csv`'s checks."""
    header = _read_csv_header(source, name, separator)
    lazy = pl.scan_csv(
        _binary(source) if isinstance(source, bytes) else source,
        separator=separator,
        infer_schema=False,
        empty_string_is_null=True,
        raise_if_empty=True,
    )
    walked = False
    batches = lazy.collect_batches(chunk_size=rows)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except pl.exceptions.PolarsError as exc:
            _check_csv_structure(source, name, separator)
            raise InputError(f"{name}: malformed CSV ({type(exc).__name__})") from None
        if batch.columns != header:  # pragma: no cover - polars and csv disagree
            raise InputError(f"{name}: could not read the header consistently")
        if not walked and batch.get_column(header[-1]).null_count():
            _check_csv_structure(source, name, separator)
            walked = True
        yield batch


def read_frame(
    path: str | Path, *, keys: KeyEncryptionProvider | None = None, separator: str = ","
) -> pl.DataFrame:
    """Read a file with no policy: the same structural checks; CSV columns stay text."""
    path = Path(path)
    source = _open_source(path, keys)
    fmt = detect_format(plain_name(path))
    if fmt == "csv":
        _check_csv_structure(source, path, separator)
        try:
            return pl.read_csv(
                _binary(source) if isinstance(source, bytes) else source,
                separator=separator,
                infer_schema=False,  # as text: inference would turn ZIP 00613 into 613
            )
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"{path}: malformed CSV ({type(exc).__name__})") from None
    if fmt == "parquet":
        return _read_parquet(source, path)
    return _read_jsonl(source, path)


def open_input(path: str | Path, keys: KeyEncryptionProvider | None) -> Path | bytes:
    """What an input is read from: the path of a plain local file, or the plaintext of a
    sealed file or of an object (``s3://``), in memory (a sealed one verified), never a
    plaintext temporary file."""
    url = object_url(path)
    return _open_source(cast(Path, url) if url else Path(path), keys)


def _open_source(path: Path, keys: KeyEncryptionProvider | None) -> Path | bytes:
    """The path of a plain input, or a sealed input's plaintext (in memory, verified)."""
    url = object_url(path)
    if url is not None:
        data = download_bytes(url)
        if not is_sealed(data):
            return data
        if keys is None:
            raise KeyAccessError(f"{url}: a sealed input needs a keyring (--keyring)")
        plain = unseal_bytes(data, keys, name=url)
        if not plain:
            raise InputError(f"{url}: input object is empty (once unsealed)")
        return plain
    if not path.exists():
        raise InputError(f"{path}: input file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: input file is empty")
    if not is_sealed(path):
        return path
    if keys is None:
        raise KeyAccessError(f"{path}: a sealed input needs a keyring (--keyring)")
    plain = unseal_bytes(path, keys)
    if not plain:
        raise InputError(f"{path}: input file is empty (once unsealed)")
    return plain


def iter_json_lines(source: Path | bytes, name: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is an InputError."""
    with _binary(source) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if number == 1 and line.startswith(_UTF8_BOM):
                line = line[3:]
            try:
                value = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise _not_utf8(source, name) from None
            except json.JSONDecodeError as exc:
                raise InputError(f"{name}: line {number}: invalid JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise InputError(f"{name}: line {number}: expected a JSON object")
            yield number, value


def plaintext_blocks(
    path: Path, keys: KeyEncryptionProvider | None, *, block: int = 1 << 20
) -> Iterator[bytes]:
    """The plaintext bytes of ``path`` in blocks: unsealed (verified) if it is sealed."""
    with path.open("rb") as handle:
        if is_sealed(path):
            if keys is None:
                raise KeyAccessError(f"{path}: a sealed input needs a keyring (--keyring)")
            yield from open_sealed(handle, keys, name=str(path))
            return
        while data := handle.read(block):
            yield data


# --------------------------------------------------------------------------- readers


def _binary(source: Path | bytes) -> BinaryIO:
    return source.open("rb") if isinstance(source, Path) else io.BytesIO(source)


def _read_csv(source: Path | bytes, name: Path, separator: str) -> pl.DataFrame:
    """polars reads; Python's csv module checks the structure only where polars cannot.

    polars refuses a long row, bad quoting and invalid UTF-8 (without saying where), and
    pads a short row or a blank line with nulls, silently. So the csv module walks the
    file (to name the line) only when polars fails, or when the last column holds a
    null: every short row and blank line leaves one there, and a file without such a
    null has neither. Clean files, the common case, are read at polars' speed.
    """
    header = _read_csv_header(source, name, separator)
    try:
        frame = pl.read_csv(
            source,
            separator=separator,
            infer_schema=False,
            empty_string_is_null=True,
            raise_if_empty=True,
        )
    except pl.exceptions.PolarsError as exc:
        _check_csv_structure(source, name, separator)
        raise InputError(f"{name}: malformed CSV ({type(exc).__name__})") from None
    if frame.columns != header:  # pragma: no cover - polars and csv disagree on the header
        raise InputError(f"{name}: could not read the header consistently")
    if frame.get_column(header[-1]).null_count():
        _check_csv_structure(source, name, separator)
    return frame


def _read_csv_header(source: Path | bytes, path: Path, separator: str) -> list[str]:
    try:
        with io.TextIOWrapper(_binary(source), encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, delimiter=separator, strict=True))
    except StopIteration:
        raise InputError(f"{path}: input file is empty") from None
    except UnicodeDecodeError:  # the decoder reads ahead: find the line
        raise _not_utf8(source, path) from None
    except csv.Error as exc:
        raise InputError(f"{path}: line 1: malformed CSV header ({exc})") from None
    if any("\x00" in name for name in header):  # UTF-16 without a byte-order mark
        raise _not_utf8(source, path)
    _check_header(path, header)
    return header


def _check_csv_structure(source: Path | bytes, path: Path, separator: str) -> None:
    """Walk the file once with the csv module: valid UTF-8, and every row has every field,
    raising with the line where it is not."""
    line = 1
    try:
        with io.TextIOWrapper(_binary(source), encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=separator, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"{path}: input file is empty") from None
            _check_header(path, header)
            width = len(header)
            blank_at = 0
            row = 0
            for record in reader:
                row += 1
                line = reader.line_num
                if not record:
                    blank_at = blank_at or line
                    continue
                if blank_at:
                    raise InputError(f"{path}: line {blank_at}: blank line inside the data")
                if len(record) != width:
                    raise InputError(
                        f"{path}: row {row} (line {line}) has {len(record)} "
                        f"fields, the header has {width}"
                    )
    except UnicodeDecodeError:
        raise _not_utf8(source, path) from None
    except csv.Error as exc:  # the csv module's messages describe syntax, never field values
        raise InputError(f"{path}: after line {line}: malformed CSV ({exc})") from None


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(header, start=1):
        if not name.strip():
            raise InputError(f"{path}: header field {index} is empty")
        if name in seen:
            raise InputError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)


_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _not_utf8(source: Path | bytes, path: Path) -> InputError:
    """The error for a text input that is not UTF-8, naming the encoding it seems to be
    in (by its byte-order mark or its bytes; never quoting them) and how to convert it."""
    with _binary(source) as handle:
        head = handle.read(4096)
    if head.startswith(_UTF16_BOMS) or (len(head) >= 4 and head.count(b"\x00") * 3 >= len(head)):
        encoding, iconv = "UTF-16", "UTF-16"
        where = "it"
    else:
        encoding, iconv = "Latin-1 or Windows-1252", "WINDOWS-1252"
        where = f"line {_first_bad_utf8_line(source)}"
    return InputError(
        f"{path}: {where} is not UTF-8 (it looks like {encoding}): save it as UTF-8 (Excel: "
        f'"CSV UTF-8") or convert it: iconv -f {iconv} -t UTF-8 {path} > utf8.csv'
    )


def _first_bad_utf8_line(source: Path | bytes) -> int:
    with _binary(source) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0  # pragma: no cover - only called after a decode error


def _read_parquet(source: Path | bytes, name: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(_binary(source) if isinstance(source, bytes) else source)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({type(exc).__name__})") from None


def _read_jsonl(source: Path | bytes, name: Path) -> pl.DataFrame:
    with _binary(source) as handle:
        marked = handle.read(3) == _UTF8_BOM
    if marked:  # a UTF-8 byte-order mark, which polars' JSON reader refuses
        source = (source.read_bytes() if isinstance(source, Path) else source)[3:]
    try:
        return pl.read_ndjson(
            _binary(source) if isinstance(source, bytes) else source, infer_schema_length=None
        )
    except (pl.exceptions.PolarsError, OSError):
        pass
    for _ in iter_json_lines(source, name):
        pass
    raise InputError(f"{name}: records with inconsistent fields or types")


# --------------------------------------------------------------------------- schema


def conform_frame(
    raw: pl.DataFrame, policy: Policy, source: str | Path, *, row_offset: int = 0
) -> pl.DataFrame:
    """``raw`` (read from ``source``, named in errors) with exactly the policy's columns,
    typed as declared: the checks every file input gets."""
    return _conform(raw, policy, source, row_offset=row_offset)


def _conform(
    raw: pl.DataFrame, policy: Policy, path: str | Path, *, row_offset: int = 0
) -> pl.DataFrame:
    declared = list(policy.columns)
    missing = [c for c in declared if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{path}: column {', '.join(repr(c) for c in missing)} declared in the policy "
            "is missing from the input"
        )
    extra = [c for c in raw.columns if c not in policy.columns]
    if extra and policy.input.undeclared_columns == "error":
        raise SchemaError(
            f"{path}: column {', '.join(repr(c) for c in extra)} is not declared in the "
            "policy (declare it, or set input.undeclared_columns: drop)"
        )
    frame = raw.select(declared)
    casts = [
        _cast(frame.schema[name], spec.type, spec.format, name)
        for name, spec in policy.columns.items()
    ]
    typed = frame.with_columns(casts)
    for name, spec in policy.columns.items():
        source = frame.get_column(name)
        target = typed.get_column(name)
        bad = source.is_not_null() & target.is_null()
        if bool(bad.any()):
            row = row_offset + int(bad.arg_true()[0]) + 1
            fmt = f" in format {spec.format!r}" if spec.format else ""
            raise SchemaError(
                f"{path}: row {row}, column {name!r}: value is not a valid {spec.type}{fmt}"
            )
        if not spec.nullable and target.null_count():
            row = row_offset + int(target.is_null().arg_true()[0]) + 1
            raise SchemaError(f"{path}: row {row}, column {name!r}: empty, but not nullable")
    return typed


def _cast(dtype: pl.DataType, target: ColumnType, fmt: str | None, name: str) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        text = col.str.strip_chars()
        text = pl.when(text == "").then(None).otherwise(text)
        if target == "string":
            return pl.when(col.str.strip_chars() == "").then(None).otherwise(col).alias(name)
        if target == "integer":
            return text.str.to_integer(strict=False).alias(name)
        if target == "float":
            return text.cast(pl.Float64, strict=False).alias(name)
        if target == "boolean":
            lower = text.str.to_lowercase()
            return (
                pl.when(lower.is_in(_TRUE))
                .then(True)
                .when(lower.is_in(_FALSE))
                .then(False)
                .otherwise(None)
                .alias(name)
            )
        if target == "date":
            return text.str.to_date(fmt, strict=False).alias(name)
        return text.str.to_datetime(fmt, time_unit="us", strict=False).alias(name)
    if target == "string":
        return col.cast(pl.String).alias(name)
    if target == "integer" and dtype.is_float():
        return pl.when(col == col.round()).then(col.cast(pl.Int64, strict=False)).alias(name)
    return col.cast(_POLARS_TYPES[target], strict=False).alias(name)


# --------------------------------------------------------------------------- writing


def atomic_write_bytes(final: Path, data: bytes, *, root: Path | None = None) -> str:
    """Write ``data`` to ``final`` atomically; returns the SHA-256 of the bytes written
    (taken from memory, not read back: a file replaced after the rename cannot lend
    its hash to a signed record). ``final`` a link is refused, and with ``root`` a link
    at any folder below it (:func:`privacy._atomic.atomic_path`)."""
    with atomic_path(final, root=root) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def atomic_write_json(final: Path, value: object, *, root: Path | None = None) -> str:
    """Write ``value`` as indented, sorted JSON atomically; returns its SHA-256."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return atomic_write_bytes(final, text.encode("utf-8"), root=root)


def write_frame(
    frame: pl.DataFrame,
    final: Path,
    *,
    compression: str = "zstd",
    keys: KeyEncryptionProvider | None = None,
    associated_data: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> None:
    """Write ``frame`` as CSV, Parquet or JSON Lines (by suffix), atomically.

    A name ending ``.sealed`` (``people.csv.sealed``) is sealed with ``keys``: the
    plaintext is serialized in memory and only ciphertext reaches the disk. ``root``:
    the output folder ``final`` lies under, below which no link is followed.
    """
    sealed = final.suffix == SEALED_SUFFIX
    fmt = detect_format(plain_name(final))
    if sealed and keys is None:
        raise KeyAccessError(f"{final}: writing a sealed file needs a keyring (--keyring)")
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.write_parquet(buffer, compression=compression)  # type: ignore[arg-type]
    elif fmt == "csv":
        frame.write_csv(buffer)
    else:
        frame.write_ndjson(buffer)
    with atomic_path(final, root=root) as tmp, tmp.open("wb") as sink:
        if sealed:
            assert keys is not None
            with SealedWriter(sink, keys, associated_data) as writer:
                writer.write(buffer.getbuffer())
        else:
            sink.write(buffer.getbuffer())


def prepare_output_dir(
    path: Path,
    *,
    overwrite: bool,
    outputs: tuple[str, ...],
    folders: tuple[str, ...] = (),
    root: Path | None = None,
) -> None:
    """Make sure ``path`` may receive a run's outputs.

    A folder that exists and is not empty is refused unless ``overwrite``; with it, the
    previous run's outputs are removed first so a failed run never leaves stale data.
    A symbolic link in place of one of them (``vault -> /elsewhere``) is refused, not
    removed: whoever writes the folder planted it, and the user should know. ``path``
    itself may be a link: the user named it, and it is followed; unless ``root`` is
    given (the folder the user named, ``path`` a folder privpipe made below it, as a
    run's ``model/``), then a link at ``path`` or between them is refused too.
    """
    if root is not None:
        refuse_links(root, path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise OutputError(f"{path}: output folder exists and is not empty (use --overwrite)")
        for name in (*outputs, *folders):
            refuse_links(path, path / name)
        for name in outputs:
            (path / name).unlink(missing_ok=True)
        for name in folders:
            shutil.rmtree(path / name, ignore_errors=True)
    try:
        private_dir(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the output folder ({exc.strerror})") from None
