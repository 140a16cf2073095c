"""vpp_gateway: a small Python client of Fabric's Gateway gRPC service.

Gateway -> Network -> Contract -> evaluate/submit, as in the official Go and
Node fabric-gateway clients (see docs/client.md, also for why not
fabric-sdk-py)::

    import json
    from vpp_gateway import EndorseError, connect, load_profile, load_wallet_identity

    profile = load_profile()                      # $VPP_HOME or <repo>/.fabric/network
    me = load_wallet_identity("agg3-trader", profile.wallet)
    with connect(me.identity, me.signer, profile=profile) as gateway:
        market = gateway.network("vpp-main").contract("market")
        print(json.loads(market.evaluate("Version"))["version"])
        try:
            market.submit("SubmitOrder", json.dumps(order), commit_timeout=30)
        except EndorseError as err:               # str(err): "chaincode refused: ..."
            print(err)
"""

import logging

from vpp_gateway.client import Connection, GatewayClient
from vpp_gateway.errors import (
    ChaincodeEventsError,
    CommitError,
    CommitStatusError,
    CommitTimeoutError,
    ConfigError,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    GatewayError,
    IdentityError,
    MvccConflictError,
    PeersBehindError,
    PeerUnreachableError,
    ProfileError,
    SubmitError,
    UnconfirmedSubmitError,
)
from vpp_gateway.events import ChaincodeEvent, ChaincodeEventStream
from vpp_gateway.gateway import Contract, Gateway, Network, Timeouts, connect, connect_as
from vpp_gateway.identity import (
    Identity,
    Signer,
    WalletIdentity,
    list_wallet,
    load_msp_identity,
    load_wallet_identity,
)
from vpp_gateway.profile import (
    ChannelInfo,
    ConnectionProfile,
    OrdererInfo,
    PeerInfo,
    default_profile_path,
    find_repo_root,
    load_profile,
)
from vpp_gateway.transaction import Commit, CommitStatus, Proposal, Transaction

# A library logs, the application decides where it goes: without its own logging
# configuration (vppctl, the bench) nothing is printed. Contract.submit warns here when
# it waits for the commit status of a submit the orderers did not confirm.
logging.getLogger("vpp_gateway").addHandler(logging.NullHandler())

__all__ = [
    "ChaincodeEvent",
    "ChaincodeEventStream",
    "ChaincodeEventsError",
    "ChannelInfo",
    "Commit",
    "CommitError",
    "CommitStatus",
    "CommitStatusError",
    "CommitTimeoutError",
    "ConfigError",
    "Connection",
    "ConnectionProfile",
    "Contract",
    "EndorseError",
    "ErrorDetail",
    "EvaluateError",
    "Gateway",
    "GatewayClient",
    "GatewayError",
    "Identity",
    "IdentityError",
    "MvccConflictError",
    "Network",
    "OrdererInfo",
    "PeerInfo",
    "PeerUnreachableError",
    "PeersBehindError",
    "ProfileError",
    "Proposal",
    "Signer",
    "SubmitError",
    "Timeouts",
    "Transaction",
    "UnconfirmedSubmitError",
    "WalletIdentity",
    "connect",
    "connect_as",
    "default_profile_path",
    "find_repo_root",
    "list_wallet",
    "load_msp_identity",
    "load_profile",
    "load_wallet_identity",
]
