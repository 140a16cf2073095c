"""`vppctl clear`: tables, exact JSON on stdout, one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_fabric import FakeFabric
from typer.testing import CliRunner, Result
from vpp_market.book import read_book, result_to_json
from vpp_market.clearing import clear
from vpp_market.tou import prices_for
from vppctl.main import app

DATA = Path(__file__).parent / "data" / "paper_case"
BOOK_T02 = str(DATA / "book_t02.csv")
BOOK_T13 = str(DATA / "book_t13.csv")
TOPOLOGY = [
    "--aggregators",
    str(DATA / "aggregators.csv"),
    "--tie-lines",
    str(DATA / "tie_lines.csv"),
]


def vppctl(*args: str) -> Result:
    """Run `vppctl ARGS` on the real app, with stdout and stderr kept apart."""
    return CliRunner().invoke(app, list(args))


def test_table_shows_matches_and_grid() -> None:
    result = vppctl("clear", BOOK_T02, "--period", "2", "--offline")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Period 2 (01:00-02:00)" in out
    for cells in (
        ["Agg1", "Agg6", "90.4", "0.318", "0.331", "0.325086"],
        ["Agg1", "Agg4", "58.34", "0.319039"],
        ["Agg1", "Agg3", "133.76"],
    ):
        line = next(line for line in out.splitlines() if cells[0] in line and cells[1] in line)
        assert all(cell in line for cell in cells), line
    grid_line = next(line for line in out.splitlines() if "Agg2" in line and "buys" in line)
    assert "6.14" in grid_line and "0.24" in grid_line
    assert result.stderr == ""


def test_json_is_exactly_the_result_document() -> None:
    result = vppctl("clear", BOOK_T02, "--period", "2", "--offline", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    doc = json.loads(result.stdout)  # nothing but the document on stdout
    expected = result_to_json(clear(read_book(BOOK_T02).orders, prices_for(2)))
    assert doc == expected
    assert list(doc) == ["period", "matches", "grid"]
    assert doc["period"] == 2
    for match in doc["matches"]:
        assert list(match) == ["round", "seller", "buyer", "quantity_kwh", "price", "xi"]
        assert isinstance(match["round"], int)
        assert match["seller"].startswith("Agg") and match["buyer"].startswith("Agg")
    firsts = [(m["seller"], m["buyer"], m["quantity_kwh"], m["price"]) for m in doc["matches"][:3]]
    assert firsts == [
        ("Agg1", "Agg6", 90.4, 0.325086),
        ("Agg1", "Agg4", 58.34, 0.319039),
        ("Agg1", "Agg3", 133.76, 0.318),
    ]
    assert doc["grid"] == [{"agg": "Agg2", "side": "sell", "quantity_kwh": 6.14, "price": 0.24}]
    assert '"quantity_kwh": 90.4,' in result.stdout and '"price": 0.325086,' in result.stdout


def test_json_with_tie_lines_and_t13_grid() -> None:
    result = vppctl("clear", BOOK_T13, "-t", "13", "--offline", "--json", *TOPOLOGY)
    assert result.exit_code == 0, result.output
    grid = json.loads(result.stdout)["grid"]
    assert round(sum(g["quantity_kwh"] for g in grid), 3) == 36.68
    assert {g["price"] for g in grid} == {0.65}


def test_custom_tou(tmp_path: Path) -> None:
    tou = tmp_path / "flat.csv"
    tou.write_text("start_hour,end_hour,grid_sale_price,grid_purchase_price\n0,24,0.4,0.2\n")
    result = vppctl("clear", BOOK_T02, "-t", "13", "--offline", "--json", "--tou", str(tou))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["grid"][0]["price"] == 0.2


def test_bad_row_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    book = tmp_path / "bad.csv"
    book.write_text(
        "agg,side,quantity_kwh,offer,reserve,reputation\n"
        "Agg1,sell,282.5,0.318,0.300,0.846\n"
        "Agg2,sell,324.2,0.320,0.315,0.724\n"
        "Agg3,buy,234.22,0.3185,0.340,oops\n"
        "Agg4,buy,58.34,0.320,0.356,0.782\n"
    )
    for extra in ([], ["--json"]):
        result = vppctl("clear", str(book), "--period", "2", "--offline", *extra)
        assert result.exit_code == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert str(book) in lines[0]
        assert "data row 3 (line 4), column reputation: 'oops'" in lines[0]
        assert "Traceback" not in result.output


HEADER = "agg,side,quantity_kwh,offer,reserve,reputation\n"


def _one_error_line(result: Result, book: Path) -> str:
    """Exit 2, nothing on stdout, one line on stderr that names the file."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and str(book) in lines[0], result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_an_unclosed_quote_is_named_not_counted_as_cells(tmp_path: Path) -> None:
    """The quote swallows the rest of the file; the user needs the row where it opens."""
    book = tmp_path / "quote.csv"
    book.write_text(
        HEADER
        + "Agg1,sell,282.5,0.318,0.300,0.846\n"
        + "\n"
        + 'Agg3,buy,"234.22,0.318,0.340,0.965\n'
        + "Agg4,buy,58.34,0.320,0.356,0.782\n"
    )
    for extra in ([], ["--json"]):
        line = _one_error_line(vppctl("clear", str(book), "-t", "2", "--offline", *extra), book)
        assert "data row 2 (line 4)" in line and "quote" in line and "never closed" in line
        assert "cells but the header" not in line


def test_values_beyond_exact_json_are_refused_at_their_cell_in_every_format(
    tmp_path: Path,
) -> None:
    """A result prints as JSON numbers of at most 15 significant digits; a book whose values
    would not was cleared and printed as a table (exit 0) but failed with --json (exit 2,
    naming no file). Now the book is refused when read, whatever the output format."""
    book = tmp_path / "huge.csv"
    book.write_text(
        HEADER
        + "Agg1,sell,282.5,0.318,0.300,0.846\n"
        + "Agg6,buy,12345678901234.25,0.331,0.356,0.706\n"
    )
    for extra in ([], ["--json"], ["-o", "csv"]):
        line = _one_error_line(vppctl("clear", str(book), "-t", "2", "--offline", *extra), book)
        assert "data row 2 (line 3), column quantity_kwh: '12345678901234.25'" in line
        assert "999999999999.999" in line
    edge = tmp_path / "edge.csv"  # the largest quantity that still prints exactly
    edge.write_text(
        HEADER
        + "Agg1,sell,282.5,0.318,0.300,0.846\n"
        + "Agg6,buy,999999999999.999,0.331,0.356,0.706\n"
    )
    table = vppctl("clear", str(edge), "-t", "2", "--offline")
    as_json = vppctl("clear", str(edge), "-t", "2", "--offline", "--json")
    assert table.exit_code == as_json.exit_code == 0, table.output + as_json.output
    grid = json.loads(as_json.stdout)["grid"]
    assert {"agg": "Agg6", "side": "buy", "quantity_kwh": 999999999717.499, "price": 0.38} in grid


def test_rule_violation_names_the_cell(tmp_path: Path) -> None:
    result = vppctl("clear", BOOK_T02, "--period", "13", "--offline")
    assert result.exit_code == 2 and result.stdout == ""
    assert (
        "book_t02.csv, data row 1 (line 2), column offer: 0.318 yuan/kWh is below" in result.stderr
    )


def test_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeFabric().install(monkeypatch)  # without --offline, clear goes to the (fake) network
    network = vppctl("clear", "--period", "2")
    assert network.exit_code == 1 and network.stdout == ""
    assert "no period with hour 2 found on the ledger" in network.stderr
    book_online = vppctl("clear", BOOK_T02, "--period", "2")
    assert book_online.exit_code == 2 and book_online.stdout == ""
    assert "is only read with --offline" in book_online.stderr
    no_book = vppctl("clear", "--period", "2", "--offline")
    assert no_book.exit_code == 2 and "--offline needs a BOOK.csv" in no_book.stderr
    half = vppctl("clear", BOOK_T02, "-t", "2", "--offline", "--tie-lines", "x.csv")
    assert half.exit_code == 2 and "go together" in half.stderr
    period = vppctl("clear", BOOK_T02, "-t", "25", "--offline")
    assert period.exit_code == 2 and "--period 25" in period.stderr
    missing = vppctl("clear", "absent.csv", "-t", "2", "--offline")
    assert missing.exit_code == 2 and "absent.csv: cannot read" in missing.stderr


def test_help_has_examples() -> None:
    result = vppctl("clear", "--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert "--offline" in result.stdout and "--json" in result.stdout
