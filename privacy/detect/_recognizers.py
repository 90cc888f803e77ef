"""Recognizers declared in YAML (privpipe's own, and a policy's) built as Presidio
PatternRecognizers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from privacy.policy import RecognizerSpec

__all__ = ["RECOGNIZERS_FILE", "builtin_recognizers", "policy_recognizers", "recognizer_specs"]

RECOGNIZERS_FILE = Path(__file__).with_name("recognizers.yaml")
# Presidio defaults this module replaces or that only add noise on this kind of data.
REPLACED = ("PhoneRecognizer",)


@cache
def recognizer_specs() -> tuple[dict[str, Any], ...]:
    """The built-in recognizer declarations, as read from recognizers.yaml."""
    document = yaml.safe_load(RECOGNIZERS_FILE.read_text(encoding="utf-8"))
    return tuple(document["recognizers"])


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
    return [_build(spec) for spec in recognizer_specs()]


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
