"""The entities privpipe looks for by default: HIPAA Safe Harbor's identifiers
(45 CFR 164.514(b)(2)) that text can hold, and GDPR's special categories that text
reveals (Art. 9: racial or ethnic origin, political opinions, religious beliefs).

One row per published identifier: the entity names that find it, how they are found,
and the policy option that keeps it. The README's table is this list.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_ENTITIES", "IDENTIFIERS", "Identifier"]


@dataclass(frozen=True)
class Identifier:
    identifier: str
    entities: tuple[str, ...]
    how: str
    keep: str


_NER = "spaCy NER (Presidio's SpacyRecognizer) on every text with a letter"
_NARROW = "leave it out of `detection.entities`"

IDENTIFIERS: tuple[Identifier, ...] = (
    Identifier("Names", ("PERSON",), _NER, _NARROW),
    Identifier(
        "Geographic units smaller than a state: street, city, county, ZIP",
        ("STREET_ADDRESS", "LOCATION", "ZIP_CODE", "UK_POSTCODE", "CA_POSTAL_CODE"),
        "privpipe street, PO box and ZIP patterns; Presidio's UK and Canadian postcode "
        "recognizers; spaCy NER for places (GPE, LOC, FAC)",
        "`columns.X.acknowledge_pii: [LOCATION]` on a quasi-identifier column; " + _NARROW,
    ),
    Identifier(
        "Every element of a date tied to a person, except the year",
        ("DATE_TIME", "DATE_OF_BIRTH"),
        "Presidio's DateRecognizer and spaCy DATE/TIME; privpipe's date-of-birth patterns "
        "with their context words",
        "`detection.dates: keep_year` (a date is replaced by its year)",
    ),
    Identifier(
        "Ages over 89",
        ("AGE",),
        "privpipe patterns: 93 years old, 93-year-old, aged 93, age: 93, in her nineties",
        "`detection.ages: keep_under_90` (ages up to 89 are kept)",
    ),
    Identifier(
        "Telephone and fax numbers",
        ("PHONE_NUMBER",),
        "Presidio's PhoneRecognizer (`phonenumbers`, 16 regions, any international "
        "number with +); privpipe's North American pattern (extensions, 001 prefixes)",
        _NARROW,
    ),
    Identifier("E-mail addresses", ("EMAIL_ADDRESS",), "Presidio's EmailRecognizer", _NARROW),
    Identifier(
        "Social security numbers",
        ("US_SSN",),
        "Presidio's UsSsnRecognizer; privpipe's patterns for 9 digits without or with "
        "spaces next to a context word",
        _NARROW,
    ),
    Identifier(
        "Medical record numbers",
        ("MEDICAL_RECORD_NUMBER", "US_PRESCRIPTION_NUMBER"),
        "privpipe pattern next to MRN / medical record / chart; Presidio's prescription "
        "number recognizer",
        _NARROW,
    ),
    Identifier(
        "Health-plan beneficiary numbers",
        ("US_MBI", "US_HEALTH_INSURANCE_MEMBER_ID", "AU_MEDICARE", "UK_NHS"),
        "Presidio's recognizers (MBI, member id, Medicare, NHS)",
        _NARROW,
    ),
    Identifier(
        "Account numbers",
        ("ACCOUNT_NUMBER", "US_BANK_NUMBER", "CREDIT_CARD", "IBAN_CODE", "CRYPTO"),
        "Presidio's card (Luhn), IBAN (checksum), bank and crypto-wallet recognizers; "
        "privpipe pattern next to account / policy / member / card",
        _NARROW,
    ),
    Identifier(
        "Certificate and licence numbers",
        (
            "US_DRIVER_LICENSE",
            "US_PASSPORT",
            "MEDICAL_LICENSE",
            "US_NPI",
            "UK_PASSPORT",
            "UK_DRIVING_LICENCE",
        ),
        "Presidio's recognizers",
        _NARROW,
    ),
    Identifier(
        "Vehicle identifiers and serial numbers, licence plates",
        ("VEHICLE_ID", "UK_VEHICLE_REGISTRATION"),
        "privpipe VIN pattern (17 characters, no I/O/Q); Presidio's UK registration",
        _NARROW,
    ),
    Identifier(
        "Device identifiers and serial numbers",
        ("DEVICE_ID", "MAC_ADDRESS"),
        "privpipe IMEI and serial patterns next to device / serial / IMEI; Presidio's "
        "MAC address recognizer",
        _NARROW,
    ),
    Identifier("Web URLs", ("URL",), "Presidio's UrlRecognizer", _NARROW),
    Identifier("IP addresses", ("IP_ADDRESS",), "Presidio's IpRecognizer (v4 and v6)", _NARROW),
    Identifier(
        "Any other unique identifying number or code",
        (
            "PERSON_ID",
            "UUID",
            "US_ITIN",
            "US_CLAIM_NUMBER",
            "UK_NINO",
            "CA_SIN",
            "AU_TFN",
            "IN_AADHAAR",
            "IN_PAN",
        ),
        "Presidio's national-number recognizers and UUIDs; privpipe's person-id pattern",
        _NARROW,
    ),
    Identifier(
        "GDPR special categories: nationality, religious or political group",
        ("NRP",),
        "spaCy NER (NORP)",
        _NARROW,
    ),
)

DEFAULT_ENTITIES: tuple[str, ...] = tuple(e for i in IDENTIFIERS for e in i.entities)
