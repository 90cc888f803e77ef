"""A draft policy from a column scan: a starting point a person then reviews.

Each column gets a rule, a role and, in its ``description``, the reason for them.
Direct identifiers are removed or tokenized as the scan finds them. Quasi-identifiers,
the attributes an attacker can link to outside records (ZIP code, date of birth and sex
together single out most Americans: Sweeney, 2000), are proposed from the column's name,
type and scan: demographics, dates tied to a person, geography and nationality. They are
kept for the k-anonymity search to generalize, each with a hierarchy proposal: ZIP
prefixes, dates to month and year, age bands, and ``value -> *`` (a quasi-identifier
without a hierarchy) for categories. Given the frame, the draft also counts distinct
values and reads the range of ages; it never writes a value from the data.
"""

from __future__ import annotations

import math
import re
import textwrap
from typing import Any

import polars as pl

from privacy.detect._columns import ColumnFinding

__all__ = ["draft_yaml", "suggest_policy"]

_ACT_ON = 0.3  # share of sampled cells above which a finding shapes the rule
_BY_ENTITY: dict[str, tuple[str, str]] = {  # direct identifiers: rule, what it does
    "PERSON": ("drop", "dropped"),
    "EMAIL_ADDRESS": ("pseudonymize", "a keyed token, so joins survive"),
    "PHONE_NUMBER": ("redact", "redacted"),
    "US_SSN": ("drop", "dropped"),
    "STREET_ADDRESS": ("drop", "dropped"),
    "PERSON_ID": ("pseudonymize", "a keyed token, so joins survive"),
    "CREDIT_CARD": ("drop", "dropped"),
    "IBAN_CODE": ("drop", "dropped"),
    "IP_ADDRESS": ("redact", "redacted"),
}

# Quasi-identifier categories by the words of a column's name, first match wins
# (``marital_state`` is a marital status, not a place).
_NAMED: tuple[tuple[str, frozenset[str]], ...] = (
    ("nationality", frozenset({"nationality", "citizenship", "citizen", "native", "birthplace"})),
    ("zip", frozenset({"zip", "zipcode", "postal", "postcode", "plz"})),
    ("sex", frozenset({"sex", "gender"})),
    ("age", frozenset({"age"})),
    ("race", frozenset({"race", "ethnicity", "ethnic", "ancestry"})),
    ("marital", frozenset({"marital", "marriage"})),
    ("religion", frozenset({"religion", "religious", "faith", "denomination"})),
    ("education", frozenset({"education", "schooling"})),
    (
        "geography",
        frozenset(
            {
                "city",
                "town",
                "village",
                "county",
                "state",
                "province",
                "prefecture",
                "region",
                "district",
                "municipality",
                "borough",
                "suburb",
                "neighborhood",
                "neighbourhood",
                "locality",
                "location",
                "residence",
                "country",
            }
        ),
    ),
    (
        "date",
        frozenset(
            {"birth", "birthday", "born", "dob", "yob", "death", "died", "deceased", "dod"}
            | {"admission", "admitted", "admit", "discharge", "discharged", "visit"}
        ),
    ),
)
# With "birth": a place of birth (``birth_country``), not a date.
_BIRTH_PLACE = frozenset({"country", "place", "nation", "city", "town", "county", "state"})
# Quasi-identifier categories a scan finding alone suggests.
_BY_QI_ENTITY = {
    "ZIP_CODE": "zip",
    "UK_POSTCODE": "zip",
    "CA_POSTAL_CODE": "zip",
    "LOCATION": "geography",
    "NRP": "group",
    "DATE_OF_BIRTH": "date",
    "DATE_TIME": "date",
}
# What a quasi-identifier may hold without failing the detect stage: the entities its
# category is made of, and such entities the scan found. The k-anonymity search
# generalizes them and the gate recounts the classes. Any other entity (a name in a
# city column) stays unacknowledged, so the run fails closed until someone looks.
_EXPECTED = {
    "zip": ("ZIP_CODE",),
    "geography": ("LOCATION",),
    "nationality": ("LOCATION", "NRP"),
    "race": ("NRP",),
    "religion": ("NRP",),
    "group": ("NRP",),
}
_ACKNOWLEDGED = frozenset({"ZIP_CODE", "UK_POSTCODE", "CA_POSTAL_CODE", "LOCATION", "NRP"})
_DATE_ENTITIES = ("DATE_OF_BIRTH", "DATE_TIME")  # acknowledged with a dates hierarchy only

_WHY = {
    "sex": "demographic: with ZIP code and date of birth, sex singles out most people "
    "(Sweeney 2000)",
    "age": "demographic: age is a coarse date of birth, and as linkable",
    "race": "demographic: race or ethnicity is census data, and a GDPR special category",
    "marital": "demographic: marital status is public in census and registry data",
    "religion": "demographic: religion is linkable, and a GDPR special category",
    "education": "demographic: education is census data, and on public profiles",
    "nationality": "nationality or place of birth: the rare ones single people out",
    "zip": "geography: a ZIP or postal code narrows a person to a few thousand neighbours",
    "geography": "geography: a place of residence is linkable to voter and census records",
    "group": "the scan finds nationalities, religious or political groups: linkable, "
    "and a GDPR special category",
    "date": "a date tied to a person: HIPAA Safe Harbor counts every element but the year "
    "as an identifier",
}
_AGE_WIDTHS = [5, 10, 20]  # each a multiple of the one before, so the bands nest
_AGE_TOP = 90  # HIPAA Safe Harbor: ages over 89 are aggregated into one group
_SMALL = 10  # distinct values up to which value -> * is a fair hierarchy


def suggest_policy(
    name: str, findings: list[ColumnFinding], *, frame: pl.DataFrame | None = None
) -> dict[str, Any]:
    """A policy document (validates as is) with one reviewed-by-nobody rule per column,
    the reason for it in the column's ``description``.

    ``frame`` (the scanned rows, optional) lets the draft count each quasi-identifier's
    distinct values and set age bands from the observed range; without it the draft
    falls back on names, types and the scan alone."""
    columns: dict[str, Any] = {}
    for f in findings:
        spec: dict[str, Any] = {"type": f.inferred_type}
        acted = f.entity is not None and f.share >= _ACT_ON
        category = None if f.kind == "free_text" else _category(f, acted)
        if f.kind == "free_text" and f.entities:
            spec |= {"rule": "scrub", "operator": "placeholder"}
            found = ", ".join(f"{e} {s:.0%}" for e, s in list(f.entities.items())[:4])
            why = f"free text holding personal data ({found}): the spans are replaced"
        elif acted and f.entity in _BY_ENTITY:
            rule, does = _BY_ENTITY[str(f.entity)]
            spec |= {"rule": rule, "role": "identifier"}
            why = f"direct identifier: {does}"
        elif category is not None:
            why = _quasi_identifier(spec, f, category, frame)
        elif f.kind == "empty":
            spec["rule"] = "keep"
            why = "published as is: empty in the sample"
        else:
            spec["rule"] = "keep"
            why = (
                f"published as is: no personal data in {f.sampled} sampled cells, and its name "
                "and type suggest no quasi-identifier; make it one if outside records hold it"
            )
        if acted and f.kind != "free_text":
            why += (
                f"; scan: {f.entity} in {f.share:.0%} of {f.sampled} sampled cells "
                f"(confidence {f.confidence:.2f})"
            )
        spec["description"] = why
        columns[f.column] = spec
    return {
        "version": 1,
        "name": name,
        "description": "DRAFT from `privpipe scan`: review every rule before use.",
        "columns": columns,
    }


def draft_yaml(draft: dict[str, Any]) -> str:
    """``draft`` as YAML with each column's reason as a ``#`` comment above it (in
    place of its ``description``), for a person to read and edit."""
    import yaml

    head = {k: v for k, v in draft.items() if k != "columns"}
    parts = [yaml.safe_dump(head, sort_keys=False), "columns:\n"]
    for column, spec in draft["columns"].items():
        body = {k: v for k, v in spec.items() if k != "description"}
        why = spec.get("description")
        if why:
            parts.append(textwrap.indent(textwrap.fill(why, 90), "  # ") + "\n")
        parts.append(textwrap.indent(yaml.safe_dump({column: body}, sort_keys=False), "  "))
    return "".join(parts)


def _words(column: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", column)
    return {w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w}


def _category(f: ColumnFinding, acted: bool) -> str | None:
    """The kind of quasi-identifier a column is, if it is one."""
    if f.inferred_type in ("date", "datetime"):
        return "date"
    words = _words(f.column)
    if "birth" in words and words & _BIRTH_PLACE:
        return "nationality"
    for category, names in _NAMED:
        if words & names:
            return category
    if acted and f.entity in _BY_QI_ENTITY:
        return _BY_QI_ENTITY[str(f.entity)]
    return None


def _quasi_identifier(
    spec: dict[str, Any], f: ColumnFinding, category: str, frame: pl.DataFrame | None
) -> str:
    """Fill ``spec`` as a quasi-identifier of ``category``; the reason, for its description."""
    spec |= {"rule": "keep", "role": "quasi_identifier"}
    numeric = f.inferred_type in ("integer", "float")
    found = [e for e in (f.entity, *f.entities) if e is not None]
    acknowledge = [*_EXPECTED.get(category, ()), *(e for e in found if e in _ACKNOWLEDGED)]
    if category == "zip":
        spec |= {"type": "string", "hierarchy": {"kind": "prefix"}}
        how = "12345 -> 1234* -> ... -> * (typed string, so leading zeros stay)"
    elif category == "date" and f.inferred_type in ("date", "datetime"):
        spec["hierarchy"] = {"kind": "dates"}
        how = "day -> month -> year -> *"
        dated = {*found, *([f.hint] if f.hint else [])}
        acknowledge += [e for e in _DATE_ENTITIES if e in dated]
    elif category == "date" and numeric:
        spec["hierarchy"] = {"kind": "intervals", "widths": list(_AGE_WIDTHS)}
        how = "years in bands of 5, 10 and 20"
    elif category == "date":
        how = (
            "value -> *; declare `type: date` (and `format:`) to generalize it by month and "
            "year instead"
        )
    elif category == "age" and numeric:
        spec["hierarchy"] = _age_bands(_range(frame, f.column))
        how = "bands of 5, 10 and 20 years, the tails coded together"
        if frame is not None:
            how += " (bounds from the observed range)"
    else:
        how = _categorical(_distinct(frame, f.column))
    if acknowledge:
        spec["acknowledge_pii"] = list(dict.fromkeys(acknowledge))
    return f"quasi-identifier, {_WHY[category]}; hierarchy: {how}"


def _categorical(distinct: int | None) -> str:
    if distinct is None:
        return "value -> * (no hierarchy)"
    if distinct <= _SMALL:
        return f"value -> * ({distinct} distinct values)"
    return (
        f"value -> * ({distinct} distinct values: a file hierarchy that groups them "
        "would keep more)"
    )


def _age_bands(observed: tuple[float, float] | None) -> dict[str, Any]:
    """Nested 5/10/20-year bands; the sparse tails coded together: below the observed
    minimum rounded up to ten, and from the maximum rounded down to ten (90 at most)."""
    hierarchy: dict[str, Any] = {"kind": "intervals", "widths": list(_AGE_WIDTHS)}
    if observed is None:
        hierarchy["top"] = _AGE_TOP
        return hierarchy
    low, high = observed
    bottom = math.ceil(low / 10) * 10
    top = min(math.floor(high / 10) * 10, _AGE_TOP)
    code_bottom = low > 0 and bottom < high  # else nothing, or everything, is coded
    code_top = top > low
    if code_bottom and code_top and bottom >= top:
        code_bottom = code_top = False
    if code_bottom:
        hierarchy["bottom"] = bottom
    if code_top:
        hierarchy["top"] = top
    return hierarchy


def _values(frame: pl.DataFrame | None, column: str) -> pl.Series | None:
    if frame is None or column not in frame.columns:
        return None
    series = frame.get_column(column).drop_nulls()
    if series.dtype == pl.String:
        series = series.str.strip_chars().filter(series.str.strip_chars() != "")
    return series


def _distinct(frame: pl.DataFrame | None, column: str) -> int | None:
    series = _values(frame, column)
    return None if series is None or series.is_empty() else series.n_unique()


def _range(frame: pl.DataFrame | None, column: str) -> tuple[float, float] | None:
    series = _values(frame, column)
    if series is None:
        return None
    numbers = series.cast(pl.Float64, strict=False).drop_nulls().drop_nans()
    if numbers.is_empty():
        return None
    low, high = numbers.min(), numbers.max()
    assert isinstance(low, float) and isinstance(high, float)
    return low, high
