"""The default entity set: the published identifier list, every one of them found, and
never fewer recognizers than Presidio ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from privacy.detect import DEFAULT_ENTITIES, IDENTIFIERS, TextScanner
from tests.detect._util import findings

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    from privacy.detect import analyzer

    return analyzer()


def test_presidios_whole_registry_is_loaded(engine) -> None:  # type: ignore[no-untyped-def]
    """Never below Presidio: every recognizer of Presidio's default English registry is in
    privpipe's (PhoneRecognizer as privpipe's subclass of it)."""
    from presidio_analyzer import RecognizerRegistry
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    theirs = RecognizerRegistry(supported_languages=["en"])
    theirs.load_predefined_recognizers(languages=["en"])
    ours = {type(r).__mro__[0].__name__: r for r in engine.registry.recognizers}
    names = {r.name for r in engine.registry.recognizers}
    for recognizer in theirs.recognizers:
        assert recognizer.name in names, recognizer.name
    (phone,) = [r for r in engine.registry.recognizers if r.name == "PhoneRecognizer"]
    assert isinstance(phone, PhoneRecognizer)
    assert set(PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS) <= set(phone.supported_regions)
    assert ours  # the registry is not empty


def test_every_default_entity_has_a_recognizer(engine) -> None:  # type: ignore[no-untyped-def]
    supported = set(engine.get_supported_entities())
    assert set(DEFAULT_ENTITIES) <= supported, set(DEFAULT_ENTITIES) - supported


def test_the_default_is_everything_the_registry_finds(engine) -> None:  # type: ignore[no-untyped-def]
    """A recognizer added to the registry must be placed in the identifier list (or the
    default would silently leave it out). Organizations are not personal data."""
    missing = set(engine.get_supported_entities()) - set(DEFAULT_ENTITIES) - {"ORGANIZATION"}
    assert not missing


@pytest.mark.parametrize("identifier", IDENTIFIERS, ids=lambda i: i.entities[0])
def test_the_readme_table_lists_each_identifier(identifier) -> None:  # type: ignore[no-untyped-def]
    table = README.read_text(encoding="utf-8")
    start = f"| {identifier.identifier} |"
    row = next((line for line in table.splitlines() if line.startswith(start)), "")
    assert row, f"no README row for {identifier.identifier!r}"
    for entity in identifier.entities:
        assert f"`{entity}`" in row, entity


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("Seen at https://clinic.example.org/p/77 today", "URL", "https://clinic.example.org/p/77"),
        ("Login from 203.0.113.77 failed", "IP_ADDRESS", "203.0.113.77"),
        ("The 93-year-old was admitted.", "AGE", "93-year-old"),
        ("Patient aged 94 arrived.", "AGE", "94"),
        ("She is a devout Catholic.", "NRP", "Catholic"),
        ("MRN 00481234 on the wristband", "MEDICAL_RECORD_NUMBER", "00481234"),
        ("VIN 1HGCM82633A004352 on the title", "VEHICLE_ID", "1HGCM82633A004352"),
        ("SSN 536221874 confirmed", "US_SSN", "536221874"),
        ("Ring +44 20 7946 0958 tomorrow", "PHONE_NUMBER", "+44 20 7946 0958"),
        ("Admitted on March 3, 2021 at noon", "DATE_TIME", "March 3, 2021"),
    ],
)
def test_safe_harbor_identifiers_in_text(
    scanner: TextScanner, text: str, entity: str, value: str
) -> None:
    assert (entity, value) in findings(scanner, text)


def test_a_policy_narrows_the_set() -> None:
    narrow = TextScanner(entities=["EMAIL_ADDRESS"])
    text = "Ann Lee (ann.lee@example.org) called 415-555-0132 on Friday."
    assert findings(narrow, text) == [("EMAIL_ADDRESS", "ann.lee@example.org")]


def test_dates_keep_year_and_ages_keep_under_90() -> None:
    keeping = TextScanner(keep_year=True, keep_ages_under_90=True)
    found = findings(keeping, "Admitted in 2021 at 45 years old; her mother, 93 years old, too.")
    assert ("AGE", "93 years old") in found
    assert not [f for f in found if f[1] in ("2021", "45 years old")]
    strict = TextScanner()
    found = findings(strict, "Admitted in 2021 at 45 years old.")
    assert ("AGE", "45 years old") in found


def test_scrub_keeps_the_year_of_a_date() -> None:
    import polars as pl

    from privacy.policy import Policy
    from privacy.transform import apply_policy

    policy = Policy.model_validate(
        {
            "version": 1,
            "name": "t",
            "detection": {"dates": "keep_year"},
            "columns": {"notes": {"rule": "scrub"}},
        }
    )
    frame = pl.DataFrame({"notes": ["Admitted on March 3, 2021 with pain."]})
    scanner = TextScanner.for_policy(policy)
    out, _ = apply_policy(frame, policy, None, scanner)
    assert out.get_column("notes")[0] == "Admitted on 2021 with pain."


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("lol i told ryan about it", "ryan"),  # lower case, as people write on the web
        ("THANKS TO EMMA FOR THE HELP", "EMMA"),
        ("We met with Kenny after the show.", "Kenny"),  # a given name the model misses
    ],
)
def test_names_the_small_model_misses(scanner: TextScanner, text: str, name: str) -> None:
    assert ("PERSON", name) in findings(scanner, text)


@pytest.mark.parametrize(
    "text",
    [
        "i will mark the grant as done",  # names that are common words stay words
        "We drove to Portland last week.",  # a place the model knows is no person
    ],
)
def test_common_words_and_places_are_not_names(scanner: TextScanner, text: str) -> None:
    assert not [f for f in findings(scanner, text) if f[0] == "PERSON"], findings(scanner, text)


def test_cards_of_any_issuer_are_luhn_checked(scanner: TextScanner) -> None:
    assert ("CREDIT_CARD", "060442304113") in findings(scanner, "card 060442304113 declined")
    assert not [f for f in findings(scanner, "card 060442304114 declined") if f[0] == "CREDIT_CARD"]
