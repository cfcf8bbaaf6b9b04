"""`python -m sf_sandbox`: run the sandbox org in the foreground (what `sf-assets sandbox` starts)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from sf_sandbox.faults import FaultConfig
from sf_sandbox.org import Org
from sf_sandbox.server import SandboxServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sf-assets sandbox",
        description="A local Salesforce org (REST, Bulk API 2.0, Metadata API, OAuth/SOAP login) "
        "and Emarsys sales-data endpoint, served over HTTPS on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--schema", type=Path, help="org schema YAML (default: the demo org)")
    parser.add_argument("--state", type=Path, help="DuckDB file that keeps records across restarts")
    parser.add_argument("--faults", type=Path, help="YAML or JSON file of faults to inject")
    parser.add_argument(
        "--info-file", type=Path, required=True, help="where to write the connection details (JSON)"
    )
    return parser.parse_args(argv)


def load_faults(path: Path | None) -> FaultConfig | None:
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return FaultConfig.model_validate(data or {})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        faults = load_faults(args.faults)
    except (OSError, ValidationError, ValueError, yaml.YAMLError) as error:
        print(f"sandbox: cannot use the faults file {args.faults}: {error}", file=sys.stderr)
        return 2
    if args.schema is not None and not args.schema.is_file():
        print(f"sandbox: no schema file at {args.schema}", file=sys.stderr)
        return 2
    # uvicorn hands a caught SIGTERM back to the previous handler once it has shut down; make
    # that handler unwind normally so the info file is removed and the state file closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    org = Org(schema_path=args.schema, state_path=args.state, faults=faults)
    server = SandboxServer(org, port=args.port, workdir=args.info_file.resolve().parent)
    try:
        server.run(info_file=args.info_file)
    finally:
        org.close()
        args.info_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
