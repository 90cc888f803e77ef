"""What the signed record of a DP release (a synthetic table, statistics) carries."""

from __future__ import annotations

from typing import Any

__all__ = ["release_record"]


def release_record(card: dict[str, Any]) -> dict[str, Any]:
    """What the signed record of a release carries for the verdict: its privacy
    figures and ledger charge, and (a synthetic table) the gate's checks and the
    utility summary. Counts and figures only."""
    privacy = {k: v for k, v in card["privacy"].items() if k != "measured"}
    params: dict[str, Any] = {"kind": card["kind"], **privacy}
    if card["kind"] == "synthetic":
        marginals = card["utility"]["marginals"]
        params |= {
            "privacy_check": card["privacy_check"],
            "thresholds": card["thresholds"],
            "utility": {
                "one_way_mean_tvd": marginals["one_way_mean"],
                "two_way_mean_tvd": marginals["two_way_mean"],
                "two_way_max_tvd": marginals["two_way_max"],
                "tstr": card["utility"]["tstr"],
            },
            "columns": card["columns"],
        }
    else:
        params |= {
            "queries": [{k: q[k] for k in ("name", "kind", "cells")} for q in card["queries"]]
        }
    return params
