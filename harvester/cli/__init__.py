"""The command line: parses arguments, calls the app, prints. Nothing else.

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error (../shared/DESIGN.md,
"Command line"). This package builds the typer app and registers each command; the commands
live by what they do: ``harvesting`` (harvest, backfill, try, parse), ``delivery`` (digest),
``files`` (init, export, feed, dedup, db upgrade), ``daemon`` (run, web, status, check), and
``common`` (the global options, secrets per command, option types, errors to exit codes).

May import anything in harvester (it is the top of the data flow); nothing imports it. The
commands import the heavy parts (the app, the store, the web) inside the function, so
``harvester --help`` and ``harvester parse`` start without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harvester.cli import daemon, delivery, files, harvesting
from harvester.cli.common import SENDING, LogFormat, Options, print_version
from harvester.config import default_config_path
from harvester.logs import configure_logging

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="harvester: new studies on your topics from the public bibliographic APIs.",
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration file [default: $HARVESTER_CONFIG or config/harvester.toml]",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Database URL [default: $HARVESTER_DATABASE_URL or the config]"
        ),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--log-format", help="json or console [default: console on a terminal]"),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=print_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    configure_logging(log_format.value if log_format else None)
    # the group callback knows the subcommand but not its options: `digest --dry-run` says
    # itself that it sends nothing (Options.settings(sending=False))
    command = ctx.invoked_subcommand
    sending = command in SENDING
    ctx.obj = Options(
        config or default_config_path(), database_url, log_format, command=command, sending=sending
    )


# in the order `harvester --help` has always listed them
app.command()(files.init)
app.command()(harvesting.harvest)
app.command()(harvesting.parse)
app.command()(files.export)
app.command()(files.feed)
app.command()(delivery.digest)
app.command()(daemon.run)
app.command()(daemon.status)
app.command()(harvesting.backfill)
app.command()(files.dedup)
db_app.command("upgrade")(files.db_upgrade)
app.command("try")(harvesting.try_)
app.command()(daemon.check)
app.command()(daemon.web)


def main() -> None:
    app(prog_name="harvester")
