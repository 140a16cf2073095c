"""Identities from the organisations' Fabric CAs, on the live network, through vppctl.

- a trader registered and enrolled just now by Agg3's admin trades at once;
- a meter revoked with `vppctl identity revoke` is refused by the peers at its
  next reading (the CRL is in its organisation's MSP on the channel), while the
  aggregator's other meter keeps reporting;
- a trader certificate with a forged attribute (self-signed, or issued by
  another organisation's CA) is refused;
- the CA's refusals reach the user as one line: duplicate name, wrong secret,
  unknown attribute, an admin of another organisation.

Names carry a random suffix: the CAs keep their registry across test runs.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from typing import Any

import pytest
from helpers import ensure_aggregators, market, open_test_period, order_json, sealed_order
from vpp_ca.identities import METERS_FROM_GRID
from vpp_gateway import EndorseError, GatewayError, Identity, Signer, connect, connect_as
from vpp_gateway.identity import load_wallet_identity
from vpp_network.issuer import CertificateAuthority

pytestmark = pytest.mark.network

AGG, OTHER = 3, 4
ACCESS_DENIED = "access denied"  # Fabric's refusal of a creator its channel MSP does not accept


def vppctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "vppctl", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, f"vppctl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def as_json(*args: str) -> Any:
    return json.loads(vppctl(*args, "--output", "json").stdout)


def new_identity(name: str, *register: str, org: str = f"Agg{AGG}") -> str:
    """Registers (as the organisation's admin) and enrols ``name``; its wallet name."""
    secret = as_json("identity", "register", name, "--org", org, *register)[0]["secret"]
    vppctl("identity", "enroll", name, "--org", org, "--secret", secret)
    return name


@pytest.fixture(scope="module")
def aggs(network: object) -> None:
    ensure_aggregators([AGG, OTHER])


def test_new_trader_trades_at_once(aggs: None) -> None:
    name = new_identity(f"agg{AGG}-trader-{secrets.token_hex(3)}", "--role", "trader")
    with connect_as("vppo-admin") as gw:
        record = open_test_period(market(gw))
    period = record["period"]
    with connect_as(name) as gw:
        contract = market(gw)
        order = order_json(AGG, period, "buy", 5_000, record["purchase"], record["sale"])
        placed = json.loads(contract.submit("SubmitOrder", **sealed_order(order)))
    assert placed["submitter"] == name


def _read(identity: str, day: int, wh: int) -> None:
    with connect_as(identity) as gw:
        gw.network(f"agg{AGG}").contract("meter").submit("RecordReading", f"{day}-1", str(wh), "0")


def test_revoked_meter_is_refused_while_the_other_meters_report(aggs: None) -> None:
    suffix = secrets.token_hex(3)
    meter_id = f"agg{AGG}-t{suffix}"
    # A meter reports once a resource of it is proposed by the aggregator and certified by
    # the Grid (trust rules); it is retired below, so later seals on agg3 do not wait for it.
    terms = (f"pv-t{suffix}", "PV", "10", meter_id)
    for admin, function in ((f"agg{AGG}-admin", "RegisterResource"),
                            ("grid-admin", "CertifyResource")):  # fmt: skip
        with connect_as(admin) as gw:
            gw.network(f"agg{AGG}").contract("meter").submit(function, *terms, wait_for_peers=True)
    issuer = "Grid" if METERS_FROM_GRID else f"Agg{AGG}"  # the metering authority, once it is
    name = new_identity(
        f"agg{AGG}-meter-t{suffix}", "--role", "meter", "--meter", meter_id, org=issuer
    )
    day = 90_000 + secrets.randbelow(9_000)
    _read(name, day, 100)  # it reports while valid

    revoked = as_json("identity", "revoke", name)[0]
    assert revoked["id"] == name and revoked["certificates"] >= 1
    assert f"agg{AGG}" in revoked["channels"].split(",")

    with pytest.raises(GatewayError) as refused:
        _read(name, day + 1, 100)
    assert ACCESS_DENIED in str(refused.value)
    assert f"creator org [{issuer}MSP]" in str(refused.value)
    _read(f"agg{AGG}-meter1", day + 1, 100)  # the aggregator's other meters keep reporting
    # ... and the revoked one cannot enrol again with its old certificate either.
    again = vppctl("identity", "reenroll", name, check=False)
    assert again.returncode == 1 and "[CA 20]" in again.stderr
    # The metering authority takes the revoked meter's resource out of service.
    retired = as_json("meter", "retire", "--agg", str(AGG), f"pv-t{suffix}")[0]
    assert retired["status"] == "RETIRED"


def _forged(cert_pem: bytes, key_pem: bytes) -> tuple[Identity, Signer]:
    return Identity(f"Agg{AGG}MSP", cert_pem), Signer.from_pem(key_pem)


def test_trader_with_forged_attribute_is_refused(aggs: None) -> None:
    # A CA of our own making, with the real CA's name, issuing vpp.role=trader.
    fake = CertificateAuthority.create(f"ca.agg{AGG}.vpp.local")
    self_issued = _forged(*fake.issue("mallory", attrs={"vpp.role": "trader"}))
    # A real certificate with vpp.role=trader, but from another organisation's CA.
    other = load_wallet_identity(f"agg{OTHER}-trader")
    foreign = (Identity(f"Agg{AGG}MSP", other.identity.cert_pem), other.signer)
    with connect_as("vppo-admin") as gw:
        record = open_test_period(market(gw))
    order = order_json(AGG, record["period"], "buy", 1_000, record["purchase"], record["sale"])
    for identity, signer in (self_issued, foreign):
        with connect(identity, signer) as gw, pytest.raises(GatewayError) as refused:
            market(gw).submit("SubmitOrder", **sealed_order(order))
        assert not isinstance(refused.value, EndorseError) or not refused.value.chaincode_message
        assert ACCESS_DENIED in str(refused.value)


def test_ca_refusals_are_one_line(aggs: None) -> None:
    name = f"agg{AGG}-trader-{secrets.token_hex(3)}"
    as_json("identity", "register", name, "--role", "trader")
    cases = [
        (("register", name, "--role", "trader"), 1, "already registered at Agg3's CA [CA 74]"),
        (("enroll", name, "--org", "Agg3", "--secret", "wrong"), 1, "wrong secret"),
        (
            ("register", f"{name}x", "--role", "trader", "--attr", "vpp.colour=red"),
            2,
            "unknown attribute 'vpp.colour'",
        ),
        (
            ("register", f"{name}y", "--role", "trader", "--as", f"agg{OTHER}-admin"),
            1,
            f"Agg3's CA does not know agg{OTHER}-admin",
        ),
    ]
    for args, code, text in cases:
        result = vppctl("identity", *args, check=False)
        assert result.returncode == code, result.stderr
        assert text in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    listed = {row["id"] for row in as_json("identity", "list", "--org", "Agg3")}
    assert name in listed and f"{name}y" not in listed and f"{name}x" not in listed
