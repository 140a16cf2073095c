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
    wait_until_endorsable,
)
from vpp_gateway import connect_as
from vpp_gateway.errors import CommitError

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
        contract.submit("SubmitOrder", order_json(AGG, pid, "sell", 10_000, offer))
        # The attack: a write to Agg3's existing order key, endorsed by VPPO and Grid only.
        forged = order_json(AGG, pid, "sell", 99_000, offer)
        commit = contract.submit_async("SubmitOrder", forged, endorsing_orgs=["VPPOMSP", "GridMSP"])
        with pytest.raises(CommitError) as invalid:
            commit.wait()
        assert invalid.value.validation_code == "ENDORSEMENT_POLICY_FAILURE"
        assert book_by_agg(contract, pid)[AGG]["quantity_wh"] == 10_000
        with pytest.raises(CommitError) as cancelled:
            contract.submit_async(
                "CancelOrder", pid, f"Agg{AGG}", endorsing_orgs=["VPPOMSP", "GridMSP"]
            ).wait()
        assert cancelled.value.validation_code == "ENDORSEMENT_POLICY_FAILURE"
        # The Gateway's own plan includes Agg3's peer (the key's policy): the change commits.
        contract.submit("SubmitOrder", order_json(AGG, pid, "sell", 20_000, offer))
        assert book_by_agg(contract, pid)[AGG]["quantity_wh"] == 20_000
