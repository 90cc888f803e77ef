"""PostgreSQL as an input: a table or a query, read with ADBC's PostgreSQL driver (Arrow
record batches streamed from one server-side result, so memory holds one partition)
inside one read-only REPEATABLE READ transaction: every partition comes from the same
snapshot, whose time the manifest records.

The connection URI comes from the environment variable the policy names
(``input.uri_env``); it is used to connect and nothing else. What is recorded of the
source is :meth:`PostgresSource.identity`: host, port, database, the table or the query's
SHA-256, and the snapshot time; never the user or the password. Errors are privpipe's
own one-line messages chosen by SQLSTATE: the driver's text can quote the URI or a value,
so it is never passed on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from privacy.errors import InputError, KeyAccessError, OutputError, PrivpipeError

__all__ = ["PostgresSource", "PostgresTable"]

_SNAPSHOT = (
    "SELECT to_char(transaction_timestamp() AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')'
)


def _quote(identifier: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in identifier.split("."))


@dataclass
class PostgresSource:
    """One PostgreSQL input: ``table`` or ``query``, the URI in ``uri_env``."""

    uri_env: str
    table: str | None = None
    query: str | None = None
    partition_by: str | None = None
    snapshot: str | None = field(default=None, init=False)  # set once read

    @classmethod
    def from_policy(cls, spec: Any) -> PostgresSource:
        return cls(spec.uri_env, spec.table, spec.query, spec.partition_by)

    # ------------------------------------------------------------------ naming it

    def _uri(self) -> str:
        uri = os.environ.get(self.uri_env)
        if not uri:
            raise KeyAccessError(
                f"input.uri_env: the environment variable {self.uri_env} is not set: set "
                "it to the database URI (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
            )
        if urlsplit(uri).scheme not in ("postgres", "postgresql"):
            raise InputError(f"input.uri_env: {self.uri_env} does not hold a postgresql:// URI")
        return uri

    def _where(self) -> tuple[str, int, str]:
        parts = urlsplit(self._uri())
        try:
            port = parts.port or 5432
        except ValueError:
            raise InputError(f"input.uri_env: {self.uri_env} holds a URI with a bad port") from None
        return parts.hostname or "localhost", port, parts.path.lstrip("/") or "postgres"

    @property
    def what(self) -> str:
        if self.table:
            return f"table {self.table}"
        digest = hashlib.sha256((self.query or "").encode("utf-8")).hexdigest()
        return f"query sha256 {digest[:16]}"

    def describe(self) -> str:
        """The source in one line for messages and the manifest: no user, no password."""
        host, port, database = self._where()
        return f"postgresql://{host}:{port}/{database} ({self.what})"

    def identity(self) -> dict[str, Any]:
        """What the manifest records of the source (call after :meth:`batches`)."""
        host, port, database = self._where()
        out: dict[str, Any] = {"kind": "postgres", "host": host, "port": port, "database": database}
        if self.table:
            out["table"] = self.table
        else:
            out["query_sha256"] = hashlib.sha256((self.query or "").encode("utf-8")).hexdigest()
        out["partition_by"] = self.partition_by
        out["snapshot"] = self.snapshot
        return out

    def sql(self) -> str:
        base = (
            f"SELECT * FROM {_quote(self.table)}"
            if self.table
            else f"SELECT * FROM ({self.query}) AS q"
        )
        return base + (f" ORDER BY {_quote(self.partition_by)}" if self.partition_by else "")

    # ------------------------------------------------------------------ reading

    def connect(self) -> Any:
        """An ADBC connection (autocommit off) to the database the URI names, or the
        one-line error for a server that cannot be reached or refuses the credentials."""
        from adbc_driver_manager import Error as DatabaseError
        from adbc_driver_postgresql import dbapi

        try:
            return dbapi.connect(self._uri())
        except DatabaseError as exc:
            raise self._error(exc, self.describe(), connecting=True) from None

    def batches(self, rows: int | None) -> Iterator[pl.DataFrame]:
        """The result set in frames of ``rows`` rows (all in one when ``None``), from one
        snapshot; one-line errors naming the source and what is wrong."""
        from adbc_driver_manager import Error as DatabaseError

        name = self.describe()
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                try:
                    cursor.execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    cursor.execute(_SNAPSHOT)
                    self.snapshot = str(cursor.fetchone()[0])
                    cursor.execute(self.sql())
                    reader = cursor.fetch_record_batch()
                    pending: list[pl.DataFrame] = []
                    held = 0
                    for batch in reader:
                        part = pl.from_arrow(batch)
                        assert isinstance(part, pl.DataFrame)
                        pending.append(part)
                        held += part.height
                        while rows is not None and held >= rows:
                            frame = pl.concat(pending)
                            yield frame.slice(0, rows)
                            rest = frame.slice(rows)
                            pending, held = ([rest] if rest.height else []), rest.height
                except DatabaseError as exc:
                    raise self._error(exc, name) from None
                if held or rows is None or not pending:
                    if pending:
                        yield pl.concat(pending)
                    else:
                        empty = pl.from_arrow(reader.schema.empty_table())
                        assert isinstance(empty, pl.DataFrame)
                        yield empty
        finally:
            connection.close()

    def _error(self, exc: BaseException, name: str, *, connecting: bool = False) -> PrivpipeError:
        state = str(getattr(exc, "sqlstate", "") or "")
        text = str(exc).lower()
        if state in ("28P01", "28000") or "password authentication failed" in text:
            return KeyAccessError(
                f"{name}: the database refused the credentials in {self.uri_env} (wrong user "
                "or password)"
            )
        if state == "3D000" or ("database" in text and "does not exist" in text):
            return InputError(f"{name}: the database does not exist")
        if state == "42P01":
            if self.table:
                return InputError(f"{name}: table {self.table} does not exist")
            return InputError(f"{name}: the query names a table that does not exist")
        if state == "42501":
            return InputError(f"{name}: permission denied to read it")
        if state.startswith(("42", "22")):
            return InputError(f"{name}: the query failed (SQLSTATE {state})")
        if connecting or state.startswith("08"):
            return InputError(f"{name}: could not connect (is the server running and reachable?)")
        if not state:
            return InputError(f"{name}: the database refused it ({type(exc).__name__})")
        return InputError(f"{name}: the database refused the read (SQLSTATE {state})")


@dataclass
class PostgresTable:
    """A PostgreSQL table as an output: the sanitized rows, published in one
    transaction (``replace``: the table is dropped and made anew; ``append``: rows are
    added), so a run that fails leaves the table as it was."""

    uri_env: str
    table: str
    mode: str = "replace"

    def _source(self) -> PostgresSource:
        return PostgresSource(self.uri_env, table=self.table)

    def describe(self) -> str:
        return self._source().describe()

    def write(self, frames: Iterator[pl.DataFrame] | list[pl.DataFrame]) -> dict[str, Any]:
        """Write every frame, commit once; returns what the manifest records of it."""
        with self.staged(frames) as written:
            return written

    @contextlib.contextmanager
    def staged(
        self, frames: Iterator[pl.DataFrame] | list[pl.DataFrame]
    ) -> Iterator[dict[str, Any]]:
        """Write every frame inside a transaction, yield what the manifest records of
        it, and commit when the block ends without an error (roll back if it raises):
        the caller publishes its files inside the block, so a run whose files fail
        leaves the table as it was too."""
        from adbc_driver_manager import Error as DatabaseError

        source = self._source()
        name = source.describe()
        schema, _, table = self.table.rpartition(".")
        rows = 0
        connection = source.connect()
        try:
            with connection.cursor() as cursor:
                try:
                    first = True
                    for frame in frames:
                        mode = (
                            ("replace" if self.mode == "replace" else "create_append")
                            if first
                            else "append"
                        )
                        cursor.adbc_ingest(
                            table, frame.to_arrow(), mode=mode, db_schema_name=schema or None
                        )
                        rows += frame.height
                        first = False
                    host, port, database = source._where()
                    yield {
                        "kind": "postgres",
                        "host": host,
                        "port": port,
                        "database": database,
                        "table": self.table,
                        "mode": self.mode,
                        "rows": rows,
                    }
                    connection.commit()
                except DatabaseError as exc:
                    connection.rollback()
                    raise self._error(exc, name) from None
                except BaseException:
                    connection.rollback()
                    raise
        finally:
            connection.close()

    def _error(self, exc: BaseException, name: str) -> PrivpipeError:
        from adbc_driver_manager import ProgrammingError

        state = str(getattr(exc, "sqlstate", "") or "")
        mismatch = isinstance(exc, ProgrammingError) and not state  # the driver's own check
        if mismatch or (state.startswith("42") and state != "42501"):
            return OutputError(
                f"{name}: the table does not take these rows (SQLSTATE {state or '42703'}): "
                "its columns differ from the output's; use mode: replace, or another table"
            )
        found = self._source()._error(exc, name)
        return found if isinstance(found, KeyAccessError) else OutputError(str(found))
