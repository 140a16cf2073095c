"""TOU prices per period: t covers [(t-1):00, t:00), bands wrap midnight, tables are checked."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from vpp_market.csvrows import CsvError
from vpp_market.model import PeriodPrices
from vpp_market.tou import (
    PAPER_TOU,
    PAPER_TOU_ROWS,
    TouBand,
    TouError,
    TouTable,
    load_tou_csv,
    prices_for,
    table_from_rows,
)
from vpp_market.units import InputError

DATA = Path(__file__).parent / "data" / "paper_case"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "paper_case"


@pytest.mark.parametrize(
    ("period", "sale", "purchase"),
    [
        (1, 380_000, 240_000),  # 00:00-01:00, inside the 23 -> 7 band
        (2, 380_000, 240_000),  # the paper's t=2
        (7, 380_000, 240_000),  # 06:00-07:00, last hour of the night band
        (8, 570_000, 380_000),  # 07:00-08:00
        (11, 570_000, 380_000),  # 10:00-11:00
        (12, 860_000, 650_000),  # 11:00-12:00
        (13, 860_000, 650_000),  # the paper's t=13
        (14, 860_000, 650_000),  # 13:00-14:00
        (15, 570_000, 380_000),  # 14:00-15:00: the purchase price blank in the paper
        (18, 570_000, 380_000),
        (19, 800_000, 650_000),  # 18:00-19:00
        (23, 800_000, 650_000),  # 22:00-23:00
        (24, 380_000, 240_000),  # 23:00-24:00 wraps into the night band
    ],
)
def test_paper_table(period: int, sale: int, purchase: int) -> None:
    assert prices_for(period) == PeriodPrices(period, sale, purchase)
    assert PAPER_TOU.prices_for(period) == PeriodPrices(period, sale, purchase)


@pytest.mark.parametrize("period", [0, 25, -1, True, 2.0, "2"])
def test_period_out_of_range(period: object) -> None:
    with pytest.raises(InputError, match="period"):
        prices_for(period)  # type: ignore[arg-type]


def _rows(path: Path) -> list[tuple[int, int, str, str]]:
    with path.open(newline="") as handle:
        return [
            (
                int(r["start_hour"]),
                int(r["end_hour"]),
                r["grid_sale_price"],
                r["grid_purchase_price"],
            )
            for r in csv.DictReader(handle)
        ]


def test_shipped_constant_is_the_papers_csv() -> None:
    assert _rows(DATA / "tou.csv") == list(PAPER_TOU_ROWS)
    assert load_tou_csv(DATA / "tou.csv").bands == PAPER_TOU.bands


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not next to this checkout")
def test_test_copies_match_the_shared_paper_case() -> None:
    for name in ("tou.csv", "book_t02.csv", "book_t13.csv", "aggregators.csv", "tie_lines.csv"):
        assert (DATA / name).read_bytes() == (SHARED / name).read_bytes(), name


def test_band_ending_at_midnight_can_be_written_0_or_24() -> None:
    day = table_from_rows([(0, 18, "0.5", "0.3"), (18, 0, "0.8", "0.6")])
    assert day.prices_for(24) == PeriodPrices(24, 800_000, 600_000)
    assert day.prices_for(18) == PeriodPrices(18, 500_000, 300_000)
    flat = table_from_rows([(0, 24, "0.5", "0.3")])
    assert flat.prices_for(1) == PeriodPrices(1, 500_000, 300_000)


def test_gaps_and_overlaps_are_refused() -> None:
    with pytest.raises(TouError, match="no band covers 07:00-08:00"):
        table_from_rows([(23, 7, "0.38", "0.24"), (8, 23, "0.5", "0.3")])
    with pytest.raises(TouError, match="overlaps") as info:
        table_from_rows([(22, 7, "0.38", "0.24"), (7, 23, "0.5", "0.3")])
    assert info.value.band == 1
    with pytest.raises(TouError, match="empty or the whole day"):
        TouTable([TouBand(5, 5, 1, 1)])
    with pytest.raises(TouError, match="purchase price 0.5 is above"):
        table_from_rows([(0, 24, "0.4", "0.5")])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_custom_csv_errors_name_row_and_column(tmp_path: Path) -> None:
    header = "start_hour,end_hour,grid_sale_price,grid_purchase_price\n"
    bad_price = _write(tmp_path / "a.csv", header + "0,12,0.5,0.3\n12,24,0.5,abc\n")
    with pytest.raises(CsvError) as info:
        load_tou_csv(bad_price)
    assert (info.value.row, info.value.column) == (2, "grid_purchase_price")
    assert "'abc'" in str(info.value)

    bad_hour = _write(tmp_path / "b.csv", header + "0,25,0.5,0.3\n")
    with pytest.raises(CsvError, match="data row 1.*column end_hour"):
        load_tou_csv(bad_hour)

    overlap = _write(tmp_path / "c.csv", header + "0,13,0.5,0.3\n12,24,0.5,0.3\n")
    with pytest.raises(CsvError, match="data row 2.*overlaps"):
        load_tou_csv(overlap)

    gap = _write(tmp_path / "d.csv", header + "0,12,0.5,0.3\n")
    with pytest.raises(CsvError, match="no band covers 12:00-13:00"):
        load_tou_csv(gap)

    missing = _write(tmp_path / "e.csv", "start_hour,end_hour,grid_sale_price\n0,24,0.5\n")
    with pytest.raises(CsvError, match="column grid_purchase_price: missing from the header"):
        load_tou_csv(missing)

    blank = _write(tmp_path / "f.csv", header + "14,18,0.57,\n")
    with pytest.raises(CsvError, match="grid_purchase_price: '' is empty"):
        load_tou_csv(blank)
