"""Finding PII spans in text with Presidio.

One detector for ``scan``, ``detect-text``, ``scrub`` and the gate. Each text is looked at
in its normalized view (NFKC, format characters removed, whitespace folded: see
``_normalize``) and its spans are mapped back to the original offsets. Each distinct
view is analyzed once (real columns repeat values), in batches through spaCy's
``nlp.pipe``, in a pool of processes when there are many. Every text with a letter in it
reaches the NER model, whatever its casing. Overlapping findings are resolved to one
span: the longer wins, then the higher score (Presidio returns, e.g., both a PERSON
"John Court" and the STREET_ADDRESS around it).
"""

from __future__ import annotations

import atexit
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from typing import Any

from privacy.childenv import spawn_context
from privacy.detect._engine import analyzer
from privacy.detect._entities import DEFAULT_ENTITIES
from privacy.detect._normalize import normalize
from privacy.detect._presidio import load_presidio
from privacy.detect._recognizers import policy_recognizers

__all__ = ["DEFAULT_ENTITIES", "Span", "TextScanner", "merge_spans", "replace_spans"]


@dataclass(frozen=True, order=True)
class Span:
    """A finding: Python character offsets, end exclusive."""

    start: int
    end: int
    entity_type: str
    score: float
    from_ner: bool = False  # found by the NER model rather than a pattern

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        del found["from_ner"]
        return found


# Entities another one refines: a date of birth is a date, a street address a location.
_GENERIC = frozenset({"DATE_TIME", "LOCATION"})


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans, sorted. Of overlapping ones the longer wins; at equal length a
    pattern match beats the NER model (whose flat 0.85 says little), a specific entity a
    generic one (DATE_OF_BIRTH over DATE_TIME), then the higher score."""

    def rank(s: Span) -> tuple[int, bool, bool, float]:
        return (s.end - s.start, not s.from_ner, s.entity_type not in _GENERIC, s.score)

    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start), -s.score)):
        if kept and span.start < kept[-1].end:
            if rank(span) > rank(kept[-1]):
                kept[-1] = span
            continue
        kept.append(span)
    return kept


def replace_spans(text: str, spans: Sequence[Span], replacement: Any) -> str:
    """``text`` with each span replaced by ``replacement(span, original)``."""
    out, cursor = [], 0
    for span in spans:
        out.append(text[cursor : span.start])
        out.append(replacement(span, text[span.start : span.end]))
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out)


def _is_ner(result: Any) -> bool:
    """Whether a finding is a guess from language rather than a format: the NER model's,
    or the name list's (a short structured cell such as a code can look like a name)."""
    metadata = getattr(result, "recognition_metadata", None) or {}
    name = str(metadata.get("recognizer_name", ""))
    return name.startswith("Spacy") or name == "PrivpipeNameRecognizer"


class TextScanner:
    """Finds PII spans in many texts. Parameters follow the policy's ``detection``.

    ``workers`` > 1 analyzes large batches in that many processes (spawned, so safe
    inside Prefect's threads; started on first need and reused). ``keep_year`` and
    ``keep_ages_under_90`` are the policy's ``dates: keep_year`` and
    ``ages: keep_under_90``: a bare year is then no finding, nor is an age up to 89."""

    def __init__(
        self,
        *,
        entities: Sequence[str] | None = None,
        threshold: float = 0.5,
        allow_list: Sequence[str] = (),
        recognizers: Sequence[Any] = (),
        batch_size: int = 256,
        workers: int = 1,
        keep_year: bool = False,
        keep_ages_under_90: bool = False,
        recognizer_specs: Sequence[Any] = (),
        placeholders: Iterable[str] = (),
    ) -> None:
        self.entities = list(entities or DEFAULT_ENTITIES)
        self.threshold = threshold
        self.allow_list = list(allow_list)
        self.recognizers = list(recognizers)
        self.batch_size = batch_size
        self.workers = max(1, workers)
        self.keep_year = keep_year
        self.keep_ages_under_90 = keep_ages_under_90
        self.recognizer_specs = list(recognizer_specs)  # what a worker process rebuilds
        # What scrub writes in place of a span (<PERSON>, <EMAIL>, [REDACTED]) is no
        # finding: the NER model reads "<PHONE_NUMBER>" as a name now and then.
        self.placeholders = frozenset(
            {f"<{e}>" for e in (*DEFAULT_ENTITIES, *self.entities)} | set(placeholders)
        ) | {"[REDACTED]"}

    @classmethod
    def for_policy(cls, policy: Any, *, workers: int = 1) -> TextScanner:
        """The detector of a sanitize run: the policy's ``detection``, and the placeholders
        its ``scrub`` rules write (``<EMAIL>`` for a column ``email``)."""
        columns = [f"<{name.upper()}>" for name in policy.columns]
        return cls.from_policy(policy.detection, workers=workers, placeholders=columns)

    @classmethod
    def from_policy(
        cls, detection: Any, *, workers: int = 1, placeholders: Iterable[str] = ()
    ) -> TextScanner:
        return cls(
            placeholders=placeholders,
            entities=detection.entities,
            threshold=detection.score_threshold,
            allow_list=detection.allow_list,
            recognizers=policy_recognizers(detection.recognizers),
            recognizer_specs=list(detection.recognizers),
            keep_year=detection.dates == "keep_year",
            keep_ages_under_90=detection.ages == "keep_under_90",
            workers=workers,
        )

    def restricted(self, entities: Sequence[str] | None) -> TextScanner:
        """The same scanner looking only for ``entities`` (None: unchanged)."""
        if entities is None:
            return self
        settings = self._settings() | {"entities": list(entities)}
        return TextScanner(**settings, recognizers=self.recognizers, workers=self.workers)

    def _settings(self) -> dict[str, Any]:
        return {
            "entities": self.entities,
            "threshold": self.threshold,
            "allow_list": self.allow_list,
            "batch_size": self.batch_size,
            "keep_year": self.keep_year,
            "keep_ages_under_90": self.keep_ages_under_90,
            "recognizer_specs": self.recognizer_specs,
            "placeholders": sorted(self.placeholders),
        }

    def scan(self, texts: Sequence[str | None], *, context: Sequence[str] = ()) -> list[list[Span]]:
        """Spans for each text (an empty list for None or empty), in the original text's
        offsets. ``context`` words (a column's name, say) raise the score of matches that
        expect them."""
        originals = {t for t in texts if t}
        views = {t: normalize(t) for t in originals}
        distinct = sorted({v.text for v in views.values() if v.text.strip()})
        found = dict(zip(distinct, self._analyze_many(distinct, list(context)), strict=True))
        out: dict[str, list[Span]] = {}
        for text, view in views.items():
            spans = []
            written = self._placeholders_in(text)
            for span in found.get(view.text, []):
                start, end = view.to_original(span.start, span.end)
                mapped = Span(start, end, span.entity_type, span.score, span.from_ner)
                if any(a <= start and end <= b for a, b in written):
                    continue
                if not self._kept_by_policy(mapped, text[start:end]):
                    spans.append(mapped)
            out[text] = merge_spans(spans)
        return [out[t] if t else [] for t in texts]

    def _placeholders_in(self, text: str) -> list[tuple[int, int]]:
        if "<" not in text and "[" not in text:
            return []
        return [m.span() for m in _PLACEHOLDER.finditer(text) if m.group() in self.placeholders]

    def _kept_by_policy(self, span: Span, value: str) -> bool:
        """A finding the policy lets through: a bare year under ``dates: keep_year``, an
        age up to 89 under ``ages: keep_under_90``."""
        if self.keep_year and span.entity_type in _DATE_ENTITIES:
            return _BARE_YEAR.fullmatch(value) is not None
        if self.keep_ages_under_90 and span.entity_type == "AGE":
            return age_under_90(value)
        return False

    def warm_up(self) -> None:
        """Load the model now (here and in every worker process) rather than in the first
        scan: for benchmarks, and for a long-lived process before its first batch."""
        analyzer()
        if self.workers > 1:
            pool = _pool(self.workers)
            seen: set[int] = set()
            for _ in range(20):  # each worker answers once its initializer has loaded
                seen |= set(pool.map(_pid, range(self.workers * 4)))
                if len(seen) >= self.workers:
                    break

    def _analyze_many(self, texts: list[str], context: list[str]) -> list[list[Span]]:
        if self.workers > 1 and len(texts) >= _POOL_MIN_TEXTS:
            pool = _pool(self.workers)
            size = max(64, -(-len(texts) // (self.workers * 4)))  # four chunks a worker
            chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
            settings = self._settings()
            results: list[list[Span]] = []
            try:
                for part in pool.map(_worker_scan, [(settings, c, context) for c in chunks]):
                    results.extend(part)
                return results
            except BrokenProcessPool:
                # a worker died (killed, out of memory): this scan runs here, and the
                # next large one starts a fresh pool
                _pools.pop(self.workers, None)
        return self._analyze(texts, context)

    def _analyze(self, texts: list[str], context: list[str]) -> list[list[Span]]:
        if not texts:
            return []
        engine = analyzer()
        kwargs: dict[str, Any] = {
            "entities": self.entities + [r.supported_entities[0] for r in self.recognizers],
            "score_threshold": self.threshold,
        }
        if self.recognizers:
            kwargs["ad_hoc_recognizers"] = self.recognizers
        if self.allow_list:
            kwargs["allow_list"] = self.allow_list
        if context:
            kwargs["context"] = context
        # A text with fewer digits than a recognizer's patterns need skips it (the
        # fewest, read off each regex: see PrivpipeRegistry).
        registry = engine.registry
        ner = [t for t in texts if _MAY_HOLD_A_NAME.search(t)]
        found: dict[str, list[Any]] = {}
        if ner:
            nlp_engine = engine.nlp_engine
            docs = nlp_engine.get_nlp("en").pipe(
                ner, batch_size=self.batch_size, disable=_NOT_FOR_NER
            )
            for text, doc in zip(ner, docs, strict=True):
                artifacts = _with_words_as_lemmas(nlp_engine._doc_to_nlp_artifact(doc, "en"))
                with registry.for_text(text):
                    found[text] = engine.analyze(
                        text, language="en", nlp_artifacts=artifacts, **kwargs
                    )
        for text in texts:
            if text not in found:  # no letter at all: no name or place to find
                with registry.for_text(text):
                    found[text] = engine.analyze(
                        text, language="en", nlp_artifacts=_tokens_only(engine, text), **kwargs
                    )
        return [
            merge_spans(
                Span(r.start, r.end, r.entity_type, round(float(r.score), 4), _is_ner(r))
                for r in found[text]
            )
            for text in texts
        ]


_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>|\[REDACTED\]")
_DATE_ENTITIES = frozenset({"DATE_TIME", "DATE_OF_BIRTH"})
_BARE_YEAR = re.compile(r"\W*(?:in\s+)?(?:1[89]|20)\d\d\W*", re.I)
_AGE_NUMBER = re.compile(r"\d{1,3}")
_AGE_DECADE = re.compile(r"(teens|twenties|thirties|forties|fifties|sixties|seventies|eighties)")


def age_under_90(value: str) -> bool:
    """Whether an AGE finding states an age of at most 89 (HIPAA lets those through)."""
    number = _AGE_NUMBER.search(value)
    if number is not None:
        return int(number.group()) <= 89
    return _AGE_DECADE.search(value.lower()) is not None or ("0s" in value and "90s" not in value)


def year_of(value: str) -> str | None:
    """The year a date finding names, if it names one (``dates: keep_year``)."""
    found = re.search(r"(?<!\d)(?:1[89]|20)\d\d(?!\d)", value)
    return found.group() if found else None


# NER runs on every text with a letter in it: lower-case and all-caps names included.
# Texts of digits and punctuation alone cannot hold a name or a place and get pattern
# recognizers only (a third of the time of a text through the model).
_MAY_HOLD_A_NAME = re.compile(r"[^\W\d_]")
_POOL_MIN_TEXTS = 2000  # below this, starting worker processes costs more than it saves
_pools: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    """One pool of spawned worker processes per size, reused by every scanner of this
    process (spawn, not fork: Prefect runs tasks in threads, and forking a threaded
    process can deadlock)."""
    pool = _pools.get(workers)
    if pool is None:
        # they start with the allow-listed environment: no credential, no passphrase
        pool = ProcessPoolExecutor(workers, mp_context=spawn_context(), initializer=_load_engine)
        _pools[workers] = pool
    return pool


@atexit.register
def _close_pools() -> None:
    for pool in _pools.values():
        pool.shutdown(cancel_futures=True)
    _pools.clear()


def default_workers() -> int:
    """Worker processes for large scans: the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _load_engine() -> None:
    """A worker's start: its own analyzer, built before it takes any work."""
    analyzer()


def _pid(_: int) -> int:
    return os.getpid()


def _worker_scan(job: tuple[dict[str, Any], list[str], list[str]]) -> list[list[Span]]:
    """One chunk in a worker process (its own analyzer, built once per process)."""
    settings, texts, context = job
    scanner = TextScanner(**settings, recognizers=policy_recognizers(settings["recognizer_specs"]))
    return scanner._analyze(texts, context)


# NER needs only tok2vec and ner; the tagger, attribute ruler and lemmatizer only feed
# lemmas to Presidio's context words, for which lower-cased words do (see _tokens_only).
_NOT_FOR_NER = ["tagger", "attribute_ruler", "lemmatizer", "parser"]


def _with_words_as_lemmas(artifacts: Any) -> Any:
    """The same artifacts, lower-cased words standing in for the lemmas (and keywords,
    which NlpArtifacts derives from them when built)."""
    load_presidio()
    from presidio_analyzer.nlp_engine import NlpArtifacts

    doc = artifacts.tokens
    return NlpArtifacts(
        entities=artifacts.entities,
        tokens=doc,
        tokens_indices=artifacts.tokens_indices,
        lemmas=[token.lower_ for token in doc],
        nlp_engine=artifacts.nlp_engine,
        language="en",
        scores=artifacts.scores,
    )


def _tokens_only(engine: Any, text: str) -> Any:
    """NLP artifacts from the tokenizer alone: no entities, lower-cased words as lemmas
    (enough for the context words of pattern recognizers)."""
    load_presidio()
    from presidio_analyzer.nlp_engine import NlpArtifacts

    nlp_engine = engine.nlp_engine
    doc = nlp_engine.get_nlp("en").make_doc(text)
    return NlpArtifacts(
        entities=[],
        tokens=doc,
        tokens_indices=[token.idx for token in doc],
        lemmas=[token.lower_ for token in doc],
        nlp_engine=nlp_engine,
        language="en",
        scores=[],
    )
