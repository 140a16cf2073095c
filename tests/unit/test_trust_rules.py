"""The trust rules of market-rules.md on the in-memory ledger, each as the attack it stops.

Ledger time, market configuration, the signing window, closing days and
contract numbering (issue 10, items 3, 6-9). Every refusal is checked to
write nothing and to carry its machine-readable code.
"""

from __future__ import annotations

import json

import pytest
from certs import agg_admin, agg_trader, grid_admin
from market_world import CONTRACT, SIGNING_WINDOW_S, VPPO, P, World, stage
from vpp_chaincode import ids
from vpp_shim.api import ChaincodeError
from vpp_shim.codes import Code


def refused(world: World, caller, function: str, *args: str, code: Code, **kw) -> str:
    """The call is refused with ``code`` and changes nothing; returns its message."""
    before = world.snapshot()
    with pytest.raises(ChaincodeError) as caught:
        raw = world.main.invoke(world.market, caller, function, *args, **kw)
        raise AssertionError(f"{function} was accepted: {raw!r}")
    assert caught.value.code == code, caught.value.wire
    assert world.snapshot() == before
    return str(caught.value)


# --- ledger time ------------------------------------------------------------------------
@pytest.mark.parametrize("offset_s", [-3600, -31, 31, 10**6])
def test_a_back_or_forward_dated_proposal_is_refused(offset_s: int) -> None:
    """A VPPO dating VoidUnsigned past the signing window, or a trader dating a signature
    into the window, is refused by every endorser whose clock disagrees."""
    world = stage("cleared")
    stamp = world.main.clock_ns + offset_s * 10**9
    message = refused(world, VPPO, "VoidUnsigned", P, code=Code.CLOCK_SKEW, timestamp_ns=stamp)
    assert "at most 30 s" in message
    refused(
        world, agg_trader(3), "SignContract", CONTRACT, code=Code.CLOCK_SKEW, timestamp_ns=stamp
    )


def test_a_proposal_within_the_bound_is_accepted() -> None:
    world = stage("cleared")
    stamp = world.main.clock_ns - 29 * 10**9
    world.main.invoke(world.market, agg_trader(3), "SignContract", CONTRACT, timestamp_ns=stamp)


# --- market configuration -----------------------------------------------------------------
def test_market_config_defaults_set_and_read_back() -> None:
    world = World()
    default = world.call(grid_admin(), "GetConfig", "market")
    assert default == {
        "signing_window_s": 900,
        "seal_deadline_s": 3600,
        "set_tx": None,
        "set_ns": None,
    }
    world.call(VPPO, "SetMarketConfig", '{"seal_deadline_s": 5}')
    stored = world.call(grid_admin(), "GetConfig", "market")
    assert (stored["signing_window_s"], stored["seal_deadline_s"]) == (900, 5)
    assert stored["set_tx"]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ('{"signing_window_s": -1}', "signing_window_s"),
        ('{"signing_window_s": 1.5}', "signing_window_s"),
        ('{"seal_deadline_s": 604801}', "seal_deadline_s"),
        ('{"seal_deadline": 5}', "seal_deadline"),
        ("{}", "config"),
        ("[]", "config"),
    ],
)
def test_market_config_refuses_bad_values_naming_them(config: str, field: str) -> None:
    world = stage("registered")
    message = refused(world, VPPO, "SetMarketConfig", config, code=Code.BAD_ARGUMENT)
    assert field in message


def test_only_the_vppo_sets_the_market_config() -> None:
    world = stage("registered")
    refused(
        world, grid_admin(), "SetMarketConfig", '{"signing_window_s": 0}', code="NOT_AUTHORIZED"
    )


def test_a_period_keeps_the_deadlines_it_was_opened_with() -> None:
    """The VPPO cannot shorten the signing window of a period whose orders are placed."""
    world = stage("closed")
    world.call(VPPO, "SetMarketConfig", '{"signing_window_s": 0}')
    clearing_time = world.main.clock_ns // 10**9
    world.call(VPPO, "ClearPeriod", P)
    period = world.call(grid_admin(), "GetPeriod", P)
    assert period["signing_window_s"] == SIGNING_WINDOW_S
    assert period["status"] == "CLEARED"
    assert period["cleared_at"] == clearing_time  # the ClearPeriod transaction's timestamp
    refused(world, VPPO, "VoidUnsigned", P, code=Code.TOO_EARLY)


# --- signing window -----------------------------------------------------------------------
def test_void_unsigned_waits_for_the_signing_window_in_ledger_time() -> None:
    world = stage("cleared")
    cleared_at = world.call(VPPO, "GetPeriod", P)["cleared_at"]
    world.main.clock_ns = (cleared_at + SIGNING_WINDOW_S - 1) * 10**9
    message = refused(world, VPPO, "VoidUnsigned", P, code=Code.TOO_EARLY)
    assert (
        f"until ledger time {cleared_at + SIGNING_WINDOW_S}" in message and "1 s to go" in message
    )
    world.call(agg_trader(3), "SignContract", CONTRACT)  # the parties may still sign
    world.main.clock_ns = (cleared_at + SIGNING_WINDOW_S) * 10**9
    assert world.call(VPPO, "VoidUnsigned", P)["voided"] == [CONTRACT]


# --- closing days -------------------------------------------------------------------------
def test_close_day_beyond_the_calendar_is_refused() -> None:
    """CloseDay 99999 would close every earlier day and refuse OpenPeriod forever."""
    world = stage("settled")
    message = refused(world, VPPO, "CloseDay", "99999", code=Code.NOT_FOUND)
    assert "day 99999 has no opened period" in message
    refused(world, VPPO, "CloseDay", "2", code=Code.NOT_FOUND)
    world.call(VPPO, "OpenPeriod", "2", "1")  # the calendar is still open


def test_close_day_refuses_while_an_earlier_cleared_period_is_unsettled() -> None:
    """Closing day 2 would strand day 1's MATCHED contracts: no money would ever move."""
    world = stage("cleared")
    for step, args in (
        ("OpenPeriod", ("2", "5")),
        ("ClosePeriod", ("2-5",)),
        ("ClearPeriod", ("2-5",)),
        ("SettlePeriod", ("2-5",)),
    ):
        world.call(VPPO, step, *args)
    message = refused(world, VPPO, "CloseDay", "2", code=Code.NOT_READY)
    assert f"day 1 (before day 2) has periods cleared but not settled: {P}" in message


def test_close_day_refuses_its_own_unsettled_periods_naming_them() -> None:
    world = stage("cleared")
    message = refused(world, VPPO, "CloseDay", "1", code=Code.NOT_READY)
    assert f"{P} is CLEARED" in message


# --- contract numbers -----------------------------------------------------------------------
@pytest.mark.parametrize("seq", [1, 9_999, 10_000, 123_456_789, ids.MAX_SEQ])
def test_contract_ids_of_any_size_parse_back(seq: int) -> None:
    pid = ids.parse_period("1-13")
    assert ids.parse_contract_id(ids.contract_id(pid, seq)) == (pid, seq)


def test_contract_keys_sort_by_number_past_9999() -> None:
    from vpp_chaincode import state

    pid = ids.parse_period("1-13")
    numbers = [1, 2, 9_999, 10_000, 10_001, 99_999_999, 100_000_000]
    keys = [state.contract_key(pid, n) for n in numbers]
    assert sorted(keys) == keys
    sigs = [state.signature_key(pid, n, 3) for n in numbers]
    assert sorted(sigs) == sigs


def test_get_contracts_orders_a_period_with_over_9999_contracts() -> None:
    """VoidUnsigned on a large book: contract numbers pass 9999 and still list in order."""
    from vpp_chaincode import state

    world = stage("cleared")
    pid = ids.parse_period(P)
    template = world.call(VPPO, "GetContracts", P)["contracts"][-1]
    template = {k: v for k, v in template.items() if k != "signatures"}
    for seq in (9_998, 9_999, 10_000, 10_001, 100_000):
        record = {**template, "seq": seq, "id": ids.contract_id(pid, seq)}
        world.main.state[state.contract_key(pid, seq)] = json.dumps(record).encode()
    listed = [c["seq"] for c in world.call(VPPO, "GetContracts", P)["contracts"]]
    assert listed == sorted(listed) and listed[-1] == 100_000
    signed = world.call(agg_trader(3), "SignContract", f"{P}-0001")
    assert signed["contract"] == f"{P}-0001"


# --- admission by consent (item 6) ---------------------------------------------------------
def test_the_vppo_alone_cannot_admit_an_aggregator() -> None:
    """Before: RegisterAggregator by the VPPO accepted any MSP id, even another's."""
    world = stage("bare")
    message = refused(world, VPPO, "ApproveAdmission", "Agg3", "0.9", code=Code.NOT_FOUND)
    assert "Agg3 has not asked to be admitted" in message
    refused(world, VPPO, "RegisterAggregator", "Agg3", "Agg3MSP", "R3", code="UNKNOWN_FUNCTION")


@pytest.mark.parametrize(
    "caller",
    [agg_admin(4), agg_trader(3), VPPO, grid_admin()],
    ids=["another aggregator's admin", "its trader", "the VPPO", "the grid"],
)
def test_only_its_own_admin_asks_to_admit_an_aggregator(caller) -> None:
    """Nobody can register an MSP it does not hold: the MSP is the signer's."""
    world = stage("bare")
    message = refused(world, caller, "RequestAdmission", "Agg3", "R3", code=Code.NOT_AUTHORIZED)
    assert "only the Agg3MSP admin may ask to admit Agg3" in message


def test_an_aggregator_alone_cannot_admit_itself() -> None:
    world = stage("requested")
    refused(world, agg_admin(3), "ApproveAdmission", "Agg3", code=Code.NOT_AUTHORIZED)
    refused(world, agg_trader(3), "GetAggregator", "Agg3", code=Code.NOT_REGISTERED)
    admitted = world.call(VPPO, "ApproveAdmission", "Agg3", "0.9")
    assert admitted["mspid"] == "Agg3MSP" and admitted["reputation"]["r_ppm"] == 900_000
    refused(world, VPPO, "ApproveAdmission", "Agg3", code=Code.NOT_FOUND)  # the request is used


# --- topology that cannot strand a period (item 8) -------------------------------------------
def test_admission_refuses_a_region_off_the_loaded_topology() -> None:
    world = stage("topology")  # R3-R4-R5 loaded
    for caller, function, args in (
        (agg_admin(6), "RequestAdmission", ("Agg6", "R9")),
        (VPPO, "ApproveAdmission", ("Agg6",)),
    ):
        if function == "ApproveAdmission":  # asked before the topology narrowed
            world.call(VPPO, "RemoveTopology")
            world.call(agg_admin(6), "RequestAdmission", "Agg6", "R9")
            world.call(VPPO, "LoadTopology", '[["R3", "R4", "1"], ["R4", "R5", "1"]]')
        message = refused(world, caller, function, *args, code=Code.REGION_NOT_IN_TOPOLOGY)
        assert "region 'R9' is not in the loaded topology (regions: R3, R4, R5)" in message


def test_load_topology_refuses_a_tree_that_leaves_out_a_registered_region() -> None:
    """Before: every later ClearPeriod failed and the period was stuck after its gate."""
    world = stage("registered")  # Agg3..Agg5 in R3..R5
    message = refused(
        world, VPPO, "LoadTopology", '[["R3", "R4", "10"]]', code=Code.REGION_NOT_IN_TOPOLOGY
    )
    assert message.endswith("leave out the region of registered aggregators: Agg5 (R5)")
    empty = refused(world, VPPO, "LoadTopology", "[]", code=Code.BAD_ARGUMENT)
    assert "RemoveTopology" in empty


def test_the_vppo_can_remove_the_topology_and_clear_without_limits() -> None:
    world = stage("topology")
    world.call(VPPO, "RemoveTopology")
    assert world.call(grid_admin(), "GetConfig", "topology") == {"lines": None, "loaded_tx": None}
    refused(world, VPPO, "RemoveTopology", code=Code.NOT_FOUND)
    refused(world, grid_admin(), "RemoveTopology", code=Code.NOT_AUTHORIZED)


# --- aggregator-owned keys need the aggregator (item 4, market part) -------------------------
VPPO_AND_GRID = frozenset({"VPPOMSP", "GridMSP"})
EVERYONE = VPPO_AND_GRID | {"Agg3MSP", "Agg4MSP", "Agg5MSP"}


def _forge(world: World, key: str, value: bytes | None, endorsers: frozenset[str]) -> None:
    """What VPPO and Grid running modified chaincode could submit: a write set of their choice."""
    from vpp_shim.testing import MemoryStub

    stub = MemoryStub(world.main, VPPO, "Forged", [], {})
    if value is None:
        stub.del_state(key)
    else:
        stub.put_state(key, value)
    world.main.commit(stub, endorsers)


@pytest.mark.parametrize("change", ["rewrite", "delete"])
def test_vppo_and_grid_together_cannot_change_an_aggregators_order(change: str) -> None:
    from vpp_chaincode import state
    from vpp_shim.testing import EndorsementPolicyFailure

    world = stage("open")
    order_key = state.order_key(ids.parse_period(P), 3)
    forged = None if change == "delete" else world.main.state[order_key].replace(b"1", b"9")
    before = world.snapshot()
    with pytest.raises(EndorsementPolicyFailure, match="ENDORSEMENT_POLICY_FAILURE"):
        _forge(world, order_key, forged, VPPO_AND_GRID)
    assert world.snapshot() == before
    _forge(world, order_key, forged, VPPO_AND_GRID | {"Agg3MSP"})  # with Agg3's peer: valid


def test_vppo_and_grid_together_cannot_change_a_signature() -> None:
    from vpp_chaincode import state
    from vpp_shim.testing import EndorsementPolicyFailure

    world = stage("cleared")
    world.call(agg_trader(3), "SignContract", CONTRACT)
    sig = state.signature_key(ids.parse_period(P), 1, 3)
    with pytest.raises(EndorsementPolicyFailure):
        _forge(world, sig, None, VPPO_AND_GRID)
    with pytest.raises(EndorsementPolicyFailure):  # nor hand it to another org
        _forge(world, sig, b"{}", VPPO_AND_GRID | {"Agg4MSP"})


def test_orders_and_signatures_carry_their_owners_policy() -> None:
    """The policy is the market's endorsers plus the owner's peer, byte-identical everywhere."""
    from vpp_chaincode import keypolicy, state
    from vpp_shim.testing import policy_satisfied

    world = stage("cleared")
    world.call(agg_trader(4), "SignContract", CONTRACT)
    pid = ids.parse_period(P)
    for key, owner in (
        (state.order_key(pid, 3), "Agg3MSP"),
        (state.order_key(pid, 4), "Agg4MSP"),
        (state.signature_key(pid, 1, 4), "Agg4MSP"),
    ):
        policy = world.main.metadata[key]["VALIDATION_PARAMETER"]
        assert policy == keypolicy.owner_policy(owner)
        assert keypolicy.orgs_of(policy) == sorted(["GridMSP", "VPPOMSP", owner])
        assert policy_satisfied(policy, EVERYONE)
        assert not policy_satisfied(policy, EVERYONE - {owner})
        assert not policy_satisfied(policy, EVERYONE - {"GridMSP"})
    # The market's own transactions never write an owned key: they commit with VPPO and Grid.
    for step, args in (("VoidUnsigned", (P,)),):
        world.main.advance(SIGNING_WINDOW_S)
        world.main.invoke(world.market, VPPO, step, *args, endorsers=VPPO_AND_GRID)
