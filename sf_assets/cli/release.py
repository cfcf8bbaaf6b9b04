"""`sf-assets emarsys release SYNC BATCH --sent|--not-sent`: an operator's answer for a batch
whose upload may have reached Emarsys, the one decision sf-assets cannot make by itself."""

from __future__ import annotations

import sys

from sf_assets.connections import staging_from_env
from sf_assets.emarsys.ledger import SalesLedger
from sf_assets.specs import EmarsysSyncSpec, SpecError, load_specs


def release_batch(sync: str, batch: str, *, sent: bool) -> int:
    try:
        specs = {item.spec.name: item.spec for item in load_specs()}
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not isinstance(specs.get(sync), EmarsysSyncSpec):
        print(f"error: no Emarsys sync called {sync!r}", file=sys.stderr)
        return 1
    ledger = SalesLedger(staging_from_env(resolved=True), sync)
    try:
        lines = ledger.release(batch, sent=sent)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if sent:
        print(
            f"{sync} batch {batch}: {lines} lines recorded as sent; they will never be sent again"
        )
    else:
        print(f"{sync} batch {batch}: {lines} lines released; the next run uploads the batch")
    return 0
