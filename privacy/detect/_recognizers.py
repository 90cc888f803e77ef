"""The recognizer registry: Presidio's predefined English recognizers, the ones
``recognizers.yaml`` enables or extends, and privpipe's own pattern recognizers (and a
policy's), each built as a Presidio recognizer."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from privacy.detect._presidio import load_presidio
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
    load_presidio()
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
    load_presidio()
    from presidio_analyzer import predefined_recognizers

    settings = presidio_settings()
    registry = _registry_class()(supported_languages=["en"])
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
    for entry in _document().get("code") or []:
        module, _, cls_name = entry["class"].rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        registry.add_recognizer(cls(**{k: v for k, v in entry.items() if k != "class"}))
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


# Seven or more digits with only what people write between a number's digits (and an
# extension): the least a phone number has.
_PHONE_CANDIDATE = re.compile(
    r"[+(]*\d(?:[\s().\-/\u2010-\u2015]{0,4}\d){6,}(?:\s*(?:x|ext\.?|extension|#)\s*\d{1,6})?",
    re.I,
)
_PHONE_MARGIN = 16
# privpipe's nanp-separated pattern (recognizers.yaml), less its extension: a candidate it
# matches whole is found by that pattern, at a higher score than the matcher gives.
_NANP = re.compile(r"(?:(?:\+1|001|1)[-. ]?)?(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}")


def _covers(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether one of ``spans`` holds the candidate's digits (its brackets aside)."""
    return any(a <= start + 2 and end <= b for a, b in spans)


# 039-76-3566 is an SSN's grouping, which no numbering plan writes: no format bonus (Presidio's
# "number" context word would otherwise lift it over the SSN next to "social security number").
_SSN_SHAPED = re.compile(r"\d{3}([- .])\d{2}\1\d{4}")
_FORMATTED = re.compile(r"^\+|[()]|\d[-. /]\d")
# Dates and times that some region's numbering plan happens to accept (2024-03-02).
_DATE_LIKE = re.compile(
    r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./]\d\d?|\d\d?[-./]\d\d?[-./](?:19|20)?\d\d"
)


@cache
def _phone_recognizer_class() -> type:
    load_presidio()
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
            # Presidio runs the matcher once per region over the whole text. Here it runs
            # only over the stretches that can hold a number (seven digits or more, with
            # separators), with some text either side for its own boundary checks (12:00:00
            # is a time), and stops at the first regions whose matches cover the stretch.
            import phonenumbers

            results = []
            for candidate in _PHONE_CANDIDATE.finditer(text):
                if _DATE_LIKE.fullmatch(candidate.group()) or _NANP.fullmatch(candidate.group()):
                    continue  # a date; or a North American number privpipe's pattern finds
                start = max(0, candidate.start() - _PHONE_MARGIN)
                window = text[start : candidate.end() + _PHONE_MARGIN]
                spans: list[tuple[int, int]] = []
                for region in self.supported_regions:
                    for match in phonenumbers.PhoneNumberMatcher(
                        window, region, leniency=self.leniency or 0
                    ):
                        span = (match.start + start, match.end + start)
                        if span in spans:
                            continue
                        spans.append(span)
                        written = text[span[0] : span[1]]
                        if _DATE_LIKE.fullmatch(written):
                            continue
                        result = self._get_recognizer_result(  # type: ignore[no-untyped-call]
                            match, window, region, nlp_artifacts
                        )
                        result.start, result.end = span
                        if _FORMATTED.search(written) and not _SSN_SHAPED.fullmatch(written):
                            result.score = max(result.score, self.formatted_score)
                        results.append(result)
                    if _covers(spans, candidate.start(), candidate.end()):
                        break
            return results

    return PrivpipePhoneRecognizer


@cache
def _name_recognizer_class() -> type:
    load_presidio()
    from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

    class PrivpipeNameRecognizer(EntityRecognizer):
        """Given and family names from Faker's person lists for ``locales``, found as
        words: lower-case (``ryan``, ``emma``), all-caps, or capitalized inside a
        sentence, where the small NER model misses many. A name that is also a common
        English word (Zipf frequency of at least ``common_word_zipf`` in wordfreq:
        will, mark, grant, hope) is left to the model, and so is a word the model calls
        a place or a group."""

        def __init__(
            self,
            *,
            locales: list[str],
            common_word_zipf: float,
            score: float,
            context: list[str],
        ) -> None:
            self.locales = list(locales)
            self.common_word_zipf = common_word_zipf
            self.score = score
            self.names: frozenset[str] = frozenset()
            super().__init__(
                supported_entities=["PERSON"], name="PrivpipeNameRecognizer", context=context
            )

        def load(self) -> None:
            from faker import Faker
            from wordfreq import zipf_frequency

            names: set[str] = set()
            for locale in self.locales:
                provider = Faker(locale).provider("faker.providers.person")
                for attr in ("first_names", "first_names_male", "first_names_female"):
                    names.update(_words_of(getattr(provider, attr, ())))
                names.update(_words_of(getattr(provider, "last_names", ())))
            self.names = frozenset(
                n for n in names if len(n) >= 3 and zipf_frequency(n, "en") < self.common_word_zipf
            )

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> Any:
            doc = getattr(nlp_artifacts, "tokens", None)
            if doc is None:
                return []
            placed = {
                i
                for ent in getattr(doc, "ents", ())
                if ent.label_ in _PLACES_AND_GROUPS
                for i in range(ent.start, ent.end)
            }
            results = []
            for i, token in enumerate(doc):
                word = token.text
                if i in placed or not word.isalpha() or word.lower() not in self.names:
                    continue
                title = word[0].isupper() and word[1:].islower()
                if title and (i == 0 or doc[i - 1].text in _SENTENCE_START):
                    continue  # a capital that may only open a sentence: the model's call
                if not (title or word.islower() or word.isupper()):
                    continue
                results.append(
                    RecognizerResult(
                        "PERSON",
                        token.idx,
                        token.idx + len(word),
                        self.score,
                        analysis_explanation=AnalysisExplanation(_NAME_RECOGNIZER, self.score),
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: _NAME_RECOGNIZER,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
            return results

    return PrivpipeNameRecognizer


@cache
def _card_recognizer_class() -> type:
    load_presidio()
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    class PrivpipeCardRecognizer(CreditCardRecognizer):
        """Presidio's card recognizer (Luhn-checked, spaces and dashes allowed) for the
        card numbers its issuer prefixes leave out: 12 to 19 digits with any first digit
        (Maestro's 0604..., 12 digits). Only a number that passes the Luhn check is a
        finding (Presidio then scores it 1.0); one that fails is dropped."""

        def __init__(self, *, score: float) -> None:
            pattern = Pattern("any-issuer", r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])", score)
            super().__init__(
                patterns=[pattern], name="PrivpipeCardRecognizer", context=["card", "credit"]
            )

    return PrivpipeCardRecognizer


_NAME_RECOGNIZER = "PrivpipeNameRecognizer"
_PLACES_AND_GROUPS = frozenset({"GPE", "LOC", "FAC", "NORP"})
_SENTENCE_START = frozenset({".", "!", "?", '"', "'", ":", "\n"})


def _words_of(names: Any) -> set[str]:
    return {n.lower() for n in names if isinstance(n, str) and n.isalpha()}


def __getattr__(name: str) -> Any:
    # Presidio is imported only when a recognizer is built, not when this module is.
    if name == "PrivpipePhoneRecognizer":
        return _phone_recognizer_class()
    if name == "PrivpipeNameRecognizer":
        return _name_recognizer_class()
    if name == "PrivpipeCardRecognizer":
        return _card_recognizer_class()
    raise AttributeError(name)


def fewest_digits(regex: str) -> int:
    """The fewest digits a text must hold for ``regex`` to match in it: those the match
    consumes, or those a positive lookahead or lookbehind needs, whichever is more (0
    where it cannot tell: a class that also matches other characters, a negative
    lookaround, syntax Python's parser does not know)."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        return _fewest_digits(_parser.parse(regex))
    except Exception:
        return 0


def _fewest_digits(parsed: Any) -> int:
    from re import _constants as c  # type: ignore[attr-defined]

    total = 0
    ahead = 0  # digits a positive lookaround needs: in the text, if not in the match
    for op, arg in parsed:
        if op is c.ASSERT:
            ahead = max(ahead, _fewest_digits(arg[1]))
        elif op is c.LITERAL:
            total += chr(arg).isdigit()
        elif op is c.IN:
            total += bool(arg) and all(_digit_only(o, a, c) for o, a in arg)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, _, sub = arg
            total += low * _fewest_digits(sub)
        elif op is c.SUBPATTERN:
            total += _fewest_digits(arg[-1])
        elif op is c.ATOMIC_GROUP:
            total += _fewest_digits(arg)
        elif op is c.BRANCH:
            total += min(_fewest_digits(branch) for branch in arg[1])
    return max(total, ahead)


def _digit_only(op: Any, arg: Any, c: Any) -> bool:
    if op is c.CATEGORY:
        return bool(arg is c.CATEGORY_DIGIT)
    if op is c.RANGE:
        return bool(arg[0] >= 48 and arg[1] <= 57)
    return op is c.LITERAL and chr(arg).isdigit()


def fewest_digits_of(recognizer: Any) -> int:
    """The fewest digits a match of ``recognizer`` holds: the least over its patterns; 7
    for privpipe's phone recognizer (its matcher needs seven); 0 for any other kind (the
    NER model among them)."""
    load_presidio()
    from presidio_analyzer import PatternRecognizer

    patterns: list[Any] = getattr(recognizer, "patterns", None) or []
    if isinstance(recognizer, PatternRecognizer) and patterns:
        return min(fewest_digits(p.regex) for p in patterns)
    if hasattr(recognizer, "formatted_score"):  # PrivpipePhoneRecognizer
        return 7
    return 0


def _registry_class() -> type:
    load_presidio()
    from presidio_analyzer import RecognizerRegistry

    class PrivpipeRegistry(RecognizerRegistry):
        """Presidio's registry, which can leave out, for one text, the recognizers that
        need more digits than the text holds (:meth:`for_text`), and remembers which
        recognizers serve a list of entities (Presidio works that out on every call)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._local = threading.local()
            self._served: dict[Any, list[Any]] = {}
            self._needs: dict[str, int] = {}

        @contextmanager
        def for_text(self, text: str) -> Iterator[None]:
            self._local.digits = len(_DIGIT.findall(text))
            try:
                yield
            finally:
                self._local.digits = None

        def add_recognizer(self, recognizer: Any) -> None:
            self._served.clear()
            super().add_recognizer(recognizer)

        def remove_recognizer(self, *args: Any, **kwargs: Any) -> None:
            self._served.clear()
            super().remove_recognizer(*args, **kwargs)

        def get_recognizers(
            self,
            language: str,
            entities: list[str] | None = None,
            all_fields: bool = False,
            ad_hoc_recognizers: list[Any] | None = None,
        ) -> list[Any]:
            key = (language, tuple(entities or ()), all_fields, tuple(ad_hoc_recognizers or ()))
            served = self._served.get(key)
            if served is None:
                served = super().get_recognizers(language, entities, all_fields, ad_hoc_recognizers)
                self._served[key] = served
            digits = getattr(self._local, "digits", None)
            if digits is None:
                return list(served)
            return [r for r in served if self._need(r) <= digits]

        def _need(self, recognizer: Any) -> int:
            need = self._needs.get(recognizer.id)
            if need is None:
                need = self._needs[recognizer.id] = fewest_digits_of(recognizer)
            return need

    return PrivpipeRegistry


_DIGIT = re.compile(r"\d")
