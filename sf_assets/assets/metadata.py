"""Metadata helpers every asset factory uses: samples, counts, the field mapping."""

from __future__ import annotations

import polars as pl

from sf_assets.salesforce.describe import ObjectInfo
from sf_assets.specs import SyncSpec

SAMPLE_ROWS = 10


def markdown_table(frame: pl.DataFrame, limit: int = SAMPLE_ROWS) -> str:
    if frame.is_empty():
        return "_none_"
    head = frame.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        cells = ["" if v is None else str(v).replace("|", "\\|").replace("\n", " ") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more_")
    return "\n".join(lines)


def mapping_table(spec: SyncSpec, obj: ObjectInfo | None = None) -> str:
    lines = ["| source column | Salesforce field | type |", "|---|---|---|"]
    for field_name, column in spec.mapping.items():
        info = obj.field(field_name) if obj else None
        lines.append(
            f"| {column} | {spec.target.object}.{field_name} | {info.type if info else ''} |"
        )
    return "\n".join(lines)


def counts_by(frame: pl.DataFrame, column: str) -> dict[str, int]:
    if frame.is_empty():
        return {}
    grouped = frame.group_by(column).len().sort("len", descending=True)
    return {str(k): int(n) for k, n in grouped.iter_rows()}


def source_label(spec: SyncSpec) -> str:
    source = spec.source
    for attribute in ("table", "parquet", "csv"):
        value = getattr(source, attribute, None)
        if value:
            return value
    return "a SQL query"
