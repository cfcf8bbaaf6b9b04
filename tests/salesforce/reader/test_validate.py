"""`sf-assets validate` on an ingest spec names each object, field or filter the org cannot
serve, before any read runs."""

from __future__ import annotations

from sf_assets.salesforce.reader.validate import ingest_findings
from tests.salesforce.reader.conftest import ingest_spec


def test_a_spec_the_org_can_serve_has_no_findings(sf):
    spec = ingest_spec(
        {
            "Contact": {
                "fields": ["Email"],
                "filter": [{"field": "Email", "op": "like", "value": "%@x.com"}],
            },
            "Lead": {},
        }
    )
    assert ingest_findings(spec, sf) == []


def test_unknown_objects_fields_and_bad_filters_are_each_named(sf):
    spec = ingest_spec(
        {
            "Contct": {},
            "Contact": {"fields": ["Emial"]},
            "Lead": {"filter": [{"field": "CreatedDate", "op": ">", "value": "yesterday"}]},
        }
    )
    lines = [f.line() for f in ingest_findings(spec, sf)]
    assert len(lines) == 3
    assert "Salesforce object 'Contct' does not exist" in lines[0] and "Contact" in lines[0]
    assert "Contact has no field 'Emial'" in lines[1] and "did you mean Email" in lines[1]
    assert "filter on Lead.CreatedDate" in lines[2] and "ISO 8601" in lines[2]
