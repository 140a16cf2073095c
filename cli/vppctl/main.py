"""Entry point: the ``vppctl`` Typer app, assembled from one command module per group.

How a command group is added (the pattern every ``commands_*.py`` follows):

1. ``cli/vppctl/commands_<group>.py`` creates its own command set,
   ``commands = typer.Typer()``, and registers on it, never on this app:
   top-level commands with ``@command(commands, "bid", epilog=...)``
   (``registry.command`` adds the one-line error handling), a sub-command
   group as a named Typer added to the set, e.g.
   ``grid_app = typer.Typer(name="grid", help=..., no_args_is_help=True)``,
   ``commands.add_typer(grid_app, rich_help_panel=registry.OPERATOR)`` and
   ``@command(grid_app, "show", path="grid show")``.
2. Importing a command module has no effect on this app; it is added here,
   by listing the module in ``COMMAND_MODULES`` (``--help`` lists commands
   in that order).
3. Code that more than one command (or the demo) needs does not live in a
   command module: ledger reads and multi-step actions are in
   ``vppctl.market_ops``, option types in ``vppctl.options``, period
   parsing in ``vppctl.periods``, printing in ``vppctl.output``. Command
   modules import those, never each other.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from vppctl import (
    commands_admin,
    commands_capacity,
    commands_clear,
    commands_contracts,
    commands_day,
    commands_demo,
    commands_devices,
    commands_grid,
    commands_identity,
    commands_info,
    commands_meter,
    commands_network,
    commands_orders,
    commands_period,
    commands_reputation,
    commands_settle,
    commands_simulate,
    commands_watch,
    settings,
)

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


# In --help order within each panel (commands list in the order they are added).
COMMAND_MODULES: tuple[ModuleType, ...] = (
    commands_orders,  # bid, orders, cancel
    commands_capacity,  # capacity sync|show
    commands_contracts,  # contracts, sign, void
    commands_admin,  # register, tou, topology
    commands_period,  # period open|close|show|list
    commands_clear,  # clear
    commands_grid,  # grid check|verify|show, grid model load|show
    commands_settle,  # anchor, settle, settlements
    commands_day,  # day close
    commands_reputation,  # reputation, wallet, aggregators
    commands_watch,  # watch
    commands_meter,  # meter register|certify|capacity|read|seal|readings|summary|prove|...
    commands_devices,  # devices simulate|alarms|list|show|check|config
    commands_demo,  # demo paper
    commands_simulate,  # simulate, report
    commands_network,  # network status
    commands_identity,  # identity register|enroll|list|revoke|reenroll
    commands_info,  # version, ping, history, identities
)

for _module in COMMAND_MODULES:
    app.add_typer(_module.commands)
