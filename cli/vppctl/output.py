"""Query output in three formats, and a progress display for slow calls.

``table`` is for people (rich, colour only on a terminal); ``json`` and
``csv`` are for scripts and must not change under them: the same rows and
column keys as the table, keys sorted, exact numbers in the user's units
(kWh, yuan/kWh, yuan), never colour. Values in a row are JSON values already
(``kwh_json`` etc. print exactly), so the three formats cannot drift apart.

Progress goes to stderr and only on a terminal, so stdout stays clean for
``--output json | jq`` and tests see exactly what a script would.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table (for people), json or csv (stable, for scripts).",
    ),
]


@dataclass(frozen=True)
class Column:
    """One output column: ``key`` in json/csv, ``header`` in the table."""

    key: str
    header: str
    justify: str = "left"  # "right" for numbers


def num(key: str, header: str) -> Column:
    """A right-aligned numeric column."""
    return Column(key, header, "right")


PIPE_WIDTH = 160  # tables written to a file or pipe: wide enough for every column


def stdout() -> Console:
    """The console for tables: no syntax highlighting, colour only on a terminal.

    Off a terminal rich would assume 80 columns and squeeze wide tables into
    ellipses; a file or a pipe has no width, so it gets the whole table.
    """
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def stderr() -> Console:
    """Notes and progress; lines are not wrapped (a note is one line, like an error)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def text(value: Any, *, empty: str = "") -> str:
    """A JSON value as table/csv text (lists joined, booleans as yes/no, None as ``empty``).

    A mapping (e.g. contract counts by status) reads as ``SIGNED 5, ABSORBED 1``.
    """
    if value is None:
        return empty
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {text(v)}" for k, v in value.items())
    return str(value)


def dumps(document: Any) -> str:
    """Stable JSON: sorted keys, two-space indent, UTF-8 kept."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """CSV of the rows with the column keys as header (every cell as exact text)."""
    import pandas as pd  # imported on use: it costs a second of start-up for every command

    keys = [c.key for c in columns]
    frame = pd.DataFrame(
        [[text(row.get(k)) for k in keys] for row in rows], columns=keys, dtype=object
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> Table:
    """A rich table of the rows (empty cells as '-')."""
    result = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for c in columns:
        result.add_column(c.header, justify=c.justify)  # type: ignore[arg-type]
    for row in rows:
        result.add_row(*(text(row.get(c.key), empty="-") for c in columns))
    return result


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    output: Output,
    *,
    title: str | None = None,
    caption: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """Print rows as a table, a JSON list of objects, or CSV."""
    if output is Output.JSON:
        keys = [c.key for c in columns]
        typer.echo(dumps([{k: row.get(k) for k in keys} for row in rows]))
    elif output is Output.CSV:
        typer.echo(to_csv(rows, columns), nl=False)
    else:
        stdout().print(
            table(rows, columns, title=title, caption=caption or (empty if not rows else None))
        )


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner with ``message`` on stderr while the block runs (terminals only)."""
    console = stderr()
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


class Steps:
    """The demo's step display: a spinner per step and a tick when it is done (stderr)."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = stderr()
        self.quiet = quiet

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        if self.quiet:
            yield
            return
        with progress(message + " ..."):
            yield
        self.console.print(f"[green]✓[/] {message}" if self.console.is_terminal else f"- {message}")

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"  {message}")
