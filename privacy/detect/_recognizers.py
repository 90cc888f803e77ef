"""The recognizer registry: Presidio's predefined English recognizers, the ones
``recognizers.yaml`` enables or extends, and privpipe's own pattern recognizers (and a
policy's), each built as a Presidio recognizer."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from privacy.policy import RecognizerSpec

__all__ = [
    "RECOGNIZERS_FILE",
    "build_registry",
    "builtin_recognizers",
    "policy_recognizers",
    "recognizer_specs",
]

RECOGNIZERS_FILE = Path(__file__).with_name("recognizers.yaml")


@cache
def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RECOGNIZERS_FILE.read_text(encoding="utf-8"))
    return loaded


def recognizer_specs() -> tuple[dict[str, Any], ...]:
    """privpipe's own recognizer declarations, as read from recognizers.yaml."""
    return tuple(_document()["recognizers"])


def presidio_settings() -> dict[str, Any]:
    """What recognizers.yaml says about Presidio's predefined recognizers."""
    settings: dict[str, Any] = _document().get("presidio") or {}
    return settings


def _build(spec: dict[str, Any]) -> Any:
    from presidio_analyzer import Pattern, PatternRecognizer

    flags = re.M | re.S if spec.get("case_sensitive") else re.I | re.M | re.S
    return PatternRecognizer(
        supported_entity=spec["entity"],
        name=spec["name"],
        patterns=[
            Pattern(p["name"], p["regex"], float(p["score"])) for p in spec.get("patterns", [])
        ],
        context=list(spec.get("context", [])) or None,  # type: ignore[arg-type]
        deny_list=list(spec.get("deny_list", [])) or None,  # type: ignore[arg-type]
        global_regex_flags=flags,
    )


def builtin_recognizers() -> list[Any]:
    """privpipe's own pattern recognizers (added to Presidio's, never replacing them)."""
    return [_build(spec) for spec in recognizer_specs()]


def build_registry(nlp_engine: Any) -> Any:
    """Presidio's whole predefined English registry (with its NER recognizer on
    ``nlp_engine``), plus what recognizers.yaml enables, extends and adds."""
    from presidio_analyzer import RecognizerRegistry, predefined_recognizers

    settings = presidio_settings()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    for entry in settings.get("remove") or []:
        registry.remove_recognizer(entry["name"])
    for name, extension in (settings.get("extend") or {}).items():
        module, _, cls_name = extension["class"].rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        options = {k: v for k, v in extension.items() if k != "class"}
        registry.remove_recognizer(name)
        registry.add_recognizer(cls(**options))
    for entry in settings.get("enable") or []:
        registry.add_recognizer(getattr(predefined_recognizers, entry["name"])())
    for recognizer in builtin_recognizers():
        registry.add_recognizer(recognizer)
    return registry


def policy_recognizers(specs: Iterable[RecognizerSpec]) -> list[Any]:
    """A policy's extra recognizers (detection.recognizers)."""
    out = []
    for spec in specs:
        patterns = [
            {"name": f"{spec.name}-{i}", "regex": p.regex, "score": p.score}
            for i, p in enumerate(spec.patterns)
        ]
        out.append(
            _build(
                {
                    "name": spec.name,
                    "entity": spec.entity,
                    "patterns": patterns,
                    "context": spec.context,
                    "deny_list": spec.deny_list,
                }
            )
        )
    return out


_FORMATTED = re.compile(r"^\+|[()]|\d[-. /]\d")
# Dates and times that some region's numbering plan happens to accept (2024-03-02).
_DATE_LIKE = re.compile(
    r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./]\d\d?|\d\d?[-./]\d\d?[-./](?:19|20)?\d\d"
)


@cache
def _phone_recognizer_class() -> type:
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class PrivpipePhoneRecognizer(PhoneRecognizer):
        """Presidio's PhoneRecognizer (the ``phonenumbers`` matcher, a match must be a
        valid number of its region) over more regions; numbers written with a leading
        +, brackets or separators score ``formatted_score``. Texts with fewer than seven
        digits cannot hold a phone number and skip the matcher."""

        def __init__(self, *, regions: list[str], formatted_score: float) -> None:
            super().__init__(supported_regions=tuple(regions), name="PhoneRecognizer")
            self.formatted_score = formatted_score

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> Any:
            if sum(c.isdigit() for c in text) < 7:
                return []
            results = []
            for result in super().analyze(text, entities, nlp_artifacts):
                written = text[result.start : result.end]
                if _DATE_LIKE.fullmatch(written):
                    continue
                if _FORMATTED.search(written):
                    result.score = max(result.score, self.formatted_score)
                results.append(result)
            return results

    return PrivpipePhoneRecognizer


def __getattr__(name: str) -> Any:
    # Presidio is imported only when a recognizer is built, not when this module is.
    if name == "PrivpipePhoneRecognizer":
        return _phone_recognizer_class()
    raise AttributeError(name)
