"""Entry point of a chaincode-as-a-service process: one contract per process.

    python -m vpp_chaincode.server {market|meter|market-bench} \
        [--address HOST:PORT] [--chaincode-id ID]

The peer dials this process (CCaaS), so the process must know the address to
listen on and the package id the peer will ask for; both default to the
environment variables the CCaaS convention uses, CHAINCODE_SERVER_ADDRESS and
CHAINCODE_ID, so the same command works from a service manager and by hand.
Server TLS, if wanted, comes from the shim's CHAINCODE_TLS_* variables.
``market-bench`` is the market with BenchSeedBook (benchmarket.py), which
only the benchmark networks of tests/bench serve.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from vpp_shim.api import Contract

from vpp_chaincode.benchmarket import BenchMarketContract
from vpp_chaincode.market import MarketContract
from vpp_chaincode.meter import MeterContract

CONTRACTS: dict[str, Callable[[], Contract]] = {
    "market": MarketContract,
    "meter": MeterContract,
    "market-bench": BenchMarketContract,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vpp_chaincode.server",
        description="Serve the market or meter chaincode to Fabric peers (chaincode as a service).",
    )
    parser.add_argument("contract", choices=sorted(CONTRACTS), help="which contract to serve")
    parser.add_argument(
        "--address",
        default=os.environ.get("CHAINCODE_SERVER_ADDRESS"),
        help="listen address HOST:PORT (default: $CHAINCODE_SERVER_ADDRESS)",
    )
    parser.add_argument(
        "--chaincode-id",
        default=os.environ.get("CHAINCODE_ID"),
        help="package id the peers use, label:hash (default: $CHAINCODE_ID)",
    )
    args = parser.parse_args(argv)
    if not args.address:
        parser.error("no listen address: pass --address or set CHAINCODE_SERVER_ADDRESS")
    if not args.chaincode_id:
        parser.error("no chaincode id: pass --chaincode-id or set CHAINCODE_ID")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from vpp_shim import server  # imported late: the argument errors above need no gRPC

    # TLS (off by default, as in the CCaaS convention) is read by the shim from
    # CHAINCODE_TLS_DISABLED / CHAINCODE_TLS_CERT / CHAINCODE_TLS_KEY / CHAINCODE_CLIENT_CA_CERT.
    env = {
        **os.environ,
        "CHAINCODE_SERVER_ADDRESS": args.address,
        "CHAINCODE_ID": args.chaincode_id,
    }
    tls = server.settings_from_env(env).tls
    server.run(CONTRACTS[args.contract](), args.address, args.chaincode_id, tls=tls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
