"""k-anonymity: hierarchies, the optimal full-domain search, Mondrian, l-diversity,
t-closeness and re-identification risk.

The search works on record counts per combination of quasi-identifier values
(:func:`count_records`, per partition, merged with :func:`merge_counts`), never on rows.
"""

from privacy.kanon._counts import count_records, merge_counts
from privacy.kanon._engine import (
    KAnonResult,
    Rewrite,
    anonymize,
    apply,
    assess_risk,
    plan,
    prepare,
)
from privacy.kanon._hierarchy import CodedHierarchy, build_hierarchy, read_arx_hierarchy
from privacy.kanon._lattice import METRICS, Evaluation, Lattice, SearchResult
from privacy.kanon._models import (
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    PrivacyModel,
    RecursiveCLDiversity,
    TCloseness,
)
from privacy.kanon._mondrian import mondrian
from privacy.kanon._risk import risk_figures

__all__ = [
    "METRICS",
    "CodedHierarchy",
    "DistinctLDiversity",
    "EntropyLDiversity",
    "Evaluation",
    "KAnonResult",
    "KAnonymity",
    "Lattice",
    "PrivacyModel",
    "RecursiveCLDiversity",
    "Rewrite",
    "SearchResult",
    "TCloseness",
    "anonymize",
    "apply",
    "assess_risk",
    "build_hierarchy",
    "count_records",
    "merge_counts",
    "mondrian",
    "plan",
    "prepare",
    "read_arx_hierarchy",
    "risk_figures",
]
