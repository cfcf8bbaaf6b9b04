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
    commands.add_parser("demo", help="write the sample batches into the sandbox org, twice")
    commands.add_parser("schema", help="print the JSON schema of sync specs (for editors)")
    commands.add_parser(
        "validate", help="check every sync spec against the live org before anything is written"
    )
    emarsys = commands.add_parser("emarsys", help="Emarsys sales-data uploads")
    emarsys_commands = emarsys.add_subparsers(dest="emarsys_command", required=True)
    release = emarsys_commands.add_parser(
        "release",
        help="settle a batch whose upload may or may not have reached Emarsys",
        description="After a lost answer a batch stays uncertain and is never sent again by "
        "itself. Check the merchant's Sales Data page for one of its orders, then say whether "
        "it arrived: --sent records its lines as sent; --not-sent lets the next run upload it.",
    )
    release.add_argument("sync")
    release.add_argument("batch")
    answer = release.add_mutually_exclusive_group(required=True)
    answer.add_argument("--sent", action="store_true", help="Emarsys has the batch")
    answer.add_argument("--not-sent", action="store_true", help="Emarsys does not have it")
    args, rest = parser.parse_known_args(argv)
    if args.command == "sandbox":
        # The sandbox is a separate program: the pipeline only ever reaches it over HTTPS.
        os.execv(sys.executable, [sys.executable, "-m", "sf_sandbox", *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "schema":
        from sf_assets.specs import schema_text

        print(schema_text())
        return 0
    if args.command == "emarsys":
        from sf_assets.cli.release import release_batch

        return release_batch(args.sync, args.batch, sent=args.sent)
    if args.command == "validate":
        from sf_assets.cli.validate import run_validate

        return run_validate()
    from sf_assets.cli.demo import run_demo

    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
