from __future__ import annotations

import polars as pl

from tests.transform._util import run


def test_mask_keeps_last_n_characters() -> None:
    frame = pl.DataFrame({"ssn": ["123-45-6789", "987-65-4321"]})
    out, _ = run(frame, {"ssn": {"rule": "mask", "keep_last": 4}})
    assert out.get_column("ssn").to_list() == ["*******6789", "*******4321"]


def test_short_values_are_masked_whole() -> None:
    frame = pl.DataFrame({"v": ["abc", "abcd", "abcde", None, ""]})
    out, _ = run(frame, {"v": {"rule": "mask", "keep_last": 4, "char": "#"}})
    assert out.get_column("v").to_list() == ["###", "####", "#bcde", None, ""]


def test_keep_last_zero_masks_everything_and_unicode_counts_characters() -> None:
    frame = pl.DataFrame({"v": ["Zoë Ådahl"]})
    out, _ = run(frame, {"v": {"rule": "mask", "keep_last": 0}})
    assert out.get_column("v").to_list() == ["*********"]
    out, _ = run(frame, {"v": {"rule": "mask", "keep_last": 3}})
    assert out.get_column("v").to_list() == ["******ahl"]
