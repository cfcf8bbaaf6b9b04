"""The upload body: the mapped lines as the CSV Emarsys expects, built by polars in one go.

UTF-8, comma, header first, LF line ends, quotes only where a value needs them (a quote inside
is doubled). Newlines never need quoting because `lines` already replaced them: Emarsys refuses
a newline inside a field even when quoted. Large bodies are gzipped, which the endpoint accepts
and which cuts upload time on slow links far more than it costs to compress.
"""

from __future__ import annotations

import gzip
import io

import polars as pl

GZIP_ABOVE_BYTES: int = 1_000_000
GZIP_LEVEL = 6


def build_csv(rows: pl.DataFrame, columns: list[str]) -> bytes:
    """The CSV of `columns` (in that order) of the mapped text rows, header included."""
    buffer = io.BytesIO()
    rows.select(columns).write_csv(
        buffer, include_header=True, separator=",", line_terminator="\n", quote_style="necessary"
    )
    return buffer.getvalue()


def body_for(csv: bytes) -> tuple[bytes, bool]:
    """The bytes to POST and whether they are gzipped (only above GZIP_ABOVE_BYTES)."""
    if len(csv) <= GZIP_ABOVE_BYTES:
        return csv, False
    return gzip.compress(csv, compresslevel=GZIP_LEVEL, mtime=0), True
