"""`vppctl contracts`, `vppctl sign`, `vppctl void`: the contracts clearing made.

Each P2P match must be signed by both parties, each with its own identity,
before the period can settle; the VPPO may instead void what is still
unsigned, which hands those quantities to the grid on both sides.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from vppctl import options, views
from vppctl.output import Column, Output, OutputOption, emit, num, stderr
from vppctl.periods import Calendar
from vppctl.registry import command
from vppctl.session import parallel, query, session, submit

commands = typer.Typer()  # this module's commands; main.py adds it to the app

CONTRACT_COLUMNS = [
    Column("id", "Contract"),
    Column("kind", "Kind"),
    Column("round", "Round", "right"),
    Column("seller", "Seller"),
    Column("buyer", "Buyer"),
    num("quantity_kwh", "kWh"),
    num("price", "Price"),
    num("xi", "xi"),
    Column("status", "Status"),
    Column("signed_by", "Signed by"),
]

# Re-run a signature that lost an MVCC race (it then wrote nothing, so a re-run is
# safe). Current chaincode never reads the other party's key, so this should not
# happen; older builds did, and both parties sign at about the same time.
SIGN_RETRIES = 3


class Status(StrEnum):
    MATCHED = "MATCHED"
    SIGNED = "SIGNED"
    VOIDED = "VOIDED"
    ABSORBED = "ABSORBED"


def _contracts(market: Any, period: str | None, agg: int | None) -> list[dict[str, Any]]:
    result = query(market, "GetContracts", period or "", f"Agg{agg}" if agg else "")
    return result["contracts"]


def _period_id(market: Any, period: str | None, day: int | None) -> str | None:
    if period is None and day is None:
        return None
    return options.resolve_period(market, period, day)["period"]


def awaiting(contracts: list[dict[str, Any]], agg: int) -> list[dict[str, Any]]:
    """P2P contracts still MATCHED that ``agg`` is a party of and has not signed."""
    return [
        c
        for c in contracts
        if c["kind"] == "p2p"
        and c["status"] == "MATCHED"
        and agg in (c["seller"], c["buyer"])
        and agg not in c.get("signatures", [])
    ]


@command(
    commands,
    "contracts",
    epilog=(
        "Examples:\n\n"
        "  vppctl contracts --period 13\n\n"
        "  vppctl contracts --agg 3 --pending        # what Agg3 still has to sign\n\n"
        "  vppctl contracts --period 2-13 --status SIGNED --output json\n\n"
        "Without --period: the contracts of every period."
    ),
)
def contracts(
    period: options.PeriodFilterOption = None,
    day: options.DayOption = None,
    agg: options.AggOption = None,
    status: Annotated[
        Status | None, typer.Option("--status", case_sensitive=False, help="Only this status.")
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only those awaiting --agg's signature.")
    ] = False,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """List contracts with their status and signatures (GetContracts)."""
    if pending and agg is None:
        agg = options.require_agg(agg, as_)
    with session() as s:
        market = s.market(options.reader(agg, as_))
        pid = _period_id(market, period, day)
        found = _contracts(market, pid, agg)
    if pending and agg is not None:
        found = awaiting(found, agg)
    if status is not None:
        found = [c for c in found if c["status"] == status.value]
    rows = [views.contract_row(c) for c in found]
    title = f"Contracts of {pid or 'every period'}" + (f" involving Agg{agg}" if agg else "")
    emit(rows, CONTRACT_COLUMNS, output, title=title, empty="no contracts")


@command(
    commands,
    "sign",
    epilog=(
        "Examples:\n\n"
        "  vppctl sign --agg 3            # what awaits Agg3's signature in days not yet closed\n\n"
        "  vppctl sign 00001-13-0002 --agg 4\n\n"
        "  vppctl sign --agg 1 --period 13 --output json\n\n"
        "Each party signs with its own identity (agg<N>-trader unless --as)."
    ),
)
def sign(
    contract_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[CONTRACT_ID]...", help="Contracts to sign (DDDDD-TT-SSSS)."),
    ] = None,
    agg: options.AggOption = None,
    period: options.PeriodFilterOption = None,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Sign P2P contracts as one of their parties (SignContract).

    Without contract ids it signs every contract still awaiting the
    aggregator's signature in --period, or else in the days not yet closed.
    """
    number = options.require_agg(agg, as_)
    with session() as s:
        market = s.market(options.trader(number, as_))
        if contract_ids:
            ids = list(contract_ids)
        else:
            pid = _period_id(market, period, day)
            if pid is not None:
                periods = [pid]
                where = f" in {pid}"
            else:
                # Only the days not yet closed: a stale contract of an abandoned period
                # is signed only when asked for by id or --period.
                periods = [p["period"] for p in Calendar(market).recent_summaries()]
                where = " in the days not yet closed (older periods: pass --period DAY-T)"
            ids = [
                c["id"] for p in periods for c in awaiting(_contracts(market, p, number), number)
            ]
            if not ids:
                # Nothing to do is not an error: a script signs "whatever is pending".
                stderr().print(f"no contract awaits Agg{number}'s signature{where}")

        def sign_one(contract_id: str) -> dict[str, Any]:
            return submit(
                market,
                "SignContract",
                contract_id,
                message=f"Agg{number}: signing {len(ids)} contract(s)",
                retry_on_conflict=SIGN_RETRIES,
            )

        results = parallel(sign_one, ids)
        # The status (SIGNED once both have signed) is derived from the signatures on query.
        periods = sorted({r["contract"].rsplit("-", 1)[0] for r in results})
        status = {c["id"]: c["status"] for p in periods for c in _contracts(market, p, number)}
    rows = [
        {
            "contract": r["contract"],
            "signed_by": views.party(r["signed_by"]),
            "status": status.get(r["contract"], r.get("status")),
        }
        for r in results
    ]
    emit(
        rows,
        [
            Column("contract", "Contract"),
            Column("signed_by", "Signed by"),
            Column("status", "Status"),
        ],
        output,
        title=f"Signed by Agg{number}",
    )


@command(
    commands,
    "void",
    epilog=(
        "Examples:\n\n"
        "  vppctl void --period 13\n\n"
        "  vppctl void --period 2-13 --output json\n\n"
        "Runs as vppo-admin. Running it again is a no-op."
    ),
)
def void(
    period: options.RequiredPeriodOption,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Turn every unsigned P2P contract into grid absorption on both sides (VoidUnsigned)."""
    with session() as s:
        market = s.market(options.operator(as_))
        pid = options.resolve_period(market, period, day)["period"]
        result = submit(market, "VoidUnsigned", pid, message=f"voiding unsigned contracts of {pid}")
        created = _contracts(market, pid, None) if result["grid_contracts"] else []
    made = {c["id"]: c for c in created}
    rows = [views.contract_row(made[i]) for i in result["grid_contracts"] if i in made]
    emit(
        rows,
        [*CONTRACT_COLUMNS[:2], Column("voided_from", "Voided from"), *CONTRACT_COLUMNS[3:8]],
        output,
        title=f"{pid}: voided {', '.join(result['voided']) or 'nothing'}",
        empty="nothing was unsigned",
    )
