"""Evasions of the detector, end to end: each value is planted in a notes cell, the demo
policy's ``sanitize`` runs (Prefect, once for all of them), and the value must be gone
from the published data. A run whose scrub misses one fails at the gate
(``tests/flows/test_sanitize_flow.py::test_gate_fails_when_a_planted_ssn_survives``, in ASCII and
full-width digits).

None of these values is in the row's own identifier columns, so the record-linkage pass
of ``scrub`` cannot explain a pass: Presidio, on the normalized view of the text, must
find each one.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main

pytestmark = pytest.mark.prefect


def _FW(text: str) -> str:
    """``text`` in full-width forms (U+FF01 to U+FF5E), as East Asian input methods type."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# name: (note text, the planted value)
EVASIONS = {
    "ssn-full-width-digits": (f"Her SSN is {_FW('536-22-1874')}, on file.", _FW("536-22-1874")),
    "ssn-without-separators": ("SSN 536221874 confirmed by phone.", "536221874"),
    "ssn-with-spaces": ("social security number 536 22 1874 on the form", "536 22 1874"),
    "ssn-zero-width-joined": ("SSN 536\u200b-22-\u200b1874 noted.", "536\u200b-22-\u200b1874"),
    "card-with-spaces": ("Paid with card 4111 1111 1111 1111 today.", "4111 1111 1111 1111"),
    "card-with-dashes": ("Card 5500-0000-0000-0004 was declined.", "5500-0000-0000-0004"),
    "card-double-spaced": ("card 4012  8888  8888  1881 on file", "4012  8888  8888  1881"),
    "iban-with-spaces": (
        "Refund to IBAN GB82 WEST 1234 5698 7654 32 please.",
        "GB82 WEST 1234 5698 7654 32",
    ),
    "email-upper-case": (
        "WRITE TO QWERTY.UIOPSON@EXAMPLE-MAIL.COM ASAP",
        "QWERTY.UIOPSON@EXAMPLE-MAIL.COM",
    ),
    "email-full-width": (f"mail {_FW('qwerty@example.com')} now", _FW("qwerty@example.com")),
    "phone-uk-international": ("Ring him on +44 20 7946 0958 tomorrow.", "+44 20 7946 0958"),
    "phone-uk-national": ("Office line 020 7946 0958 after nine.", "020 7946 0958"),
    "phone-germany": ("Erreichbar unter +49 30 901820 tagsüber.", "+49 30 901820"),
    "phone-france-pairs": ("Numéro +33 1 42 68 53 00 au bureau.", "+33 1 42 68 53 00"),
    "phone-india": ("WhatsApp +91 98765 43210 anytime.", "+91 98765 43210"),
    "phone-dotted-international": ("Tel +1.415.555.0132 (cell)", "+1.415.555.0132"),
    "phone-bidi-control": ("Call 415\u202e-555-0132 soon.", "415\u202e-555-0132"),
}
_MARK = 5000  # hours_per_week of the planted rows (kept as is): finds them in the output


def _visible(value: str) -> str:
    """The value as a reader sees it: NFKC, format characters gone."""
    text = unicodedata.normalize("NFKC", value)
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _planted(people: pl.DataFrame) -> pl.DataFrame:
    frame = people.clone()
    for i, (note, _) in enumerate(EVASIONS.values()):
        row = 20 + 13 * i
        frame[row, "notes"] = note
        frame[row, "hours_per_week"] = _MARK + i
    return frame


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, people, demo_policy_path: Path, session_keyring
) -> pl.DataFrame:
    from privacy.crypto import unseal_bytes

    root = tmp_path_factory.mktemp("evasion")
    source = root / "in.parquet"
    _planted(people).write_parquet(source)
    out = root / "out"
    code = main(["sanitize", str(source), "--policy", str(demo_policy_path), "--out", str(out)])
    assert code == 0
    plain = unseal_bytes(out / "data.parquet.sealed", session_keyring)
    return pl.read_parquet(io.BytesIO(plain))


@pytest.mark.parametrize("case", list(EVASIONS))
def test_evasion_is_scrubbed_from_the_published_data(published: pl.DataFrame, case: str) -> None:
    _, value = EVASIONS[case]
    mark = _MARK + list(EVASIONS).index(case)
    rows = published.filter(pl.col("hours_per_week") == mark)
    assert rows.height == 1, "the planted row was suppressed: plant it in another row"
    note = rows.get_column("notes")[0]
    assert "<" in note, note  # a placeholder stands where the value was
    for cell in published.get_column("notes").drop_nulls().to_list():
        assert value not in cell and _visible(value) not in _visible(cell), case
