"""Typed policy models, loaded from YAML, validated strictly, and hashed canonically.

A policy declares everything a run does to a data set: the expected input schema, one
rule and one role per column, the privacy model's parameters, the training parameters,
where keys come from, and what is published. Every model forbids unknown keys, so a
typo is an error rather than a silently ignored setting.

The canonical hash (:func:`policy_hash`) is the SHA-256 of the validated policy dumped
as sorted, compact JSON with every default filled in: it does not change with key
order, formatting, comments, or whether a default is written out.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from privacy.errors import PolicyError

__all__ = [
    "ColumnSpec",
    "ColumnType",
    "Domain",
    "StatQuery",
    "StatisticsSpec",
    "SyntheticSpec",
    "MIN_TOKEN_HEX",
    "Policy",
    "RULES",
    "load_policy",
    "policy_from_dict",
    "policy_hash",
    "policy_json_schema",
]

ColumnType = Literal["string", "integer", "float", "boolean", "date", "datetime"]
Role = Literal["none", "identifier", "quasi_identifier", "sensitive", "label"]
RULES = (
    "drop",
    "keep",
    "redact",
    "mask",
    "pseudonymize",
    "date_shift",
    "generalize",
    "scrub",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- hierarchies


class FileHierarchy(_Strict):
    """An ARX hierarchy file: one row per value, levels from the value up to ``*``."""

    kind: Literal["file"]
    path: str = Field(description="Path to the hierarchy CSV, relative to the policy file.")
    separator: str = Field(";", min_length=1, max_length=1)


class IntervalHierarchy(_Strict):
    """Numbers grouped into intervals of growing width, with optional top/bottom coding."""

    kind: Literal["intervals"]
    widths: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    bottom: float | None = Field(None, description="Values below this are coded '<bottom'.")
    top: float | None = Field(None, description="Values at or above this are coded '>=top'.")

    @model_validator(mode="after")
    def _ascending(self) -> IntervalHierarchy:
        if any(b <= a for a, b in zip(self.widths, self.widths[1:], strict=False)):
            raise ValueError("widths must be strictly ascending")
        if self.bottom is not None and self.top is not None and self.bottom >= self.top:
            raise ValueError("bottom must be below top")
        for low, high in zip(self.widths, self.widths[1:], strict=False):
            if not float(high / low).is_integer():
                raise ValueError(
                    "each width must be a multiple of the one before, so intervals nest"
                )
        return self


class PrefixHierarchy(_Strict):
    """Codes generalized by masking trailing characters: 12345 -> 1234* -> 123** -> *."""

    kind: Literal["prefix"]
    mask_char: str = Field("*", min_length=1, max_length=1)


class DateHierarchy(_Strict):
    """Dates generalized day -> month -> year -> *."""

    kind: Literal["dates"]
    levels: list[Literal["month", "year"]] = Field(default_factory=lambda: ["month", "year"])  # type: ignore[arg-type]


Hierarchy = Annotated[
    Union[FileHierarchy, IntervalHierarchy, PrefixHierarchy, DateHierarchy],
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- domains


class CategoriesDomain(_Strict):
    """The values a column may take, declared: what a DP release (a synthetic table,
    the group keys of statistics) may name. Never read from the data."""

    categories: list[str] = Field(min_length=1, description="Every value, as text.")

    @field_validator("categories")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("categories must be distinct")
        return values


class BinsDomain(_Strict):
    """A number's declared range, cut into bins of ``width``: a value outside the bounds
    is clipped to them (a DP release never reads the data's own min and max)."""

    bounds: tuple[float, float] = Field(description="[low, high], both included.")
    width: float = Field(gt=0, description="Bin width (1 for every integer value).")

    @model_validator(mode="after")
    def _ordered(self) -> BinsDomain:
        low, high = self.bounds
        if not low < high:
            raise ValueError("bounds must be [low, high] with low < high")
        if (high - low) / self.width > 10_000:
            raise ValueError("more than 10,000 bins: widen the bins")
        return self


Domain = Union[CategoriesDomain, BinsDomain]


# --------------------------------------------------------------------------- columns


class _ColumnBase(_Strict):
    type: ColumnType = Field("string", description="The type every value must parse as.")
    role: Role = Field("none", description="The column's part in anonymization and training.")
    nullable: bool = Field(True, description="Whether empty cells are allowed.")
    format: str | None = Field(
        None,
        description="strftime format for date/datetime columns (default ISO 8601).",
    )
    description: str | None = None
    acknowledge_pii: list[str] = Field(
        default_factory=list,
        description="Entity types detection may find in this column without failing the run.",
    )
    hierarchy: Hierarchy | None = Field(
        None,
        description="Generalization hierarchy for a quasi-identifier (k-anonymity).",
    )
    domain: Domain | None = Field(
        None,
        description="The values a DP release (synthetic:, statistics:) may take: "
        "{categories: [...]} or {bounds: [low, high], width: w}. Default: the leaves of a "
        "file hierarchy, or an interval hierarchy's bottom, top and first width.",
    )


class DropRule(_ColumnBase):
    """Remove the column from the output."""

    rule: Literal["drop"]


class KeepRule(_ColumnBase):
    """Publish the column unchanged (detection still audits it)."""

    rule: Literal["keep"]


class RedactRule(_ColumnBase):
    """Replace every value by a constant (or null)."""

    rule: Literal["redact"]
    replacement: str | None = Field(
        "[REDACTED]", description="Constant to publish; null for empty."
    )


class MaskRule(_ColumnBase):
    """Replace all but the last ``keep_last`` characters by ``char``."""

    rule: Literal["mask"]
    keep_last: int = Field(4, ge=0, le=64)
    char: str = Field("*", min_length=1, max_length=1)


MIN_TOKEN_HEX = 32  # 128 bits: 8 hex digits collided 13 times in 300k values


class PseudonymizeRule(_ColumnBase):
    """Replace each value by a keyed token (BLAKE2b-MAC): stable for a key, so joins
    survive. At least 128 bits, so distinct values never share a token in practice (and
    the write checks that they do not)."""

    rule: Literal["pseudonymize"]
    prefix: str = Field("", max_length=16, pattern=r"^[A-Za-z0-9_-]*$")
    length: int = Field(
        MIN_TOKEN_HEX,
        le=64,
        description="Hex characters of a one-way token, 32 (128 bits) to 64.",
        json_schema_extra={"minimum": MIN_TOKEN_HEX},
    )
    reversible: bool = Field(
        False, description="Allow controlled re-identification by the key custodian."
    )

    @field_validator("length")
    @classmethod
    def _at_least_128_bits(cls, length: int) -> int:
        if length < MIN_TOKEN_HEX:
            raise ValueError(
                f"{length} hex digits is {length * 4} bits: one-way tokens need at least "
                f"{MIN_TOKEN_HEX} ({MIN_TOKEN_HEX * 4} bits), or distinct values share tokens"
            )
        return length


class DateShiftRule(_ColumnBase):
    """Shift dates by a per-person offset in [-max_days, +max_days], never zero."""

    rule: Literal["date_shift"]
    max_days: int = Field(30, ge=1, le=3650)
    by: str = Field(description="Column identifying the person; its offset is the same everywhere.")


class GeneralizeRule(_ColumnBase):
    """Coarsen values: numbers into intervals with top/bottom coding, codes to a prefix,
    dates to a month or year."""

    rule: Literal["generalize"]
    width: float | None = Field(None, gt=0, description="Interval width for numbers.")
    bottom: float | None = Field(None, description="Numbers below this are coded '<bottom'.")
    top: float | None = Field(None, description="Numbers at or above this are coded '>=top'.")
    keep_prefix: int | None = Field(None, ge=0, description="Characters of a code kept.")
    date_unit: Literal["month", "year"] | None = None

    @model_validator(mode="after")
    def _one_method(self) -> GeneralizeRule:
        numeric = self.width is not None or self.bottom is not None or self.top is not None
        methods = [numeric, self.keep_prefix is not None, self.date_unit is not None]
        if sum(methods) != 1:
            raise ValueError(
                "generalize needs exactly one of: width/bottom/top (numbers), "
                "keep_prefix (codes), date_unit (dates)"
            )
        if numeric and self.type not in ("integer", "float"):
            raise ValueError("width/bottom/top need type integer or float")
        if self.date_unit is not None and self.type not in ("date", "datetime"):
            raise ValueError("date_unit needs type date or datetime")
        if self.bottom is not None and self.top is not None and self.bottom >= self.top:
            raise ValueError("bottom must be below top")
        return self


class ScrubRule(_ColumnBase):
    """Free text: replace only the PII spans in each cell, keeping the rest."""

    rule: Literal["scrub"]
    operator: Literal["placeholder", "redact", "pseudonymize"] = "placeholder"
    entities: list[str] | None = Field(None, description="Entity types to remove (default: all).")


ColumnSpec = Annotated[
    Union[
        DropRule,
        KeepRule,
        RedactRule,
        MaskRule,
        PseudonymizeRule,
        DateShiftRule,
        GeneralizeRule,
        ScrubRule,
    ],
    Field(discriminator="rule"),
]


# --------------------------------------------------------------------------- sections


class InputSpec(_Strict):
    kind: Literal["file", "postgres"] = Field(
        "file",
        description="file: the INPUT given on the command line; postgres: a table or a "
        "query (uri_env, table or query).",
    )
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    separator: str = Field(",", min_length=1, max_length=1)
    undeclared_columns: Literal["error", "drop"] = Field(
        "error",
        description="What to do with input columns the policy does not declare.",
    )
    uri_env: str | None = Field(
        None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="postgres: the environment variable holding the connection URI "
        "(never recorded; its password never printed, logged or audited).",
    )
    table: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$",
        description="postgres: the table (or schema.table) to read.",
    )
    query: str | None = Field(
        None, min_length=1, description="postgres: a SELECT to read instead of a table."
    )
    partition_by: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$",
        description="postgres: the column the rows are read in order of, partition by "
        "partition (a key makes the result set's digest stable for skip_unchanged).",
    )

    @model_validator(mode="after")
    def _source(self) -> InputSpec:
        database = (self.uri_env, self.table, self.query, self.partition_by)
        if self.kind == "file":
            if any(v is not None for v in database):
                raise ValueError("uri_env, table, query and partition_by need kind: postgres")
            return self
        if self.uri_env is None:
            raise ValueError("kind postgres needs uri_env (the variable holding the URI)")
        if (self.table is None) == (self.query is None):
            raise ValueError("kind postgres needs exactly one of table and query")
        return self


class PatternSpec(_Strict):
    regex: str
    score: float = Field(0.6, gt=0, le=1)


class RecognizerSpec(_Strict):
    name: str
    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    patterns: list[PatternSpec] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list)
    deny_list: list[str] = Field(default_factory=list)


class DetectionSpec(_Strict):
    sample_rows: int = Field(1000, ge=1)
    score_threshold: float = Field(0.5, ge=0, le=1)
    language: Literal["en"] = "en"
    entities: list[str] | None = Field(
        None,
        description="Entities to look for (default: every HIPAA Safe Harbor identifier and "
        "NRP; see the README's table). A list narrows the set.",
    )
    recognizers: list[RecognizerSpec] = Field(default_factory=list)
    allow_list: list[str] = Field(default_factory=list)
    dates: Literal["remove", "keep_year"] = Field(
        "remove", description="keep_year: a date in free text is replaced by its year."
    )
    ages: Literal["remove", "keep_under_90"] = Field(
        "remove", description="keep_under_90: ages up to 89 stay in free text."
    )


class LDiversitySpec(_Strict):
    variant: Literal["distinct", "entropy", "recursive"] = "distinct"
    l: float = Field(2, ge=1)  # noqa: E741 - the model's own name
    c: float | None = Field(None, gt=0, description="c of recursive (c,l)-diversity.")


class TClosenessSpec(_Strict):
    t: float = Field(gt=0, le=1)
    distance: Literal["auto", "equal", "ordered", "hierarchical"] = "auto"


class PrivacySpec(_Strict):
    k: int = Field(5, ge=1, description="Every quasi-identifier combination occurs >= k times.")
    l_diversity: LDiversitySpec | None = None
    t_closeness: TClosenessSpec | None = None
    max_suppression: float = Field(0.05, ge=0, le=1, description="Share of records removable.")
    suppressed_records: Literal["remove", "mask"] = "remove"
    algorithm: Literal["optimal", "mondrian"] = "optimal"
    metric: Literal["discernibility", "aecs", "loss", "entropy", "classification"] = Field(
        "loss",
        description="What the optimal search minimizes; classification keeps privacy.target "
        "most predictable from the quasi-identifiers.",
    )
    target: str | None = Field(
        None,
        description="The column metric: classification keeps predictable: the policy's "
        "sensitive column (role: sensitive), often the training label.",
    )
    risk_threshold: float = Field(0.2, gt=0, le=1)
    person_key: str | None = Field(
        None,
        description=(
            "The column that names the person a row is about (a person id, kept or "
            "pseudonymized one-way). The privacy budget ledger then knows a data set by "
            "its people: a person charged through one file is charged again through any "
            "other file, subset or row order that holds them. Without it, by its rows."
        ),
    )


class TrainingSpec(_Strict):
    enabled: bool = False
    dp: bool = Field(
        True, description="Differentially private training (false: a NOT PRIVATE baseline)."
    )
    label: str | None = None
    positive_class: str | None = None
    input: Literal["published", "deidentified"] | None = Field(
        None,
        description=(
            "What the model trains on: published (the k-anonymous release) or "
            "deidentified (the transform stage's output before generalization: direct "
            "identifiers removed or pseudonymized, quasi-identifiers intact; sealed under "
            "the vault scope in the sanitize output, and read only by DP training). "
            "Default: deidentified when dp is true, else published."
        ),
    )
    model: str = Field(
        "mlp",
        pattern=r"^(mlp|logistic|[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*)$",
        description=(
            "mlp, logistic, or your own: 'package.module:factory', a function of (the "
            "encoder's feature count, the number of classes) that returns a torch.nn.Module "
            "(imported from the Python path: the policy then runs that code)."
        ),
    )
    fix_modules: bool = Field(
        False,
        description="Let Opacus' ModuleValidator.fix replace layers DP-SGD cannot train "
        "(BatchNorm to GroupNorm) in your own model; otherwise such a model is refused.",
    )
    hidden_sizes: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [64, 32])
    epsilon: float = Field(1.0, gt=0)
    delta: float | None = Field(None, gt=0, lt=1, description="Default 1/n; never above 1/n.")
    budget: float = Field(3.0, gt=0, description="Total epsilon this data set may spend.")
    dataset: str | None = Field(None, description="Budget ledger id (default: the policy name).")
    accountant: Literal["prv", "rdp"] = "prv"
    # Defaults for DP-SGD on tabular data: large batches and a larger step than the
    # non-private habit (measured on Adult after its k-anonymization, see the README).
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(1024, ge=1)
    max_physical_batch_size: int | None = Field(
        None,
        ge=1,
        description=(
            "Largest batch put through the model at once; a larger logical batch is split "
            "(Opacus BatchMemoryManager), with the same privacy accounting."
        ),
    )
    learning_rate: float = Field(1e-2, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    grad_sample_mode: Literal["ghost", "hooks"] = "ghost"
    test_size: float = Field(0.2, gt=0, lt=1)
    canaries: int = Field(
        0,
        ge=0,
        description=(
            "Audit this run with canaries (Steinke, Nasr, Jagielski 2023): how many to "
            "plant, each in the training data with probability 1/2; 0: no audit."
        ),
    )
    class_weight: Literal["none", "balanced"] = "none"
    threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Decision threshold on the positive class's probability.",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _budget_covers_run(self) -> TrainingSpec:
        if self.enabled and self.label is None:
            raise ValueError("training.enabled needs training.label")
        if self.epsilon > self.budget:
            raise ValueError(
                f"epsilon ({self.epsilon}) exceeds budget ({self.budget}): "
                "one run cannot spend more than the whole budget"
            )
        if self.input == "deidentified" and not self.dp:
            raise ValueError(
                "input: deidentified needs dp: true (the quasi-identifiers are intact there, "
                "and only differential privacy bounds what the model reveals of a record); "
                "a non-private baseline trains on input: published"
            )
        return self

    @property
    def reads(self) -> Literal["published", "deidentified"]:
        """The input training reads: ``input``, or its default for ``dp``."""
        if self.input is not None:
            return self.input
        return "deidentified" if self.dp else "published"


class SyntheticSpec(_Strict):
    """A DP synthetic table (MST or AIM on Private-PGM) made from the training view."""

    enabled: bool = False
    mechanism: Literal["mst", "aim"] = "mst"
    epsilon: float = Field(1.0, gt=0, description="ε of the whole release (charged).")
    delta: float = Field(1e-5, gt=0, lt=1, description="δ of the (ε, δ) the ρ is converted to.")
    rows: int = Field(ge=1, description="Rows to synthesize (declared, not read from the data).")
    columns: list[str] = Field(
        min_length=2,
        description="The columns synthesized; each needs a domain (columns.NAME.domain).",
    )
    text: Literal["refuse", "drop"] = Field(
        "refuse",
        description="A free-text (scrub) column in columns: refuse the release, or drop it.",
    )
    holdout: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of the rows kept from the synthesizer: the privacy check and "
        "TSTR compare the table with them.",
    )
    max_exact_match_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Fail the release when more synthetic rows than this share equal a "
        "training row (default: the holdout's own share plus three standard errors).",
    )
    max_membership_auc: float = Field(
        0.6, gt=0.5, le=1, description="Fail the release when the DCR attack's AUC is above."
    )
    iterations: int = Field(2000, ge=100, description="Private-PGM estimation steps.")
    max_rounds: int | None = Field(
        None, ge=1, description="aim: most selection rounds (default 16 × columns)."
    )
    seed: int = Field(
        0,
        description="Seeds the holdout split and the sampling of rows from the model "
        "(OpenDP's noise comes from the system's secure generator and is never seeded).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> SyntheticSpec:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("columns must be distinct")
        return self


class StatQuery(_Strict):
    """One DP statistic by group: every declared key combination is released."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    kind: Literal["count", "sum", "mean"]
    column: str | None = Field(None, description="The summed or averaged column.")
    bounds: tuple[float, float] | None = Field(
        None, description="[low, high] a summed value is clipped to (default: its domain)."
    )
    by: list[str] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _needs_column(self) -> StatQuery:
        if (self.kind == "count") != (self.column is None):
            raise ValueError(
                "count takes no column; sum and mean need column"
                if self.kind == "count"
                else f"{self.kind} needs column"
            )
        if self.bounds is not None and not self.bounds[0] < self.bounds[1]:
            raise ValueError("bounds must be [low, high] with low < high")
        return self


class StatisticsSpec(_Strict):
    """DP statistics (counts, sums, means by group), from the training view."""

    enabled: bool = False
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    epsilon: float = Field(0.5, gt=0, description="ε of all the queries together (charged).")
    delta: float = Field(1e-5, gt=0, lt=1, description="gaussian: δ of the (ε, δ).")
    format: Literal["parquet", "csv"] = "parquet"
    queries: list[StatQuery] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> StatisticsSpec:
        names = [q.name for q in self.queries]
        if len(set(names)) != len(names):
            raise ValueError("queries: every name must be distinct")
        return self


SealScope = Literal["vault", "published"]


class SealScopesSpec(_Strict):
    """Which key scope seals which artifact: the raw side under the custodian's
    ``vault`` scope, what is released under the analysts' ``published`` scope."""

    vault: SealScope = Field("vault", description="The raw vault copy of the input.")
    intermediates: SealScope = Field(
        "vault", description="A run's intermediate files (partitions hold raw values)."
    )
    published: SealScope = Field("published", description="The sanitized data.")
    model: SealScope = Field(
        "published", description="Trained model weights and training checkpoints."
    )


class KeysSpec(_Strict):
    seal: SealScopesSpec = Field(default_factory=SealScopesSpec)
    keyring: str | None = Field(
        None,
        description="Keyring file, relative to the policy file (--keyring wins).",
    )
    pseudonym_key_env: str | None = Field(
        None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description=(
            "Take the pseudonym key (hex) from this environment variable instead of the "
            "keyring, e.g. to keep tokens made under an earlier key."
        ),
    )


class DatabaseOutputSpec(_Strict):
    """A PostgreSQL table the sanitized rows are published into, after the gate, in one
    transaction."""

    kind: Literal["postgres"] = "postgres"
    uri_env: str = Field(
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="The environment variable holding the connection URI (never recorded).",
    )
    table: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$",
        description="The table (or schema.table) to publish into.",
    )
    mode: Literal["replace", "append"] = Field(
        "replace", description="replace: drop and recreate the table; append: add the rows."
    )


class OutputsSpec(_Strict):
    format: Literal["parquet"] = "parquet"
    compression: Literal["zstd", "snappy", "lz4", "uncompressed"] = "zstd"
    seal: bool = Field(True, description="Seal the published data at rest (default).")
    object_store: str | None = Field(
        None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$",
        description="Also upload the run's published artifacts (the data, sealed as it "
        "is, the manifest, the report and the audit trail) under this s3:// prefix, in a "
        "folder named after the output folder.",
    )
    database: DatabaseOutputSpec | None = Field(
        None,
        description="Also publish the sanitized rows into this PostgreSQL table (one "
        "transaction, after the gate; the files are still written).",
    )


class ScheduleSpec(_Strict):
    """How scheduled runs (``privpipe serve``) treat this policy's input."""

    skip_unchanged: bool = Field(
        False,
        description=(
            "Skip a scheduled run when the input file (SHA-256) and the policy are unchanged "
            "since the last successful run; nothing is written for it."
        ),
    )


class Policy(_Strict):
    """A whole privpipe policy. See ``policies/policy.schema.json`` and the README."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    description: str | None = None
    input: InputSpec = Field(default_factory=InputSpec)
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    detection: DetectionSpec = Field(default_factory=DetectionSpec)
    privacy: PrivacySpec = Field(default_factory=PrivacySpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    synthetic: SyntheticSpec | None = None
    statistics: StatisticsSpec | None = None
    keys: KeysSpec = Field(default_factory=KeysSpec)
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    require_signed_policy: bool = Field(
        False,
        description=(
            "Sanitize and train refuse this policy unless a reviewer whose key the operator "
            "trusts (PRIVPIPE_POLICY_SIGNERS) signed it as it is (`privpipe policy sign`)."
        ),
    )

    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _cross_references(self) -> Policy:
        for name, col in self.columns.items():
            if isinstance(col, DateShiftRule):
                if col.type not in ("date", "datetime"):
                    raise ValueError(f"columns.{name}: date_shift needs type date or datetime")
                if col.by not in self.columns:
                    raise ValueError(f"columns.{name}.by: no column named {col.by!r}")
            if col.role == "quasi_identifier" and col.rule not in (
                "keep",
                "generalize",
            ):
                raise ValueError(
                    f"columns.{name}: a quasi_identifier must use rule keep or generalize"
                )
            if col.role in ("sensitive", "label") and col.rule == "drop":
                raise ValueError(f"columns.{name}: a {col.role} column cannot be dropped")
            if col.role == "quasi_identifier" and col.rule == "generalize" and col.hierarchy:
                raise ValueError(
                    f"columns.{name}: a quasi-identifier with a hierarchy is generalized by "
                    "the k-anonymity search (level 0 is the value as read): use rule keep, "
                    "or drop the hierarchy to publish the rule's own generalization"
                )
        sensitive = [n for n, c in self.columns.items() if c.role == "sensitive"]
        for key in ("l_diversity", "t_closeness"):
            if getattr(self.privacy, key) is not None and len(sensitive) != 1:
                raise ValueError(
                    f"privacy.{key}: needs exactly one column with role sensitive "
                    f"(found {len(sensitive)})"
                )
        target = self.privacy.target
        if self.privacy.metric == "classification" and target is None:
            raise ValueError("privacy.target: metric classification needs a target column")
        if target is not None:
            if target not in self.columns:
                raise ValueError(f"privacy.target: no column named {target!r}")
            if sensitive != [target]:
                raise ValueError(
                    f"privacy.target: {target!r} must be the one column with role sensitive "
                    "(the search counts that column's values per class)"
                )
        person = self.privacy.person_key
        if person is not None:
            if person not in self.columns:
                raise ValueError(f"privacy.person_key: no column named {person!r}")
            rule = self.columns[person]
            one_way = isinstance(rule, PseudonymizeRule) and not rule.reversible
            if not (rule.rule == "keep" or one_way) or rule.role == "quasi_identifier":
                raise ValueError(
                    f"privacy.person_key: column {person!r} must reach the data trained on "
                    "unchanged or as a one-way pseudonym (rule keep or pseudonymize, not a "
                    "quasi_identifier), or the ledger cannot tell its people apart"
                )
        ld = self.privacy.l_diversity
        if ld is not None and ld.variant == "recursive" and ld.c is None:
            raise ValueError("privacy.l_diversity.c: recursive (c,l)-diversity needs c")
        labels = [n for n, c in self.columns.items() if c.role == "label"]

        if len(labels) > 1:
            raise ValueError(f"columns: at most one label column (found {', '.join(labels)})")
        self._check_releases()
        label = self.training.label
        if label is not None:
            if label not in self.columns:
                raise ValueError(f"training.label: no column named {label!r}")
            if self.columns[label].rule == "drop":
                raise ValueError("training.label: the label column is dropped")
        return self

    def _check_releases(self) -> None:
        for key, spec in (("synthetic", self.synthetic), ("statistics", self.statistics)):
            if spec is not None and spec.enabled and spec.epsilon > self.training.budget:
                raise ValueError(
                    f"{key}.epsilon ({spec.epsilon}) exceeds training.budget "
                    f"({self.training.budget}), the data set's whole budget"
                )
        if self.synthetic is not None:
            for i, name in enumerate(self.synthetic.columns):
                if name not in self.columns:
                    raise ValueError(f"synthetic.columns.{i}: no column named {name!r}")
        if self.statistics is not None:
            for i, query in enumerate(self.statistics.queries):
                for name in [*query.by, *([query.column] if query.column else [])]:
                    if name not in self.columns:
                        raise ValueError(f"statistics.queries.{i}: no column named {name!r}")

    @property
    def source(self) -> Path | None:
        """The file this policy was loaded from, if any."""
        return self._source

    def resolve_path(self, relative: str) -> Path:
        """A path written in the policy, relative to the policy file's folder."""
        path = Path(relative).expanduser()
        if path.is_absolute() or self._source is None:
            return path
        return self._source.parent / path

    def columns_with_role(self, role: Role) -> list[str]:
        return [n for n, c in self.columns.items() if c.role == role]

    @property
    def hash(self) -> str:
        return policy_hash(self)

    def keeps_training_view(self) -> bool:
        """Whether a sanitize run of this policy seals the training view in its vault:
        it trains on the deidentified data (``training.input``), or makes a DP synthetic
        table or DP statistics (which read it)."""
        trains = self.training.enabled and self.training.reads == "deidentified"
        return trains or bool(self.releases())

    def releases(self) -> list[str]:
        """The DP releases beside a model this policy makes: ``synthetic``, ``statistics``."""
        return [
            name
            for name, spec in (("synthetic", self.synthetic), ("statistics", self.statistics))
            if spec is not None and spec.enabled
        ]

    @property
    def budget(self) -> float:
        """The ε budget of the data set, for every release charged to it (a model, a
        synthetic table, statistics): ``training.budget``."""
        return self.training.budget

    @property
    def dataset_label(self) -> str:
        """The label the ledger shows beside a data set's id (never matched)."""
        return self.training.dataset or self.name

    def identity(self) -> dict[str, str]:
        """How manifests, cards and artifacts name the policy: ``{"name", "sha256"}``
        (the canonical hash). Audit records carry the same two as ``{"id", "sha256"}``
        (their format predates this; see ``flows/_prelude.py``)."""
        return {"name": self.name, "sha256": self.hash}


# --------------------------------------------------------------------------- loading


def policy_hash(policy: Policy) -> str:
    """SHA-256 (hex) of the canonical JSON form of a validated policy."""
    canonical = json.dumps(
        policy.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file (committed as ``policies/policy.schema.json``)."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "privpipe policy"
    return schema


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file. Raises :class:`PolicyError` naming file and key."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except IsADirectoryError:
        raise PolicyError(f"{path}: is a folder, not a policy file") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not valid UTF-8") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise PolicyError(f"{path}: invalid YAML{where}: {problem}") from None
    return policy_from_dict(data, source=path)


def policy_from_dict(data: Any, *, source: Path | None = None) -> Policy:
    """Validate a parsed policy. Errors name the source and the first bad key path."""
    label = str(source) if source is not None else "<policy>"
    if not isinstance(data, dict):
        raise PolicyError(f"{label}: a policy must be a YAML mapping at the top level")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PolicyError(f"{label}: {_describe(first)}{more}") from None
    policy._source = source
    return policy


def _describe(error: Any) -> str:
    loc, parent = _readable_loc(tuple(error["loc"]))
    where = ".".join(str(p) for p in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(parent.model_fields)) if parent is not None else ""
        hint = f" (allowed: {allowed})" if allowed else ""
        return f"{where}: unknown key{hint}"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        allowed = str(ctx.get("expected_tags", "")).replace("'", "")
        field = ctx.get("discriminator", "").strip("'")
        return f"{where}.{field}: {ctx.get('tag')!r} is not one of: {allowed}"
    if kind == "union_tag_not_found":
        field = error.get("ctx", {}).get("discriminator", "").strip("'")
        return f"{where}.{field}: required key is missing"
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        if message.startswith(("columns.", "training.", "synthetic.", "statistics.")):
            return message
        return f"{where}: {message}"
    return f"{where}: {error['msg']}"


def _readable_loc(
    loc: tuple[Any, ...],
) -> tuple[tuple[Any, ...], type[BaseModel] | None]:
    """Drop union tags from a pydantic location and find the model holding the last key."""
    readable: list[Any] = []
    annotation: Any = Policy
    parent: type[BaseModel] | None = None
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parent = annotation
            field = annotation.model_fields.get(str(part))
            readable.append(part)
            annotation = field.annotation if field is not None else None
            continue
        origin = typing.get_origin(annotation)
        if origin is dict:
            readable.append(part)
            annotation = typing.get_args(annotation)[1]
            continue
        if origin is list:
            readable.append(part)
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            chosen = _union_member(annotation, str(part))
            if chosen is not None:  # a discriminator tag: not part of the user's key path
                annotation = chosen
                continue
        readable.append(part)
        annotation = None
    return tuple(readable), parent


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _union_member(annotation: Any, tag: str) -> Any:
    for member in typing.get_args(annotation):
        member = _unwrap(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            for key in ("rule", "kind"):
                field = member.model_fields.get(key)
                if field is not None and typing.get_args(field.annotation) == (tag,):
                    return member
    return None
