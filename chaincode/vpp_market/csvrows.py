"""Reading the market's small CSV files with errors that point at the cell.

A user fixing a book needs the file, the row, the column and the reason in one
line, so every CSV reader in the package goes through ``read_rows`` and raises
``CsvError``. Rows are numbered as data rows (the first row after the header is
data row 1); the physical line number is given too, for editors.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vpp_market.units import InputError, trim

T = TypeVar("T")


class CsvError(InputError):
    """A CSV file that cannot be used; ``row`` is the 1-based data row (None: the whole file)."""

    def __init__(
        self,
        path: str | Path,
        row: int | None,
        column: str | None,
        reason: str,
        *,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.row = row
        self.column = column
        self.line = line
        where = [self.path]
        if row is not None:
            where.append(f"data row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(column or "file", None, reason, message=f"{', '.join(where)}: {reason}")


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its cells by column name, its 1-based data row and physical line."""

    cells: dict[str, str]
    number: int
    line: int


def read_rows(path: str | Path, required: Sequence[str]) -> Iterator[Row]:
    """Yield the data rows of ``path``, after checking the header has every ``required`` column.

    Extra columns are allowed (the aggregators file carries capacities), blank
    lines are skipped, and a row with a different number of cells than the
    header is an error rather than being padded. A quote left open is named as
    such, at the row where it opens. A row's ``line`` is its first physical line.
    """
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CsvError(path, None, None, f"cannot read: {exc.strerror or exc}") from exc
    with handle:
        # strict: a quoted cell left open to the end of the file is an error, not a cell
        # holding the rest of the file (which then showed up as a wrong cell count)
        reader = csv.reader(handle, strict=True)
        number, start, in_header = 0, 1, True
        try:
            header = next(reader, None)
            if header is None:
                raise CsvError(path, None, None, "is empty (expected a header row)")
            names = [trim(name) for name in header]
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise CsvError(path, None, name, "appears twice in the header", line=1)
                seen.add(name)
            missing = [name for name in required if name not in seen]
            if missing:
                raise CsvError(
                    path,
                    None,
                    missing[0],
                    f"missing from the header (expected columns: {', '.join(required)})",
                    line=1,
                )
            in_header = False
            while True:
                start = reader.line_num + 1  # blank lines come back one by one, as []
                cells = next(reader, None)
                if cells is None:
                    return
                if not cells or all(not trim(cell) for cell in cells):
                    continue
                number += 1
                if len(cells) != len(names):
                    raise CsvError(
                        path,
                        number,
                        None,
                        f"has {len(cells)} cells but the header has {len(names)}",
                        line=start,
                    )
                yield Row(dict(zip(names, cells, strict=True)), number, start)
        except csv.Error as exc:
            row = None if in_header else number + 1
            if str(exc).startswith("unexpected end of data"):  # strict mode, at the end of file
                reason = "has a quoted cell that is never closed (its '\"' runs to the file's end)"
            else:
                reason = f"is not valid CSV: {exc}"
            raise CsvError(path, row, None, reason, line=start) from exc
        except UnicodeDecodeError as exc:
            raise CsvError(path, None, None, "is not UTF-8 text") from exc


def cell(path: str | Path, row: Row, column: str, parse: Callable[[str], T]) -> T:
    """Parse one cell, turning an InputError into a CsvError that points at it."""
    try:
        return parse(row.cells[column])
    except CsvError:
        raise
    except InputError as exc:
        reason = f"{row.cells[column]!r} {exc.reason}"
        raise CsvError(path, row.number, column, reason, line=row.line) from exc
