"""`python -m vpp_network {up,down,clean,status} [--aggs N] [--layout hosts]` (what the
Makefile calls)."""

from __future__ import annotations

import argparse
import sys

from vpp_network.network import NetworkError, existing_network
from vpp_network.plan import DEFAULT_AGGS, LAYOUTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vpp_network", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "clean", "status"])
    parser.add_argument(
        "--aggs", type=int, default=None, help=f"aggregators (default {DEFAULT_AGGS})"
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=None,
        help="loopback (default): all on 127.0.0.1; hosts: a network namespace per "
        "organisation and orderer (root; docs/deployment.md)",
    )
    args = parser.parse_args(argv)
    try:
        net = existing_network(args.aggs, layout=args.layout)
    except ValueError as exc:
        print(f"network-{args.command}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "up":
            net.up()
        elif args.command == "down":
            net.down()
        elif args.command == "clean":
            net.down(quiet=True)
            net.clean()
        else:
            from vpp_network.status import print_status

            return 0 if print_status(net) else 3
    except NetworkError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
