"""The `sf-assets` command."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="sf-assets",
        description="Keep Salesforce and Emarsys in step with your own data, as Dagster assets.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "sandbox",
        help="run a local Salesforce org over HTTPS (see `sf-assets sandbox --help`)",
        add_help=False,
    )
    commands.add_parser("demo", help="start the sandbox org and drive it end to end")
    args, rest = parser.parse_known_args(argv)
    if args.command == "sandbox":
        # The sandbox is a separate program: the pipeline only ever reaches it over HTTPS.
        os.execv(sys.executable, [sys.executable, "-m", "sandbox", *rest])
    from sf_assets.demo import run_demo

    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
