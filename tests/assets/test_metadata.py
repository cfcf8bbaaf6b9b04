"""Metadata helpers shared by the writeback and upload assets."""

from __future__ import annotations

import polars as pl

from sf_assets.assets.metadata import counts_by


def test_counts_by_puts_the_most_frequent_first_and_orders_ties_by_value() -> None:
    codes = ["STRING_TOO_LONG", "INVALID_DATE", "DUPLICATE_KEY", "INVALID_DATE", "DUPLICATE_KEY"]
    for order in (codes, list(reversed(codes))):
        counted = counts_by(pl.DataFrame({"code": order}), "code")
        assert list(counted.items()) == [
            ("DUPLICATE_KEY", 2),
            ("INVALID_DATE", 2),
            ("STRING_TOO_LONG", 1),
        ]
