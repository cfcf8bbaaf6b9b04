"""Emarsys specs: order lines uploaded as Smart Insight sales data."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from sf_assets.specs.base import DatasetSync
from sf_assets.specs.common import NAME_PATTERN, SpecModel

EMARSYS_STANDARD_COLUMNS = ("order", "timestamp", "customer", "email", "item", "price", "quantity")


class EmarsysTarget(SpecModel):
    """Smart Insight sales data: one CSV upload per batch, in the column order agreed with the
    merchant's Emarsys account."""

    emarsys: str = Field("default", pattern=NAME_PATTERN, description="Emarsys connection name.")
    sales_data: Literal[True] = Field(description="The sales-data API (the only one supported).")
    columns: list[str] = Field(
        min_length=1,
        description="Header of the file, in the order configured for the merchant: standard "
        "columns (order, timestamp, customer or email, item, price, quantity) and custom ones "
        "with a type prefix (s_, i_, f_).",
    )
    price: Literal["line_total", "unit_price"] = Field(
        "line_total",
        description="What the mapped price column holds; Emarsys wants the line total, so unit "
        "prices are multiplied by the quantity.",
    )


class EmarsysSyncSpec(DatasetSync):
    """A sales-data upload into Emarsys."""

    kind: ClassVar[str] = "emarsys"
    target: EmarsysTarget
    mapping: dict[str, str] = Field(min_length=1, description="Emarsys column -> source column.")

    @model_validator(mode="after")
    def columns_are_mapped(self) -> EmarsysSyncSpec:
        unmapped = [c for c in self.target.columns if c not in self.mapping]
        unknown = [c for c in self.mapping if c not in self.target.columns]
        if unmapped or unknown:
            raise ValueError(
                "mapping and target.columns must name the same columns"
                + (f"; not mapped: {', '.join(unmapped)}" if unmapped else "")
                + (f"; not in columns: {', '.join(unknown)}" if unknown else "")
            )
        if "order" not in self.mapping:
            raise ValueError("the `order` column must be mapped")
        return self

    @property
    def key_column(self) -> str:
        """An order line is identified by its order and item; the order column names it."""
        return self.source.key or self.mapping["order"]

    @property
    def connection(self) -> str:
        return self.target.emarsys
