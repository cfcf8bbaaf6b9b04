"""Mapping and validating sales-data lines, and the CSV built from them."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, date, datetime

import polars as pl
import pytest

from sf_assets.emarsys.csv_file import GZIP_ABOVE_BYTES, body_for, build_csv
from sf_assets.emarsys.lines import LinesSpec, check_columns, map_lines
from sf_assets.rows import REJECT_SCHEMA

COLUMNS = ["order", "timestamp", "customer", "item", "price", "quantity"]


def spec(price: str = "line_total", columns: list[str] = COLUMNS) -> LinesSpec:
    return LinesSpec("sales", {c: f"src_{c}" for c in columns}, list(columns), price)  # type: ignore[arg-type]


def frame(**overrides: list[object]) -> pl.DataFrame:
    base: dict[str, list[object]] = {
        "src_order": ["A-1", "A-1"],
        "src_timestamp": ["2026-11-22T09:30:00Z", "2026-11-22T09:31:00Z"],
        "src_customer": ["C-1", "C-1"],
        "src_item": ["SKU-1", "SKU-2"],
        "src_price": ["19.98", "5.5"],
        "src_quantity": [2, 1],
    }
    base.update({f"src_{k}": v for k, v in overrides.items()})
    return pl.DataFrame(base, strict=False)


def codes(mapped: pl.DataFrame) -> list[tuple[int, str, str]]:
    return [(r["row"], r["field"], r["code"]) for r in mapped.iter_rows(named=True)]


def test_good_lines_are_formatted_in_column_order() -> None:
    mapped = map_lines(spec(), frame(), "b1")
    assert mapped.rejects.height == 0
    assert mapped.rejects.schema == pl.Schema(REJECT_SCHEMA)
    assert mapped.rows.columns == ["_row", "_key", "_hash", *COLUMNS]
    first = mapped.rows.row(0, named=True)
    assert first["_key"] == "A-1\x1fSKU-1"
    assert first["timestamp"] == "2026-11-22T09:30:00Z"
    assert (first["price"], first["quantity"]) == ("19.98", "2")
    assert mapped.rows["_hash"].n_unique() == 2


def test_unit_price_times_quantity_rounded_to_cents() -> None:
    mapped = map_lines(spec("unit_price"), frame(price=[19.99, 0.1], quantity=[3, 3]), "b1")
    assert mapped.rows["price"].to_list() == ["59.97", "0.30"]


def test_missing_required_values_are_rejected() -> None:
    mapped = map_lines(spec(), frame(order=[None, "A-2"], customer=["C-1", "  "]), "b1")
    assert mapped.rows.height == 0
    assert codes(mapped.rejects) == [
        (1, "order", "MISSING_VALUE"),
        (2, "customer", "MISSING_VALUE"),
    ]
    reason = mapped.rejects["reason"][1]
    assert reason.startswith("sales batch b1 row 2 (key A-2 / SKU-2): column 'src_customer'")


def test_both_customer_and_email_is_a_configuration_problem() -> None:
    columns = ["order", "timestamp", "customer", "email", "item", "price"]
    problems = check_columns(columns, {c: c for c in columns})
    assert any("exactly one of 'customer' and 'email'" in p for p in problems)
    with pytest.raises(ValueError, match="exactly one"):
        map_lines(spec(columns=columns), pl.DataFrame({f"src_{c}": ["x"] for c in columns}), "b")


def test_check_columns_names_every_problem() -> None:
    problems = check_columns(["order", "Price", "colour", "s_ok"], {"order": "o", "x_extra": "x"})
    text = "\n".join(problems)
    for expected in ("lower-case", "type prefix", "neither", "timestamp, item, price", "x_extra"):
        assert expected in text
    assert check_columns(COLUMNS, {c: c for c in COLUMNS}) == []


def test_negative_numbers_are_returns_but_text_is_invalid() -> None:
    mapped = map_lines(spec(), frame(price=["-19.98", "abc"], quantity=["-2", "1x"]), "b1")
    assert mapped.rows["price"].to_list() == ["-19.98"]
    assert mapped.rows["quantity"].to_list() == ["-2"]
    assert codes(mapped.rejects) == [
        (2, "price", "INVALID_NUMBER"),
        (2, "quantity", "INVALID_NUMBER"),
    ]


def test_numbers_never_use_an_exponent() -> None:
    mapped = map_lines(spec(), frame(price=[1e-7, 1.5e9], quantity=[0.5, 1e6]), "b1")
    assert mapped.rows["price"].to_list() == ["0.00", "1500000000.00"]
    assert mapped.rows["quantity"].to_list() == ["0.5", "1000000"]


def test_timestamps_become_utc_and_bad_ones_are_rejected() -> None:
    aware = pl.Series(
        [datetime(2026, 11, 22, 10, 30, tzinfo=UTC)] * 2, dtype=pl.Datetime("us", "Europe/Berlin")
    )
    mapped = map_lines(spec(), frame().with_columns(src_timestamp=aware), "b1")
    assert mapped.rows["timestamp"].to_list() == ["2026-11-22T10:30:00Z"] * 2
    dates = map_lines(spec(), frame(timestamp=[date(2026, 1, 2), date(2026, 1, 3)]), "b1")
    assert dates.rows["timestamp"][0] == "2026-01-02T00:00:00Z"
    texts = ["2026-11-22T11:30:00.5+02:00", "22/11/2026"]
    mapped = map_lines(spec(), frame(timestamp=texts), "b1")
    assert mapped.rows["timestamp"].to_list() == ["2026-11-22T09:30:00Z"]
    assert codes(mapped.rejects) == [(2, "timestamp", "INVALID_TIMESTAMP")]


def test_replacement_character_means_the_text_was_not_utf8() -> None:
    mapped = map_lines(spec(), frame(item=["SKU-1", "Caf\ufffd"]), "b1")
    assert codes(mapped.rejects) == [(2, "item", "INVALID_UTF8")]


def test_every_copy_of_a_duplicate_line_is_rejected() -> None:
    mapped = map_lines(spec(), frame(item=["SKU-1", "SKU-1"]), "b1")
    assert mapped.rows.height == 0
    assert codes(mapped.rejects) == [(1, "item", "DUPLICATE_LINE"), (2, "item", "DUPLICATE_LINE")]


def test_custom_columns_are_typed() -> None:
    columns = [*COLUMNS, "s_channel", "i_store", "f_discount"]
    extra = {"s_channel": ["web", None], "i_store": ["12", "1.5"], "f_discount": [None, "x"]}
    mapped = map_lines(spec(columns=columns), frame(**extra), "b1")
    assert mapped.rows.select("s_channel", "i_store", "f_discount").row(0) == ("web", "12", "")
    assert codes(mapped.rejects) == [
        (2, "f_discount", "INVALID_NUMBER"),
        (2, "i_store", "INVALID_NUMBER"),
    ]


def test_commas_quotes_and_newlines_round_trip_through_the_csv() -> None:
    items = ['Shirt, "blue"\r\nsize\tM', "plain"]
    mapped = map_lines(spec(), frame(item=items), "b1")
    body = build_csv(mapped.rows, COLUMNS)
    text = body.decode("utf-8")
    assert text.startswith(",".join(COLUMNS) + "\n")
    assert "\r" not in text and text.count("\n") == 3
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[1][3] == 'Shirt, "blue" size M'
    assert '"Shirt, ""blue"" size M"' in text


def test_large_bodies_are_gzipped() -> None:
    small, gzipped = body_for(b"a,b\n")
    assert (small, gzipped) == (b"a,b\n", False)
    big = b"x" * (GZIP_ABOVE_BYTES + 1)
    body, gzipped = body_for(big)
    assert gzipped and gzip.decompress(body) == big
