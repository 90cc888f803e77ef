"""Finding PII spans in text with Presidio.

Each distinct text is analyzed once (real columns repeat values), in batches through
Presidio's BatchAnalyzerEngine (spaCy's ``nlp.pipe``). Overlapping findings are
resolved to one span: the longer wins, then the higher score (Presidio returns, e.g.,
both a PERSON "John Court" and the STREET_ADDRESS around it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DEFAULT_ENTITIES", "Span", "TextScanner", "merge_spans", "replace_spans"]

# Entities that identify a person, alone or with others. DATE_TIME, NRP, URL and
# ORGANIZATION are not on the list: on their own they are not personal data, and the
# NER model tags them loosely.
DEFAULT_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "STREET_ADDRESS",
    "LOCATION",
    "ZIP_CODE",
    "DATE_OF_BIRTH",
    "PERSON_ID",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
    "US_BANK_NUMBER",
    "US_ITIN",
    "MEDICAL_LICENSE",
)


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


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans, sorted. Of overlapping ones the longer wins; at equal length a
    pattern match beats the NER model (whose flat 0.85 says little), then the higher score."""

    def rank(s: Span) -> tuple[int, bool, float]:
        return (s.end - s.start, not s.from_ner, s.score)

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
    metadata = getattr(result, "recognition_metadata", None) or {}
    return str(metadata.get("recognizer_name", "")).startswith("Spacy")


class TextScanner:
    """Finds PII spans in many texts. Parameters follow the policy's ``detection``."""

    def __init__(
        self,
        *,
        entities: Sequence[str] | None = None,
        threshold: float = 0.5,
        allow_list: Sequence[str] = (),
        recognizers: Sequence[Any] = (),
        batch_size: int = 64,
    ) -> None:
        self.entities = list(entities or DEFAULT_ENTITIES)
        self.threshold = threshold
        self.allow_list = list(allow_list)
        self.recognizers = list(recognizers)
        self.batch_size = batch_size

    @classmethod
    def from_policy(cls, detection: Any) -> TextScanner:
        from privacy.detect._recognizers import policy_recognizers

        return cls(
            entities=detection.entities,
            threshold=detection.score_threshold,
            allow_list=detection.allow_list,
            recognizers=policy_recognizers(detection.recognizers),
        )

    def restricted(self, entities: Sequence[str] | None) -> TextScanner:
        """The same scanner looking only for ``entities`` (None: unchanged)."""
        if entities is None:
            return self
        return TextScanner(
            entities=entities,
            threshold=self.threshold,
            allow_list=self.allow_list,
            recognizers=self.recognizers,
            batch_size=self.batch_size,
        )

    def scan(self, texts: Sequence[str | None], *, context: Sequence[str] = ()) -> list[list[Span]]:
        """Spans for each text (an empty list for None or empty). ``context`` words (a
        column's name, say) raise the score of matches that expect them."""
        distinct = sorted({t for t in texts if t})
        found = dict(zip(distinct, self._analyze(distinct, list(context)), strict=True))
        return [found.get(t, []) if t else [] for t in texts]

    def _analyze(self, texts: list[str], context: list[str]) -> list[list[Span]]:
        if not texts:
            return []
        from privacy.detect._engine import analyzer

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
        ner = [t for t in texts if _NAME_CANDIDATE.search(t)]
        found: dict[str, list[Any]] = {}
        if ner:
            nlp_engine = engine.nlp_engine
            docs = nlp_engine.get_nlp("en").pipe(
                ner, batch_size=self.batch_size, disable=_NOT_FOR_NER
            )
            for text, doc in zip(ner, docs, strict=True):
                artifacts = _with_words_as_lemmas(nlp_engine._doc_to_nlp_artifact(doc, "en"))
                found[text] = engine.analyze(text, language="en", nlp_artifacts=artifacts, **kwargs)
        for text in texts:
            if text not in found:  # no capitalized word mid-sentence: no name to find
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


# A capital letter mid-sentence, or two capitalized words in a row: the only texts in
# which the NER model can find a PERSON or LOCATION. Other texts skip it (its tagger,
# lemmatizer and NER are three quarters of the time) and get pattern recognizers only.
_NAME_CANDIDATE = re.compile(r"[^.!?\s]\s+[A-Z][a-zA-Z]|\b[A-Z][a-z]+\s+[A-Z][a-z]")


# NER needs only tok2vec and ner; the tagger, attribute ruler and lemmatizer only feed
# lemmas to Presidio's context words, for which lower-cased words do (see _tokens_only).
_NOT_FOR_NER = ["tagger", "attribute_ruler", "lemmatizer", "parser"]


def _with_words_as_lemmas(artifacts: Any) -> Any:
    """The same artifacts, lower-cased words standing in for the lemmas (and keywords,
    which NlpArtifacts derives from them when built)."""
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
