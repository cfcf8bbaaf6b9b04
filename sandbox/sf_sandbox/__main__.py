"""`python -m sf_sandbox`: run the sandbox org in the foreground (what `sf-assets sandbox` starts)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from sf_sandbox.faults import FaultConfig
from sf_sandbox.org import Org
from sf_sandbox.server import SandboxServer
from sf_sandbox.timing import PROFILES, Timing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sf-assets sandbox",
        description="A local Salesforce org (REST, Bulk API 2.0, Metadata API, OAuth/SOAP login) "
        "and Emarsys sales-data endpoint, served over HTTPS on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--schema", type=Path, help="org schema YAML (default: the demo org)")
    parser.add_argument("--state", type=Path, help="DuckDB file that keeps records across restarts")
    parser.add_argument(
        "--faults",
        type=Path,
        help="YAML or JSON file of org settings: faults to inject, retention windows, and "
        "`timing:` (a profile name or timing fields)",
    )
    parser.add_argument(
        "--timing",
        choices=sorted(PROFILES),
        help="how long the org takes to answer (default: the file's `timing`, else realistic)",
    )
    parser.add_argument(
        "--info-file", type=Path, required=True, help="where to write the connection details (JSON)"
    )
    return parser.parse_args(argv)


def load_settings(path: Path | None) -> tuple[FaultConfig | None, Timing | None]:
    """The faults and the timing a settings file names; the timing lives under `timing:`."""
    if path is None:
        return None, None
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    data = dict(data or {})
    timing = data.pop("timing", None)
    return FaultConfig.model_validate(data), (
        Timing.from_setting(timing) if timing is not None else None
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # The state file, its write-ahead log, the info file and the keys hold credentials.
    os.umask(0o077)
    try:
        faults, timing = load_settings(args.faults)
    except (OSError, ValidationError, ValueError, TypeError, yaml.YAMLError) as error:
        print(f"sandbox: cannot use the faults file {args.faults}: {error}", file=sys.stderr)
        return 2
    if args.timing is not None:
        timing = Timing.of(args.timing)
    if args.schema is not None and not args.schema.is_file():
        print(f"sandbox: no schema file at {args.schema}", file=sys.stderr)
        return 2
    # uvicorn hands a caught SIGTERM back to the previous handler once it has shut down; make
    # that handler unwind normally so the info file is removed and the state file closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    org = Org(
        schema_path=args.schema,
        state_path=args.state,
        faults=faults,
        timing=timing or Timing.of("realistic"),
    )
    server = SandboxServer(org, port=args.port, workdir=args.info_file.resolve().parent)
    try:
        server.run(info_file=args.info_file)
    finally:
        org.close()
        args.info_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
