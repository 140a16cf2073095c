"""Trust rules on the live network: what only the real peers and validators can show.

Aggregator-owned keys need the aggregator (issue 10, item 4): an order of
Agg3 carries the key-level policy AND(VPPO, Grid, Agg3 peers). A transaction
that changes it but is endorsed only by the VPPO's and the Grid's peers,
which satisfies the market's chaincode policy AND(VPPO, Grid), must be
committed INVALID with ENDORSEMENT_POLICY_FAILURE; the same change endorsed
as the Gateway plans it (with Agg3's peer) commits.
"""

from __future__ import annotations

import pytest
from helpers import (
    book_by_agg,
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    sealed_order,
    wait_until_endorsable,
)
from vpp_gateway import connect_as
from vpp_gateway.errors import CommitError, EndorseError

pytestmark = pytest.mark.network

AGG = 3


def test_vppo_and_grid_alone_cannot_change_an_aggregators_order(network: object) -> None:
    ensure_aggregators([AGG])
    wait_until_endorsable("agg3-trader")
    with connect_as("vppo-admin") as gw:
        period = open_test_period(market(gw))
    pid, offer = period["period"], period["purchase"]
    with connect_as("agg3-trader") as gw:
        contract = market(gw)
        contract.submit("SubmitOrder", **sealed_order(order_json(AGG, pid, "sell", 10_000, offer)))
        # The attack: a write to Agg3's existing order key, endorsed by VPPO and Grid only.
        forged = order_json(AGG, pid, "sell", 99_000, offer)
        commit = contract.submit_async(
            "SubmitOrder", **sealed_order(forged, ["VPPOMSP", "GridMSP"])
        )
        with pytest.raises(CommitError) as invalid:
            # A network whose peers predate skipPullingInvalidTransactionsDuringCommit
            # (configs.py) commits this block only after Agg3's peer gave up pulling the
            # invalid transaction's private data (60 s).
            commit.wait(150)
        assert invalid.value.validation_code == "ENDORSEMENT_POLICY_FAILURE"
        assert book_by_agg(contract, pid)[AGG]["quantity_wh"] == 10_000
        with pytest.raises(CommitError) as cancelled:
            contract.submit_async(
                "CancelOrder", pid, f"Agg{AGG}", endorsing_orgs=["VPPOMSP", "GridMSP"]
            ).wait(150)
        assert cancelled.value.validation_code == "ENDORSEMENT_POLICY_FAILURE"
        # Sealed orders: the Gateway will not pick endorsers itself for transient data that
        # would reach an organisation outside a written collection (the VPPO's and the
        # Grid's peers for Agg3's own copy), so clients name them: VPPO, Grid and Agg3.
        sealed = sealed_order(order_json(AGG, pid, "sell", 20_000, offer))
        with pytest.raises(EndorseError, match="protect transient data"):
            contract.submit("SubmitOrder", transient=sealed["transient"])
        contract.submit("SubmitOrder", **sealed)
        assert book_by_agg(contract, pid)[AGG]["quantity_wh"] == 20_000
