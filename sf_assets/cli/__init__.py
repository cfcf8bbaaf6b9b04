"""The `sf-assets` command. Every subcommand reads the same settings as `dg dev`: the
environment, then `.env` in the project folder for what the environment does not set."""

from __future__ import annotations

import argparse
import os
import sys

from sf_assets.connections import load_env_file
from sf_assets.project import PROJECT_VARIABLE

DEFAULT_UI_PORT = 3000


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sf-assets",
        description="Keep Salesforce and Emarsys in step with your own data, as Dagster assets.",
    )
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "sandbox",
        help="run a local Salesforce org over HTTPS (see `sf-assets sandbox --help`)",
        add_help=False,
    )
    demo = commands.add_parser("demo", help="write the sample batches into the sandbox org, twice")
    demo.add_argument("--org-port", type=int, default=0, help="sandbox org port (default: free)")
    ui = commands.add_parser(
        "ui",
        help="browse the demo in the Dagster UI: the sandbox org on the demo's state + dg dev",
    )
    ui.add_argument("--port", type=int, default=DEFAULT_UI_PORT, help="Dagster UI port")
    ui.add_argument("--org-port", type=int, default=0, help="sandbox org port (default: free)")
    commands.add_parser("schema", help="print the JSON schema of sync specs (for editors)")
    commands.add_parser(
        "validate", help="check every sync spec against the live org before anything is written"
    )
    describe = commands.add_parser(
        "describe", help="an object's fields as the org describes them (types, required, keys)"
    )
    describe.add_argument("object", help="API name, e.g. Lead or Checkout__c")
    describe.add_argument("--connection", default="default", help="Salesforce connection name")
    add_init(commands)
    plan = commands.add_parser(
        "plan", help="what a run of a batch would create, update, leave or reject; writes nothing"
    )
    plan.add_argument("sync")
    plan.add_argument("--batch", help="batch id (default: the next batch the sensor would run)")
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
    return top


def add_init(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = commands.add_parser(
        "init",
        help="scaffold a sync from a table or files: columns matched to the object's fields",
    )
    init.add_argument("name", help="sync name, e.g. leads_to_salesforce")
    init.add_argument("--object", required=True, help="target sObject, e.g. Lead")
    init.add_argument("--duckdb", help="DuckDB file (with --table or --sql)")
    init.add_argument("--table", help="table or view in the DuckDB file")
    init.add_argument("--sql", help="a SELECT on the DuckDB file")
    init.add_argument("--csv", help="glob of CSV files")
    init.add_argument("--parquet", help="glob of Parquet files")
    init.add_argument("--batch-column", help="column whose values key batches")
    init.add_argument(
        "--no-batches", action="store_true", help="write the dataset whole (changed rows only)"
    )
    init.add_argument("--match-on", help="field that identifies a record (default: proposed)")
    init.add_argument(
        "--operation", default="upsert", choices=["upsert", "insert", "update", "delete"]
    )
    init.add_argument("--connection", default="default", help="Salesforce connection name")
    init.add_argument("--force", action="store_true", help="replace an existing spec file")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, rest = parser().parse_known_args(argv)
    if args.command == "sandbox":
        # The sandbox is a separate program: the pipeline only ever reaches it over HTTPS.
        os.execv(sys.executable, [sys.executable, "-m", "sf_sandbox", *rest])
    if rest:
        parser().error(f"unrecognized arguments: {' '.join(rest)}")
    # A command acts on the folder it is run in, and so does everything it starts.
    os.environ.setdefault(PROJECT_VARIABLE, os.getcwd())
    load_env_file()
    return run(args)


def run(args: argparse.Namespace) -> int:
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
    if args.command == "describe":
        from sf_assets.cli.describe import run_describe

        return run_describe(args.object, args.connection)
    if args.command == "init":
        from sf_assets.cli.init import request_from, run_init

        return run_init(request_from(args))
    if args.command == "plan":
        from sf_assets.cli.plan import run_plan

        return run_plan(args.sync, args.batch)
    if args.command == "ui":
        from sf_assets.cli.ui import run_ui

        return run_ui(ui_port=args.port, org_port=args.org_port)
    from sf_assets.cli.demo import run_demo

    return run_demo(org_port=args.org_port)


if __name__ == "__main__":
    sys.exit(main())
