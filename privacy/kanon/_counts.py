"""Record counts per combination of quasi-identifier values: the only input the search needs.

The k-anonymity search never looks at rows, only at how many records share each
combination of quasi-identifier values (and, for l-diversity and t-closeness, each
sensitive value). Those counts are computed per partition and merged by summing, so a
data set larger than memory, or spread over Dask workers, is counted piece by piece and
the search runs on the merged table, whose size is the number of distinct combinations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

__all__ = ["COUNT", "FIRST_ROW", "as_text", "count_records", "merge_counts"]

COUNT = "__records"
FIRST_ROW = "__first_row"  # the first input row with the combination (for error messages)


def as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Values as the text a hierarchy names them by: integers as digits, floats without
    a trailing ``.0``, dates in ISO 8601, datetimes by their date."""
    if dtype.is_float():
        whole = column == column.round(0)
        return (
            pl.when(whole)
            .then(column.cast(pl.Int64).cast(pl.String))
            .otherwise(column.cast(pl.String))
        )
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        return column.dt.date().cast(pl.String)
    return column.cast(pl.String)


def count_records(
    frame: pl.DataFrame | pl.LazyFrame,
    quasi_identifiers: Sequence[str],
    sensitive: str | None = None,
    *,
    row_offset: int = 0,
) -> pl.DataFrame:
    """Records per distinct (quasi-identifiers…, sensitive) combination, as text, with the
    first row (0-based, plus ``row_offset``) at which each combination occurs."""
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    keys = [*quasi_identifiers, *([sensitive] if sensitive else [])]
    return (
        lazy.with_row_index(FIRST_ROW, offset=row_offset)
        .select(
            *(as_text(pl.col(c), schema[c]).alias(c) for c in keys),
            pl.col(FIRST_ROW),
        )
        .group_by(keys)
        .agg(pl.len().cast(pl.Int64).alias(COUNT), pl.col(FIRST_ROW).min())
        .sort(FIRST_ROW)
        .collect()
    )


def merge_counts(parts: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Per-partition counts summed into the counts of the whole data set."""
    frames = list(parts)
    keys = [c for c in frames[0].columns if c not in (COUNT, FIRST_ROW)]
    return (
        pl.concat(frames)
        .group_by(keys)
        .agg(pl.col(COUNT).sum(), pl.col(FIRST_ROW).min())
        .sort(FIRST_ROW)
    )
