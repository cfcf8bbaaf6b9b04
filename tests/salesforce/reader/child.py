"""A read in its own process, for tests that kill it from outside at a chosen step.

python -m tests.salesforce.reader.child INFO_FILE ROOT SPEC_JSON OBJECT [OPTIONS_JSON]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sf_assets.specs.ingest import IngestSpec
from tests.salesforce.reader.conftest import Org, Reading


def main() -> None:
    info_file, root, spec_json, sobject, *rest = sys.argv[1:]
    org = Org(json.loads(Path(info_file).read_text()))
    options = json.loads(rest[0]) if rest else {}
    spec = IngestSpec.model_validate_json(spec_json)
    Reading(Path(root), org).read(spec, sobject, **options)


if __name__ == "__main__":
    main()
