"""Entry point: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="vppctl",
    help="Trade energy inside a virtual power plant on Hyperledger Fabric.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main() -> None:
    """Trade energy inside a virtual power plant on Hyperledger Fabric.

    Offline:  vppctl clear book.csv --period 2 --offline
    """


def _register_commands() -> None:
    # Imported for their side effect of adding commands to `app`.
    from vppctl import commands_clear  # noqa: F401


_register_commands()
