"""Entry point: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from vppctl import settings

app = typer.Typer(
    name="vppctl",
    help="Trade energy inside a virtual power plant on Hyperledger Fabric.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_EPILOG = """Examples:

  vppctl demo paper                          # the paper's case, end to end

  vppctl bid --agg 3 --side buy --qty 285.6 --price 0.713 --reserve 0.736

  vppctl orders --output json

  vppctl clear --period 13 --close           # as vppo-admin

  vppctl clear book_t02.csv --period 2 --offline

Errors are one line on stderr; exit codes: 1 refused or failed, 2 bad input,
3 network unreachable or not set up. docs/cli.md has the full reference.
"""


@app.callback(epilog=_EPILOG)
def main(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the full traceback of any error."),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="PATH",
            envvar="VPP_PROFILE",
            help="Connection profile (file or folder); default $VPP_HOME or .fabric/network.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Trade energy inside a virtual power plant on Hyperledger Fabric.

    Traders bid, sign and watch; the VPPO (vppo-admin) opens periods, clears,
    settles and closes days; meters record deliveries on their aggregator's
    channel. Offline:  vppctl clear book.csv --period 2 --offline
    """
    settings.reset(debug=debug, profile=profile)


# In --help order within each panel (commands list in the order they register).
COMMAND_MODULES = (
    "commands_orders",  # bid, orders, cancel
    "commands_contracts",  # contracts, sign, void
    "commands_admin",  # register, tou, topology
    "commands_period",  # period open|close|show|list
    "commands_clear",  # clear
    "commands_settle",  # anchor, settle, settlements
    "commands_day",  # day close
    "commands_reputation",  # reputation, wallet, aggregators
    "commands_watch",  # watch
    "commands_meter",  # meter register|read|seal|readings|summary|resources
    "commands_demo",  # demo paper
    "commands_network",  # network status
    "commands_info",  # version, ping, history, identities
)


def _register_commands() -> None:
    # Imported for their side effect of adding commands to `app`.
    for name in COMMAND_MODULES:
        importlib.import_module(f"vppctl.{name}")


_register_commands()
