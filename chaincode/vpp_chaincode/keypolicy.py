"""Key-level (state-based) endorsement policies: aggregator-owned keys need the aggregator.

Trust rules (market-rules.md, "Orders and signatures"): the market's
chaincode policy is AND(VPPO peer, Grid peer), so without more the VPPO and
the Grid together could rewrite anything on vpp-main, an aggregator's order
or its signature of a contract included. Each order and each signature key
therefore carries its own policy, AND(VPPO peer, Grid peer, AggN peer): the
market's own endorsers plus the owner. Fabric validates every later write
(replace, delete, metadata change) of such a key against that policy
instead of the chaincode's, so a transaction endorsed only by the VPPO and
the Grid that touches it is INVALID on commit (ENDORSEMENT_POLICY_FAILURE).

Fabric's rule for a key that does not exist yet is the chaincode's policy
(a new key has no committed metadata): the first write of a key is as strong
as the chaincode policy, every later one needs the owner. docs/security.md
says what that leaves open.

The policy is the bytes of a ``common.SignaturePolicyEnvelope`` (Fabric's
``VALIDATION_PARAMETER`` metadata, as the Go shim's statebased package
builds it): an n-out-of-n gate over ``MSPRole{msp, PEER}`` principals in MSP
id order, so every endorser writes identical bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from vpp_shim.api import Stub

from vpp_chaincode import access

# The market chaincode's endorsing organisations (network/vpp_network/plan.py, the
# vpp-main channel's endorsers): kept in every key-level policy, so a key policy
# only ever adds organisations to the chaincode's.
MARKET_ENDORSERS = (access.VPPO_MSPID, "GridMSP")


def peers_of(mspids: Iterable[str]) -> bytes:
    """AND of a peer of each MSP, as a marshalled SignaturePolicyEnvelope."""
    orgs = sorted(set(mspids))
    identities = [
        msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
            principal=msp_principal_pb2.MSPRole(
                msp_identifier=mspid, role=msp_principal_pb2.MSPRole.PEER
            ).SerializeToString(),
        )
        for mspid in orgs
    ]
    rules = [policies_pb2.SignaturePolicy(signed_by=i) for i in range(len(orgs))]
    envelope = policies_pb2.SignaturePolicyEnvelope(
        version=0,
        rule=policies_pb2.SignaturePolicy(
            n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=len(orgs), rules=rules)
        ),
        identities=identities,
    )
    return envelope.SerializeToString(deterministic=True)


def owner_policy(owner_mspid: str) -> bytes:
    """The market's endorsers and the owning aggregator's peer, all of them."""
    return peers_of([*MARKET_ENDORSERS, owner_mspid])


def protect(stub: Stub, key: str, owner_mspid: str) -> None:
    """Gives ``key`` (created in this transaction) the owner policy.

    Only on creation: the ledger carries a key's policy over later writes, and
    Fabric's validator invalidates any later transaction in the same block that
    touches a key whose policy an earlier one (re)wrote. The caller knows whether
    the key is new from the read it already made, so this costs no round trip.
    """
    stub.set_state_validation_parameter(key, owner_policy(owner_mspid))


def orgs_of(policy: bytes) -> list[str]:
    """The MSP ids a policy written by :func:`peers_of` names (for queries and audits)."""
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy)
    return [
        msp_principal_pb2.MSPRole.FromString(p.principal).msp_identifier
        for p in envelope.identities
    ]
