"""`people`: Contacts and Leads merged into one row per person, from the raw copies.

Each run takes the records whose copies changed since the last run (by `_sf_seq`), in the order
Salesforce changed them (SystemModstamp, then Contacts before Leads, then Id), and merges them
one at a time, exactly as if they had arrived one by one:

1. A record merged before goes to its person again (`people_sources` links every record to
   its person), whatever its keys say now.
2. Otherwise it matches a person by key: the primary key first (e.g. Email), then the
   fallback (e.g. Phone): with `any_key` whenever the primary found no one, with
   `previous_key_empty` only when the record has no primary key at all.
3. Otherwise it becomes a new person, subscribed to email per the spec (never when the record
   opted out), never to SMS.

A matched person changes by the spec's strategy (see strategy.py). An opt-out in Salesforce
always unsubscribes the person from email; an opt-in never subscribes an existing person. A
deleted record, or one that left the filter, is unlinked; a person with no current record is
kept with `active` false. Only the people a run touches are read and written, so a run after a
few changes stays small whatever the size of the table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from sf_assets.merge.keys import normalized
from sf_assets.merge.strategy import merged
from sf_assets.merge.tables import MergeReport, Source, selected_columns, upsert
from sf_assets.salesforce.reader.warehouse import ARCHIVED, DELETED, ORG, SEQ, Warehouse
from sf_assets.specs.ingest import PeopleMerge
from sf_assets.sql import quote_identifier, table_exists

ORDER = {"Contact": 0, "Lead": 1}
OPT_OUT = "HasOptedOutOfEmail"


@dataclass
class _State:
    """The people and links one run may touch, indexed by key."""

    people: dict[str, dict[str, Any]]
    links: dict[tuple[str, str, str], dict[str, Any]]
    by_key1: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_key2: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    changed_people: set[str] = field(default_factory=set)
    changed_links: set[tuple[str, str, str]] = field(default_factory=set)

    def index(self, person_id: str) -> None:
        person = self.people[person_id]
        if person["_key1"]:
            self.by_key1[person["_key1"]].add(person_id)
        if person["_key2"]:
            self.by_key2[person["_key2"]].add(person_id)

    def unindex(self, person_id: str) -> None:
        person = self.people[person_id]
        self.by_key1.get(person["_key1"] or "", set()).discard(person_id)
        self.by_key2.get(person["_key2"] or "", set()).discard(person_id)


class People:
    """The `people` and `people_sources` tables of one warehouse schema."""

    def __init__(self, config: PeopleMerge, warehouse: Warehouse, schema: str = "main") -> None:
        self.config = config
        self.warehouse = warehouse
        self.schema = schema
        self.columns = config.columns
        self.primary, self.fallback = config.keys.primary, config.keys.fallback

    @property
    def table(self) -> str:
        return f"{quote_identifier(self.schema)}.people"

    @property
    def links_table(self) -> str:
        return f"{quote_identifier(self.schema)}.people_sources"

    def merge(self, sources: Iterable[Source], since: dict[str, int]) -> MergeReport:
        """Merge every record changed after `since` (per object) into the tables."""
        report = MergeReport()
        now = datetime.now(UTC)
        with self.warehouse.transaction() as connection:
            self._ensure(connection)
            incoming = self._incoming(connection, list(sources), since, report)
            if incoming.is_empty():
                return report
            state = self._state(connection, incoming)
            for record in incoming.iter_rows(named=True):
                self._merge_one(state, record, now, report)
            self._write(connection, state, incoming)
        report.records = incoming.height
        return report

    # -- reading -------------------------------------------------------------------------------

    def _incoming(
        self,
        connection: duckdb.DuckDBPyConnection,
        sources: list[Source],
        since: dict[str, int],
        report: MergeReport,
    ) -> pl.DataFrame:
        frames = []
        for source in sources:
            if not table_exists(connection, source.schema, source.name):
                continue
            account = ["AccountId"] if source.object == "Contact" else []
            selected = selected_columns(
                connection, source.table, [*self.columns, OPT_OUT, *account]
            )
            frame = connection.sql(
                f"SELECT Id, SystemModstamp, {ORG}, {SEQ}, "
                f"coalesce({DELETED}, false) OR coalesce({ARCHIVED}, false) AS _gone, "
                f"{selected} FROM {source.table} WHERE {SEQ} > ?",
                params=[since.get(source.object, 0)],
            ).pl()
            if frame.height:
                report.seen[source.object] = int(frame[SEQ].max())  # type: ignore[arg-type]
            frames.append(frame.with_columns(pl.lit(source.object).alias("_object")))
        if not frames:
            return pl.DataFrame()
        incoming = pl.concat(frames, how="diagonal_relaxed")
        if "AccountId" not in incoming.columns:
            incoming = incoming.with_columns(pl.lit(None, pl.Utf8).alias("AccountId"))
        return incoming.with_columns(
            pl.col("_object").replace_strict(ORDER, default=9).alias("_rank"),
            pl.col(self.primary).map_elements(normalized, return_dtype=pl.Utf8).alias("_key1"),
            (
                pl.col(self.fallback).map_elements(normalized, return_dtype=pl.Utf8)
                if self.fallback
                else pl.lit(None, pl.Utf8)
            ).alias("_key2"),
        ).sort("SystemModstamp", "_rank", "Id")

    def _state(self, connection: duckdb.DuckDBPyConnection, incoming: pl.DataFrame) -> _State:
        """The links of the incoming records, and every person they could reach."""
        connection.register(
            "incoming_keys",
            incoming.select(
                pl.col(ORG).alias("org_id"),
                pl.col("_object").alias("object"),
                pl.col("Id").alias("record_id"),
                "_key1",
                "_key2",
            ).to_arrow(),
        )
        links = connection.sql(
            f"SELECT l.* FROM {self.links_table} l JOIN incoming_keys k "
            "USING (org_id, object, record_id)"
        ).pl()
        if not table_exists(connection, self.schema, "people"):
            return _State(people={}, links=_by_key(links))
        people = connection.sql(
            f"SELECT * FROM {self.table} WHERE person_id IN (SELECT person_id FROM ("
            f"SELECT l.person_id FROM {self.links_table} l JOIN incoming_keys k "
            "USING (org_id, object, record_id)) AS linked) "
            "OR _key1 IN (SELECT _key1 FROM incoming_keys) "
            "OR _key2 IN (SELECT _key2 FROM incoming_keys)"
        ).pl()
        state = _State(
            people={row["person_id"]: row for row in people.iter_rows(named=True)},
            links=_by_key(links),
        )
        for person_id in state.people:
            state.index(person_id)
        return state

    # -- merging -------------------------------------------------------------------------------

    def _merge_one(
        self, state: _State, record: dict[str, Any], now: datetime, report: MergeReport
    ) -> None:
        key = (record[ORG], record["_object"], record["Id"])
        link = state.links.get(key)
        if record["_gone"]:
            if link is not None and link["current"]:
                state.links[key] = {**link, "current": False, "updated_at": now}
                state.changed_links.add(key)
                state.changed_people.add(link["person_id"])
                report.unlinked += 1
            return
        person_id = link["person_id"] if link is not None else self._match(state, record)
        if person_id is None:
            person_id = self._create(state, record, now)
            report.created += 1
        else:
            if self._update(state, person_id, record, now):
                report.updated += 1
        if link is None or not link["current"] or link["person_id"] != person_id:
            state.links[key] = {
                "org_id": key[0],
                "object": key[1],
                "record_id": key[2],
                "person_id": person_id,
                "current": True,
                "linked_at": link["linked_at"] if link else now,
                "updated_at": now,
            }
            state.changed_links.add(key)
            state.changed_people.add(person_id)

    def _match(self, state: _State, record: dict[str, Any]) -> str | None:
        key1, key2 = record["_key1"], record["_key2"]
        if key1 and state.by_key1.get(key1):
            return min(state.by_key1[key1])
        fallback_allowed = self.config.keys.match == "any_key" or not key1
        if key2 and fallback_allowed and state.by_key2.get(key2):
            return min(state.by_key2[key2])
        return None

    def _create(self, state: _State, record: dict[str, Any], now: datetime) -> str:
        person_id = f"{record[ORG]}:{record['Id']}"
        state.people[person_id] = {
            "person_id": person_id,
            **{c: record[c] for c in self.columns},
            "organization_key": _organization(record),
            "email_opt_in": self.config.email_opt_in and not record[OPT_OUT],
            "sms_opt_in": False,
            "active": True,
            "_key1": record["_key1"],
            "_key2": record["_key2"],
            "created_at": now,
            "updated_at": now,
        }
        state.index(person_id)
        state.changed_people.add(person_id)
        return person_id

    def _update(self, state: _State, person_id: str, record: dict[str, Any], now: datetime) -> bool:
        current = state.people[person_id]
        incoming = {**record, "organization_key": _organization(record)}
        columns = [*self.columns, "organization_key"]
        after = merged(current, incoming, columns, self.config.strategy)
        if record[OPT_OUT]:
            after["email_opt_in"] = False
        after["_key1"] = normalized(after[self.primary])
        after["_key2"] = normalized(after[self.fallback]) if self.fallback else None
        if after == current:
            return False
        state.unindex(person_id)
        state.people[person_id] = {**after, "updated_at": now}
        state.index(person_id)
        state.changed_people.add(person_id)
        return True

    # -- writing -------------------------------------------------------------------------------

    def _write(
        self, connection: duckdb.DuckDBPyConnection, state: _State, incoming: pl.DataFrame
    ) -> None:
        current_by_person: dict[str, bool] = defaultdict(bool)
        for link in state.links.values():
            current_by_person[link["person_id"]] |= bool(link["current"])
        touched = sorted(state.changed_people)
        if touched:
            elsewhere = self._current_links_elsewhere(connection, touched, state)
            for person_id in touched:
                active = current_by_person[person_id] or person_id in elsewhere
                state.people[person_id]["active"] = active
            schema = self._people_schema(incoming)
            rows = pl.DataFrame([state.people[p] for p in touched], schema=schema)
            upsert(connection, self.table, rows, ("person_id",))
        if state.changed_links:
            links = [state.links[k] for k in sorted(state.changed_links)]
            upsert(
                connection,
                self.links_table,
                pl.DataFrame(links, schema=LINK_SCHEMA),
                ("org_id", "object", "record_id"),
            )

    def _current_links_elsewhere(
        self, connection: duckdb.DuckDBPyConnection, people: list[str], state: _State
    ) -> set[str]:
        """People among `people` with a current record this run did not load."""
        connection.register("touched", pl.DataFrame({"person_id": people}).to_arrow())
        rows = connection.sql(
            f"SELECT org_id, object, record_id, person_id FROM {self.links_table} "
            "WHERE current AND person_id IN (SELECT person_id FROM touched)"
        ).fetchall()
        return {row[3] for row in rows if tuple(row[:3]) not in state.links}

    def _people_schema(self, incoming: pl.DataFrame) -> dict[str, pl.DataType]:
        return {
            "person_id": pl.Utf8(),
            **{
                c: incoming.schema[c] if incoming.schema[c] != pl.Null else pl.Utf8()
                for c in self.columns
            },
            "organization_key": pl.Utf8(),
            "email_opt_in": pl.Boolean(),
            "sms_opt_in": pl.Boolean(),
            "active": pl.Boolean(),
            "_key1": pl.Utf8(),
            "_key2": pl.Utf8(),
            "created_at": pl.Datetime("us", "UTC"),
            "updated_at": pl.Datetime("us", "UTC"),
        }

    def _ensure(self, connection: duckdb.DuckDBPyConnection) -> None:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(self.schema)}")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {self.links_table} (org_id VARCHAR NOT NULL, "
            "object VARCHAR NOT NULL, record_id VARCHAR NOT NULL, person_id VARCHAR NOT NULL, "
            "current BOOLEAN, linked_at TIMESTAMPTZ, updated_at TIMESTAMPTZ)"
        )


LINK_SCHEMA: dict[str, pl.DataType] = {
    "org_id": pl.Utf8(),
    "object": pl.Utf8(),
    "record_id": pl.Utf8(),
    "person_id": pl.Utf8(),
    "current": pl.Boolean(),
    "linked_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
}


def _by_key(links: pl.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["org_id"], r["object"], r["record_id"]): r for r in links.iter_rows(named=True)}


def _organization(record: dict[str, Any]) -> str | None:
    account = record.get("AccountId")
    return f"{record[ORG]}:{account}" if account else None
