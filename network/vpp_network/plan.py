"""The shape of the network: organisations, nodes, ports, channels and paths.

Everything else (crypto, configs, process control, status) derives from one
``NetworkPlan`` so that the port plan documented in docs/network.md is the
single source of truth.

Port plan (all on 127.0.0.1 in the default ``loopback`` layout; on the ``hosts``
layout the same ports on each machine's own address, see "Layouts" below):

| node                 | listen | admin / chaincode | operations |
|----------------------|--------|-------------------|------------|
| orderer i (1..4)     | 7000+10i+1 | 7000+10i+2 (osnadmin) | 7000+10i+3 |
| peer of org k        | 8000+10k+1 | 8000+10k+2 (chaincode) | 8000+10k+3 |
| org k's market server | 9000+10k+1 |                  |            |
| org k's meter server | 9000+10k+2 |                   |            |
| Fabric CA of org k   | 8000+10k+4 |                   | 8000+10k+5 |
| Fabric CA of orderers| 7004   |                   | 7005       |

Org index k: 0 = VPPO, 1 = Grid, n+1 = Agg<n>. Every organisation whose peer
has a chaincode installed runs its own server for it (docs/network.md,
"Independent endorsers"), so no organisation's endorsement is computed by
another organisation's process.

A second network can run beside the first (for benchmarks and fault
experiments) with its own state folder and ports shifted by a fixed offset:
``VPP_HOME=.fabric/raft VPP_PORT_OFFSET=10000 VPP_CONSENSUS=etcdraft VPP_ORDERERS=3``.

Layouts (``VPP_LAYOUT``, docs/deployment.md): ``loopback`` runs every process on the
host's 127.0.0.1; ``hosts`` gives every organisation (its peer, CA and chaincode
servers), each orderer and the orderers' CA a machine of its own: a network
namespace ``vpp-<o>-<machine>`` with address 10.203.<o>.<n> and host names
resolving to it, where o = VPP_PORT_OFFSET / 1000 (vpp_network.hosts creates them).
Addresses: .1 the bridge (the root namespace, where clients run), .10 the orderers'
CA, .10+i orderer i, .30+k the organisation of index k.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

FABRIC_VERSION = "3.1.1"
DOMAIN = "vpp.local"
ORDERER_DOMAIN = f"ord.{DOMAIN}"
ORDERER_MSPID = "OrdererMSP"
DEFAULT_AGGS = 6
ORDERER_COUNT = 4
MAIN_CHANNEL = "vpp-main"
LAYOUTS = ("loopback", "hosts")
HOSTS_NET = "10.203"  # the hosts layout's private /16, one /24 per port offset
LOOPBACK = "127.0.0.1"
# The market's order book collection (chaincode/vpp_chaincode/sealed.py reads and writes it).
ORDER_BOOK = "orderBook"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def fabric_home() -> Path:
    """Where binaries and network state live; `.fabric/` in the repo unless overridden."""
    return Path(os.environ.get("VPP_FABRIC_DIR", repo_root() / ".fabric"))


def port_offset() -> int:
    """Shift of every port, so that several networks can run side by side."""
    return int(os.environ.get("VPP_PORT_OFFSET", "0"))


@dataclass(frozen=True)
class PeerOrg:
    name: str  # VPPO, Grid, Agg3
    index: int

    @property
    def mspid(self) -> str:
        return f"{self.name}MSP"

    @property
    def domain(self) -> str:
        return f"{self.name.lower()}.{DOMAIN}"

    @property
    def peer_host(self) -> str:
        return f"peer0.{self.domain}"

    @property
    def port(self) -> int:
        return port_offset() + 8000 + 10 * self.index + 1

    @property
    def chaincode_port(self) -> int:
        return self.port + 1

    @property
    def operations_port(self) -> int:
        return self.port + 2

    @property
    def agg_number(self) -> int | None:
        return int(self.name[3:]) if self.name.startswith("Agg") else None


@dataclass(frozen=True)
class CAServer:
    """One organisation's Fabric CA server (TLS on its machine's address; vpp_network.ca)."""

    org: str  # VPPO, Grid, Agg3, Orderer
    mspid: str
    domain: str
    port: int
    operations_port: int
    address: str = LOOPBACK

    @property
    def name(self) -> str:
        """Process and CA name: ``ca.agg3.vpp.local``."""
        return f"ca.{self.domain}"

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"


@dataclass(frozen=True)
class Orderer:
    number: int

    @property
    def host(self) -> str:
        return f"orderer{self.number}.{ORDERER_DOMAIN}"

    @property
    def name(self) -> str:
        return f"orderer{self.number}"

    @property
    def port(self) -> int:
        return port_offset() + 7000 + 10 * self.number + 1

    @property
    def admin_port(self) -> int:
        return self.port + 1

    @property
    def operations_port(self) -> int:
        return self.port + 2


@dataclass(frozen=True)
class ChaincodeServer:
    """A chaincode (market | meter); each organisation that runs it has its own server.

    ``slot`` places an organisation's server of this chaincode in the port plan.
    """

    name: str  # market | meter
    slot: int
    version: str = "1.0"
    sequence: int = 1

    def port(self, org: PeerOrg) -> int:
        """Where ``org``'s server of this chaincode listens."""
        return port_offset() + 9000 + 10 * org.index + self.slot

    def label(self, org: PeerOrg) -> str:
        """Package label of ``org``'s package (its connection.json names its own server)."""
        return f"{self.name}_{self.version}_{org.name.lower()}"

    def process_name(self, org: PeerOrg) -> str:
        return f"chaincode-{self.name}-{org.name.lower()}"

    def tls_host(self, org: PeerOrg) -> str:
        """The DNS name in the server's TLS certificate (connection.json's ``domain``)."""
        return f"{self.name}.{org.domain}"


@dataclass(frozen=True)
class Collection:
    """A private data collection of a chaincode definition (docs/sealed-orders.md).

    ``required_peers``/``max_peers``: to how many other member peers each
    endorser must / may push the data before it endorses (Fabric's
    requiredPeerCount / maxPeerCount); ``block_to_live`` 0 keeps it forever.
    """

    name: str
    members: tuple[str, ...]  # MSP IDs
    required_peers: int = 0
    max_peers: int = 1
    block_to_live: int = 0
    member_only_read: bool = True
    member_only_write: bool = False

    def config(self) -> dict[str, object]:
        """The entry of ``peer lifecycle chaincode ... --collections-config`` (its JSON)."""
        return {
            "name": self.name,
            "policy": "OR(" + ",".join(f"'{m}.member'" for m in self.members) + ")",
            "requiredPeerCount": self.required_peers,
            "maxPeerCount": self.max_peers,
            "blockToLive": self.block_to_live,
            "memberOnlyRead": self.member_only_read,
            "memberOnlyWrite": self.member_only_write,
        }


@dataclass(frozen=True)
class Channel:
    name: str
    orgs: tuple[PeerOrg, ...]
    chaincode: ChaincodeServer
    # MSP IDs whose peers must all endorse (docs/endorsement.md); the one source of the
    # chaincode's policy and of the connection profile's "endorsers", which clients read.
    endorsers: tuple[str, ...]
    # The organisation without whose admin no channel configuration or chaincode
    # definition change passes (AggN on agg<N>, the VPPO on vpp-main); docs/network.md.
    steward: PeerOrg | None = None
    # The chaincode definition's private data collections (sealed orders on vpp-main).
    collections: tuple[Collection, ...] = ()

    @property
    def endorsement_policy(self) -> str:
        """The chaincode's signature policy: a peer of every endorsing organisation."""
        return "AND(" + ",".join(f"'{mspid}.peer'" for mspid in self.endorsers) + ")"

    @property
    def majority(self) -> int:
        """More than half of the member organisations."""
        return len(self.orgs) // 2 + 1

    def consent_rule(self, role: str) -> str:
        """The steward's ``role`` and enough others for a majority of the members, as a
        signature policy: ``AND('<steward>.<role>', OutOf(majority - 1, <the others>))``.

        With ``admin`` it is who may change the channel; with ``peer`` who must
        endorse a chaincode definition's commit (so who must have approved it).
        Fabric lets one signature satisfy only one principal of a policy, so the
        others are listed without the steward (``AND(steward, OutOf(majority, all))``
        would need a majority besides the steward).
        """
        if self.steward is None:
            members = ",".join(f"'{org.mspid}.{role}'" for org in self.orgs)
            return f"OutOf({self.majority},{members})"
        others = [org for org in self.orgs if org != self.steward]
        steward = f"'{self.steward.mspid}.{role}'"
        if self.majority == 1 or not others:
            return f"AND({steward})"
        listed = ",".join(f"'{org.mspid}.{role}'" for org in others)
        return f"AND({steward},OutOf({self.majority - 1},{listed}))"


@dataclass(frozen=True)
class Host:
    """The machine a node runs on (``NetworkPlan.host_of``).

    On the loopback layout every node is on the host itself (no namespace, 127.0.0.1);
    on the hosts layout each machine is a network namespace with its own address, and
    ``names`` (its nodes' TLS host names) resolve to that address in every namespace.
    """

    machine: str  # vppo, agg3, orderer2, ord (the orderers' CA)
    namespace: str | None
    address: str
    names: tuple[str, ...] = ()


CONSENSUS_TYPES = ("BFT", "etcdraft")


@dataclass
class NetworkPlan:
    aggs: int = DEFAULT_AGGS
    home: Path = field(default_factory=fabric_home)
    consensus: str = field(default_factory=lambda: os.environ.get("VPP_CONSENSUS", "BFT"))
    orderer_count: int = field(
        default_factory=lambda: int(os.environ.get("VPP_ORDERERS", ORDERER_COUNT))
    )
    layout: str = field(default_factory=lambda: os.environ.get("VPP_LAYOUT") or "loopback")

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"LAYOUT must be one of {LAYOUTS}, got {self.layout!r}")
        if not 1 <= self.aggs <= 50:
            raise ValueError(f"AGGS must be between 1 and 50, got {self.aggs}")
        if self.consensus not in CONSENSUS_TYPES:
            raise ValueError(
                f"VPP_CONSENSUS must be one of {CONSENSUS_TYPES}, got {self.consensus}"
            )
        if not 1 <= self.orderer_count <= 9:
            raise ValueError(f"VPP_ORDERERS must be between 1 and 9, got {self.orderer_count}")
        highest = max(
            [o.operations_port for o in [*self.orderers, *self.peer_orgs, *self.cas]]
            + [cc.port(org) for cc in self.chaincodes for org in self.peer_orgs]
        )
        if port_offset() < 0 or highest > 65535:
            raise ValueError(
                f"VPP_PORT_OFFSET={port_offset()} puts ports outside 1..65535 (highest {highest})"
            )

    # --- organisations and nodes -------------------------------------------------
    @property
    def vppo(self) -> PeerOrg:
        return PeerOrg("VPPO", 0)

    @property
    def grid(self) -> PeerOrg:
        return PeerOrg("Grid", 1)

    @property
    def agg_orgs(self) -> list[PeerOrg]:
        return [PeerOrg(f"Agg{n}", n + 1) for n in range(1, self.aggs + 1)]

    @property
    def peer_orgs(self) -> list[PeerOrg]:
        return [self.vppo, self.grid, *self.agg_orgs]

    @property
    def orderers(self) -> list[Orderer]:
        return [Orderer(i) for i in range(1, self.orderer_count + 1)]

    def ca_of(self, org: PeerOrg) -> CAServer:
        address = self.host_of(org).address
        return CAServer(org.name, org.mspid, org.domain, org.port + 3, org.port + 4, address)

    @property
    def orderer_ca(self) -> CAServer:
        base = port_offset() + 7000
        address = self.host_of(None).address
        return CAServer("Orderer", ORDERER_MSPID, ORDERER_DOMAIN, base + 4, base + 5, address)

    # --- machines (layouts) ----------------------------------------------------------
    def host_of(self, node: PeerOrg | Orderer | None) -> Host:
        """The machine of an organisation (its peer, CA and chaincode servers), of an
        orderer, or (``None``) of the orderers' CA."""
        if isinstance(node, PeerOrg):
            names = (node.peer_host, f"ca.{node.domain}")
            names += tuple(cc.tls_host(node) for cc in self.chaincodes)
            machine, number = node.name.lower(), 30 + node.index
        elif isinstance(node, Orderer):
            machine, number, names = node.name, 10 + node.number, (node.host,)
        else:
            machine, number, names = "ord", 10, (f"ca.{ORDERER_DOMAIN}",)
        if self.layout == "loopback":
            return Host(machine, None, LOOPBACK, names)
        subnet = port_offset() // 1000 % 256
        return Host(machine, f"vpp-{subnet}-{machine}", f"{HOSTS_NET}.{subnet}.{number}", names)

    @property
    def hosts(self) -> list[Host]:
        """Every machine: the orderers' CA, the orderers, then the organisations."""
        return [self.host_of(n) for n in [None, *self.orderers, *self.peer_orgs]]

    def dial_host(self, name: str) -> str:
        """How one node reaches another's ``name`` (a TLS host name): by that name on the
        hosts layout (every namespace resolves it), 127.0.0.1 on the loopback one."""
        return name if self.layout == "hosts" else LOOPBACK

    @property
    def cas(self) -> list[CAServer]:
        """Every organisation's CA: the orderers' first, then one per peer organisation."""
        return [self.orderer_ca, *(self.ca_of(org) for org in self.peer_orgs)]

    market = ChaincodeServer("market", 1)
    meter = ChaincodeServer("meter", 2)

    @property
    def chaincodes(self) -> list[ChaincodeServer]:
        return [self.market, self.meter]

    def listen_ports(self) -> list[int]:
        """Every port the network's processes listen on, from the plan alone (nothing on
        disk needed): orderers, peers, CAs and each organisation's chaincode servers."""
        ports = [p for o in self.orderers for p in (o.port, o.admin_port, o.operations_port)]
        ports += [
            p for org in self.peer_orgs for p in (org.port, org.chaincode_port, org.operations_port)
        ]
        ports += [p for ca in self.cas for p in (ca.port, ca.operations_port)]
        ports += [cc.port(org) for cc in self.chaincodes for org in self.chaincode_orgs(cc)]
        return sorted(ports)

    def chaincode_orgs(self, cc: ChaincodeServer) -> list[PeerOrg]:
        """Every organisation with a peer on a channel of ``cc``: each installs its own
        package and runs its own server of ``cc``."""
        orgs = {org for c in self.channels if c.chaincode == cc for org in c.orgs}
        return sorted(orgs, key=lambda org: org.index)

    @property
    def channels(self) -> list[Channel]:
        main = Channel(
            MAIN_CHANNEL,
            tuple(self.peer_orgs),
            self.market,
            (self.vppo.mspid, self.grid.mspid),
            steward=self.vppo,
            collections=(
                # Sealed orders: only the clearing organisations hold the book (each
                # aggregator keeps its own copy in its implicit collection). Both members
                # endorse every order, so each already holds it; required 0 adds no
                # wait, max 1 pushes it to one more member peer (docs/sealed-orders.md).
                Collection(ORDER_BOOK, (self.vppo.mspid, self.grid.mspid), 0, 1),
            ),
        )
        slaves = [
            Channel(
                f"agg{org.agg_number}",
                (org, self.vppo, self.grid),
                self.meter,
                (org.mspid, self.vppo.mspid),
                steward=org,
            )
            for org in self.agg_orgs
        ]
        return [main, *slaves]

    # --- paths --------------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        return self.home / "bin"

    @property
    def net_dir(self) -> Path:
        return Path(os.environ.get("VPP_HOME", self.home / "network"))

    @property
    def crypto_dir(self) -> Path:
        return self.net_dir / "crypto"

    def ca_home(self, ca: CAServer) -> Path:
        """The CA server's own state: config, CA key and certificate, sqlite registry."""
        return self.net_dir / "ca" / ca.domain

    @property
    def wallet_dir(self) -> Path:
        return self.net_dir / "wallet"

    @property
    def run_dir(self) -> Path:
        return self.net_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.net_dir / "logs"

    @property
    def state_file(self) -> Path:
        return self.net_dir / "network.json"

    @property
    def profile_file(self) -> Path:
        return self.net_dir / "connection.json"

    def peer_org_dir(self, org: PeerOrg) -> Path:
        return self.crypto_dir / "peerOrganizations" / org.domain

    def orderer_org_dir(self) -> Path:
        return self.crypto_dir / "ordererOrganizations" / ORDERER_DOMAIN

    def peer_dir(self, org: PeerOrg) -> Path:
        return self.peer_org_dir(org) / "peers" / org.peer_host

    def orderer_dir(self, orderer: Orderer) -> Path:
        return self.orderer_org_dir() / "orderers" / orderer.host

    def admin_msp(self, org: PeerOrg) -> Path:
        return self.peer_org_dir(org) / "users" / f"Admin@{org.domain}" / "msp"

    def orderer_admin_tls(self) -> Path:
        return self.orderer_org_dir() / "users" / f"Admin@{ORDERER_DOMAIN}" / "tls"

    def peer_tls_ca(self, org: PeerOrg) -> Path:
        return self.peer_org_dir(org) / "tlsca" / f"tlsca.{org.domain}-cert.pem"

    def chaincode_tls_dir(self, org: PeerOrg, cc: ChaincodeServer) -> Path:
        """server.crt / server.key of ``org``'s ``cc`` server."""
        return self.peer_org_dir(org) / "chaincode" / cc.name

    def orderer_tls_ca(self) -> Path:
        return self.orderer_org_dir() / "tlsca" / f"tlsca.{ORDERER_DOMAIN}-cert.pem"

    def node_home(self, name: str) -> Path:
        """Per-process config and ledger folder (kept across restarts)."""
        return self.net_dir / "nodes" / name

    def channel_block(self, channel: str) -> Path:
        return self.net_dir / "channel-artifacts" / f"{channel}.block"
