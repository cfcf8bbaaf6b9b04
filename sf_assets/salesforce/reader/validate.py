"""`sf-assets validate` for an ingest spec: every object exists, every field it names can be
read, and its filter compiles against the org's describe, before any read runs."""

from __future__ import annotations

from simple_salesforce import Salesforce

from sf_assets.salesforce.describe import UnknownObjectError, describe_object
from sf_assets.salesforce.preflight import Finding
from sf_assets.salesforce.reader.fields import FieldSelectionError, select_fields
from sf_assets.salesforce.reader.filters import FilterError, compile_filter
from sf_assets.specs.ingest import IngestSpec


def ingest_findings(spec: IngestSpec, client: Salesforce) -> list[Finding]:
    found: list[Finding] = []
    for name, read in spec.read.objects.items():
        try:
            obj = describe_object(client, name)
            select_fields(obj, read, sync=spec.name)
            compile_filter(read.filter, obj, sync=spec.name)
        except (UnknownObjectError, FieldSelectionError, FilterError) as error:
            found.append(
                Finding("error", spec.name, None, str(error).removeprefix(f"sync {spec.name}: "))
            )
    return found
