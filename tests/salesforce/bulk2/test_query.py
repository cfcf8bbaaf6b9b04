"""Bulk API 2.0 query jobs against the sandbox org over HTTPS: result pages are asked for
ahead of the caller."""

from __future__ import annotations

import io
import logging
import time

import polars as pl

from sf_assets.cli.local_org import salesforce_resource
from sf_assets.salesforce.api import Api
from sf_assets.salesforce.bulk2 import query
from tests.salesforce.reader.conftest import FAST, Org

LOG = logging.getLogger("tests.bulk2")


def test_the_next_result_page_is_asked_for_while_the_caller_holds_one(sandbox, monkeypatch):
    info = sandbox.info()
    org = Org(info)
    ids = org.seed("Contact", [{"LastName": f"Fan {i}"} for i in range(5)])
    monkeypatch.setattr(query, "PAGE_RECORDS", 2)  # three pages
    with Api(salesforce_resource(info), LOG, FAST) as api:
        job_id = query.create(api, "SELECT Id FROM Contact")
        query.poll(api, job_id, "nothing to clean up")
        before = org.calls()
        pages = query.pages_from(api, job_id, None)
        first = next(pages)
        deadline = time.monotonic() + 10
        while org.calls() < before + 2:  # the page held, and the one after it
            assert time.monotonic() < deadline, "the second page was only asked for when wanted"
            time.sleep(0.05)
        rest = list(pages)
    assert org.calls() == before + 3
    assert [following is None for _, following in [first, *rest]] == [False, False, True]
    read = pl.concat(pl.read_csv(io.BytesIO(body)) for body, _ in [first, *rest])
    assert sorted(read["Id"]) == sorted(ids)
