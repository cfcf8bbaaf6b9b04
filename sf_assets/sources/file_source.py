"""Reading Parquet or CSV files matched by a glob, lazily, in path order."""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl

from sf_assets.sources.schema import DatasetError, Schema, checked_schema, listing
from sf_assets.specs import FileSource, LoadedSpec

T = TypeVar("T")


class FileReader:
    def __init__(self, loaded: LoadedSpec, source: FileSource) -> None:
        self._spec = loaded.spec
        self._format = "parquet" if source.parquet is not None else "csv"
        self._pattern = source.parquet if source.parquet is not None else source.csv or ""
        self._glob = loaded.resolve(self._pattern)

    def schema(self) -> Schema:
        return checked_schema(self._spec, self.found_columns())

    def found_columns(self) -> Schema:
        return dict(self._read(lambda: self._scan().collect_schema()))

    def batch_ids(self, column: str) -> list[str]:
        self.schema()
        ids = self._scan().select(pl.col(column).cast(pl.Utf8)).drop_nulls().unique()
        return self._read(ids.collect).to_series().to_list()

    def rows(self, column: str | None, batch_id: str | None) -> pl.DataFrame:
        self.schema()
        scan = self._scan()
        if column is not None and batch_id is not None:
            scan = scan.filter(pl.col(column).cast(pl.Utf8) == batch_id)
        return self._read(scan.collect)

    def _scan(self) -> pl.LazyFrame:
        """All matching files as one lazy frame, in path order."""
        files = self._matches()
        if not files:
            raise DatasetError(
                f"{self._spec.name}: no {self._format} files match {self._pattern!r} "
                f"(looked for {self._glob})"
            )
        return self._read(lambda: self._scan_files(files))

    def _scan_files(self, files: list[str]) -> pl.LazyFrame:
        if self._format == "parquet":
            return pl.scan_parquet(files)
        # Every CSV cell stays text: types are the mapper's business, and guessing from the first
        # rows would fail on the row that does not fit. Invalid UTF-8 becomes U+FFFD so the row
        # survives for the mapper to reject with the column named.
        return pl.scan_csv(files, infer_schema=False, encoding="utf8-lossy")

    def _matches(self) -> list[str]:
        return sorted(
            name for name in glob.glob(str(self._glob), recursive=True) if Path(name).is_file()
        )

    def _read(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except (pl.exceptions.PolarsError, OSError) as error:
            raise DatasetError(
                f"{self._spec.name}: cannot read {self._format} files {self._pattern!r}: "
                f"{error}{self._culprit()}"
            ) from None

    def _culprit(self) -> str:
        """Which file to look at after a failed read: the first that fails alone or whose columns
        differ from the first file's (polars' own message does not say)."""
        expected = None
        for name in self._matches():
            try:
                schema = self._scan_files([name]).collect_schema()
            except (pl.exceptions.PolarsError, OSError):
                return f" (in {name})"
            if expected is not None and schema != expected:
                return (
                    f" (in {name}: columns {listing(list(schema))}, not {listing(list(expected))})"
                )
            expected = schema
        return ""
