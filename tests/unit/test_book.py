"""Book, aggregator and tie-line CSVs: strict rows, errors that point at the cell, JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vpp_market.book import (
    read_aggregators,
    read_book,
    read_tie_lines,
    result_to_json,
    with_regions,
)
from vpp_market.clearing import clear
from vpp_market.csvrows import CsvError
from vpp_market.model import Order, Side
from vpp_market.tou import prices_for

DATA = Path(__file__).parent / "data" / "paper_case"
HEADER = "agg,side,quantity_kwh,offer,reserve,reputation\n"


def write(tmp_path: Path, text: str, name: str = "book.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_the_paper_book() -> None:
    book = read_book(DATA / "book_t02.csv")
    assert book.orders[0] == Order(1, Side.SELL, 282_500, 318_000, 300_000, 846_000)
    assert [o.agg for o in book.orders] == [1, 2, 3, 4, 5, 6]
    assert book.rows[3].row == 3 and book.rows[3].line == 4


def test_agg_may_be_written_as_a_number_side_in_any_case(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "3,BUY,1,0.3,0.3,1\nagg10, sell ,2.5,0.3,0.3,0\n")
    book = read_book(path)
    assert [(o.agg, o.side, o.quantity_wh) for o in book.orders] == [
        (3, Side.BUY, 1_000),
        (10, Side.SELL, 2_500),
    ]


@pytest.mark.parametrize(
    ("rows", "row", "column", "reason"),
    [
        ("Agg1,sell,1.2345,0.3,0.3,0.5\n", 1, "quantity_kwh", "'1.2345' has more than 3 decimals"),
        (
            "Agg1,sell,10,0.3,0.3,0.5\nAgg2,buy,10,0.3x,0.3,0.5\n",
            2,
            "offer",
            "'0.3x' is not a plain",
        ),
        (
            "Agg1,sell,10,0.3,0.3,0.5\nAgg2,buy,10,0.3,0.3,1.5\n",
            2,
            "reputation",
            "'1.5' is above 1",
        ),
        ("Agg1,sell,-10,0.3,0.3,0.5\n", 1, "quantity_kwh", "'-10' is negative"),
        ("Agg1,sell,nan,0.3,0.3,0.5\n", 1, "quantity_kwh", "'nan' is not a plain"),
        ("Agg1,hold,10,0.3,0.3,0.5\n", 1, "side", "'hold' is not 'sell' or 'buy'"),
        ("Agg0,sell,10,0.3,0.3,0.5\n", 1, "agg", "'Agg0' is not an aggregator"),
        ("Agg03,sell,10,0.3,0.3,0.5\n", 1, "agg", "no leading zero"),
        (
            "Agg1,sell,10,0.3,0.3,0.5\n1,buy,10,0.3,0.3,0.5\n",
            2,
            "agg",
            "Agg1 already has an order at data row 1",
        ),
        ("Agg1,sell,10,0.3,0.3\n", 1, None, "has 5 cells but the header has 6"),
        ("Agg1,sell,,0.3,0.3,0.5\n", 1, "quantity_kwh", "'' is empty"),
    ],
)
def test_bad_row_names_row_column_and_reason(
    tmp_path: Path, rows: str, row: int, column: str | None, reason: str
) -> None:
    path = write(tmp_path, HEADER + rows)
    with pytest.raises(CsvError) as info:
        read_book(path)
    assert (info.value.row, info.value.column) == (row, column)
    message = str(info.value)
    assert message.startswith(f"{path}, data row {row} (line {row + 1})")
    assert reason in message
    assert "\n" not in message


def test_blank_lines_do_not_shift_data_rows_but_lines_are_physical(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "Agg1,sell,10,0.3,0.3,0.5\n\nAgg2,buy,x,0.3,0.3,0.5\n")
    with pytest.raises(CsvError, match=r"data row 2 \(line 4\), column quantity_kwh"):
        read_book(path)


def test_header_problems(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="column reputation: missing from the header"):
        read_book(write(tmp_path, "agg,side,quantity_kwh,offer,reserve\n"))
    with pytest.raises(CsvError, match="column offer: appears twice"):
        read_book(write(tmp_path, "agg,side,quantity_kwh,offer,offer,reserve,reputation\n"))
    with pytest.raises(CsvError, match="is empty"):
        read_book(write(tmp_path, ""))
    with pytest.raises(CsvError, match="cannot read"):
        read_book(tmp_path / "absent.csv")
    assert read_book(write(tmp_path, HEADER)).orders == ()


def test_rule_violations_point_at_the_book_cell(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "Agg1,sell,10,0.3,0.3,0.5\nAgg2,buy,10,0.3,0.29,0.5\n")
    book = read_book(path)
    with pytest.raises(CsvError) as info:
        book.check(prices_for(2))
    assert (info.value.row, info.value.column) == (2, "reserve")
    assert "buyer's reserve 0.29 is below its offer 0.3" in str(info.value)
    with pytest.raises(CsvError, match="data row 1 .*column offer: 0.3 yuan/kWh is below"):
        book.check(prices_for(13))  # f_t = 0.65


def test_regions_from_aggregators_and_tie_lines(tmp_path: Path) -> None:
    topology = read_tie_lines(DATA / "tie_lines.csv")
    aggregators = read_aggregators(DATA / "aggregators.csv")
    book = with_regions(read_book(DATA / "book_t02.csv"), aggregators, topology)
    assert [o.region for o in book.orders] == ["R1", "R2", "R3", "R4", "R5", "R6"]
    assert topology.headroom("R1", "R6") == 10_000_000

    partial = write(tmp_path, "agg,region\nAgg1,R1\n", "aggs.csv")
    with pytest.raises(CsvError, match="book_t02.csv, data row 2 .*column agg: Agg2 is not listed"):
        with_regions(read_book(DATA / "book_t02.csv"), read_aggregators(partial), topology)

    stray = write(tmp_path, "agg,region\nAgg1,R1\nAgg2,R9\n", "stray.csv")
    with pytest.raises(CsvError, match="stray.csv, data row 2 .*column region: 'R9' is not an end"):
        with_regions(read_book(DATA / "book_t02.csv"), read_aggregators(stray), topology)

    twice = write(tmp_path, "agg,region\nAgg1,R1\nAgg1,R2\n", "twice.csv")
    with pytest.raises(CsvError, match="data row 2 .*Agg1 is already listed at data row 1"):
        read_aggregators(twice)


def test_tie_lines_that_are_not_a_tree_name_the_row(tmp_path: Path) -> None:
    header = "from_region,to_region,limit_kw\n"
    loop = write(tmp_path, header + "A,B,10\nB,C,10\nC,A,10\n", "loop.csv")
    with pytest.raises(
        CsvError, match=r"loop.csv, data row 3 \(line 4\): tie-line C-A closes a loop"
    ):
        read_tie_lines(loop)
    bad = write(tmp_path, header + "A,B,ten\n", "bad.csv")
    with pytest.raises(CsvError, match="data row 1 .*column limit_kw: 'ten'"):
        read_tie_lines(bad)
    split = write(tmp_path, header + "A,B,1\nC,D,1\n", "split.csv")
    with pytest.raises(CsvError, match="split.csv: regions are not all connected"):
        read_tie_lines(split)


def test_result_json_is_exact() -> None:
    book = read_book(DATA / "book_t02.csv")
    doc = result_to_json(clear(book.orders, prices_for(2)))
    assert list(doc) == ["period", "matches", "grid"]
    assert doc["period"] == 2
    assert doc["matches"][0] == {
        "round": 1,
        "seller": "Agg1",
        "buyer": "Agg6",
        "quantity_kwh": 90.4,
        "price": 0.325086,
        "xi": doc["matches"][0]["xi"],
    }
    assert doc["grid"] == [{"agg": "Agg2", "side": "sell", "quantity_kwh": 6.14, "price": 0.24}]
    text = json.dumps(doc)
    assert '"quantity_kwh": 90.4,' in text and '"price": 0.325086,' in text
    assert '"quantity_kwh": 58.34,' in text and '"price": 0.319039,' in text
    assert '"quantity_kwh": 133.76,' in text and '"price": 0.318,' in text


@pytest.mark.parametrize("junk", ["\x1c", "\x1f", "\x85", "\xa0", "\u2028"])
def test_a_cell_with_a_control_character_is_refused_not_stripped(tmp_path: Path, junk: str) -> None:
    """Only ASCII spaces and tabs around a cell are forgiven (str.strip() dropped these)."""
    header = "agg,side,quantity_kwh,offer,reserve,reputation\n"
    for row, column in (
        (f"Agg1{junk},sell,282.5,0.318,0.300,0.846\n", "agg"),
        (f"Agg1,sell{junk},282.5,0.318,0.300,0.846\n", "side"),
    ):
        book = tmp_path / "book.csv"
        book.write_text(header + row, encoding="utf-8")
        with pytest.raises(CsvError) as caught:
            read_book(book)
        assert caught.value.row == 1 and caught.value.column == column
    spaced = tmp_path / "spaced.csv"
    spaced.write_text(header + " Agg1\t, sell ,282.5,0.318,0.300,0.846\n", encoding="utf-8")
    assert read_book(spaced).orders[0].agg == 1
    aggs = tmp_path / "aggs.csv"
    aggs.write_text(f"agg,region\nAgg1,R1{junk}\n", encoding="utf-8")
    with pytest.raises(CsvError) as caught:
        read_aggregators(aggs)
    assert caught.value.column == "region"
