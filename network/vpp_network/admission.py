"""Admitting aggregator N to a running network (issue 16), one party's step at a time.

The flow is Fabric's "add an organisation to a channel", with the VPP's
trust rules on top; each step is what one organisation does with its own
keys, and only public files cross organisation boundaries (in the local
network they share one folder, ``<VPP_HOME>/admissions/agg<N>/``):

1. ``org`` (the new organisation): its own Fabric CA starts, its admin,
   peer, trader and meters are enrolled, its chaincode servers get TLS
   certificates, and it exports its *public* MSP definition
   (``Agg<N>MSP.json``: root certificates, Node OUs, anchor peer).
2. ``propose`` (anyone, usually the VPPO): the ``vpp-main`` configuration
   update that adds the organisation and restates the channel's consent
   policies over the new member list (what a network created with N
   aggregators has), as ``vpp-main-update.pb``.
3. ``sign`` (each existing organisation that consents, one at a time): its
   admin signs the update; the signature is its own file
   ``signatures/<MSP>.sig``.
4. ``submit`` (the VPPO): once the signatures satisfy every policy the update
   touches (vpp_network.config_policy forecasts what the orderer decides),
   they are merged and the update is sent; the orderer is the judge.
5. ``channel`` (orderers, VPPO, Grid): channel ``agg<N>`` (AggN, VPPO, Grid)
   is created on the orderers and the VPPO's and the Grid's peers join it;
   the Grid issues AggN's meter identities when meters come from the
   metering authority (vpp_ca.identities.METERS_FROM_GRID).
6. ``join`` (the new organisation, then agg<N>'s members): its peer starts
   and joins ``vpp-main`` and ``agg<N>``, installs its own chaincode
   packages and starts its own servers; it approves the market's committed
   definition (a changed definition is re-approved by every member and
   re-committed), agg<N>'s members approve and commit the meter's; the
   network's state then counts N aggregators (network-up, -down, -status and
   the connection profile know the new organisation).
7. ``market``: AggN's admin asks to be admitted and the VPPO approves
   (RequestAdmission / ApproveAdmission, the trust rules' admission by
   consent); the aggregator trades from the next period on.

Every step records itself in ``state.json`` and checks the network before
acting, so an interrupted flow resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from fabric_protos.common import common_pb2, configtx_pb2

from vpp_network import ca as ca_servers
from vpp_network import (
    chaincode_tls,
    channel_config,
    config_policy,
    config_update,
    configs,
    enrolment,
    fabric_cli,
    hosts,
    identities,
    late_approval,
    msp_definition,
)
from vpp_network.fabric_cli import FabricCommandError
from vpp_network.network import Network, NetworkError, existing_network
from vpp_network.plan import MAIN_CHANNEL, PeerOrg

Log = Callable[[str], None]

STEPS = ("org", "propose", "sign", "submit", "channel", "join", "market")
STEP_HELP = {
    "org": "the new organisation: its CA, identities, public MSP definition",
    "propose": "the vpp-main configuration update that adds it",
    "sign": "existing organisations' admins sign the update, one at a time",
    "submit": "the VPPO sends the update once the signatures satisfy the policies",
    "channel": "channel agg<N> (AggN, VPPO, Grid) on the orderers; VPPO and Grid join",
    "join": "its peer joins both channels; chaincode servers, definitions, anchor peers",
    "market": "RequestAdmission by AggN's admin, ApproveAdmission by the VPPO",
}
ORDERER_SIGNER = "Orderer"
DEFAULT_METERS = 2


class AdmissionError(NetworkError):
    """A step that cannot run (yet); the message says what to do."""


def _print(message: str) -> None:
    print(message, flush=True)


@dataclass
class Admission:
    """The admission of aggregator ``number`` to the network on disk."""

    number: int
    log: Log = _print

    def __post_init__(self) -> None:
        current = existing_network(log=self.log)
        self.before = current
        layout = getattr(current.plan, "layout", "loopback")
        if layout != "loopback":
            raise AdmissionError(
                f"add-aggregator: the network runs the {layout} layout; admission is built "
                "for the loopback layout only (a new organisation needs its own machine first)"
            )
        admitted = current.plan.aggs
        if self.number <= admitted and not self.record().get("done"):
            raise AdmissionError(
                f"add-aggregator {self.number}: the network already has Agg1..Agg{admitted}"
            )
        if self.number > admitted + 1:
            raise AdmissionError(
                f"add-aggregator {self.number}: the network has Agg1..Agg{admitted}; "
                f"admit Agg{admitted + 1} first (aggregators are numbered without gaps)"
            )
        # The same network with one more aggregator (every other setting carried over).
        self.plan = dataclasses.replace(current.plan, aggs=max(self.number, admitted))
        self.net = Network(self.plan, self.log)
        self.org = next(o for o in self.plan.agg_orgs if o.agg_number == self.number)

    # --- files and recorded progress ---------------------------------------------------
    @property
    def folder(self) -> Path:
        return self.before.plan.net_dir / "admissions" / f"agg{self.number}"

    @property
    def definition_file(self) -> Path:
        return self.folder / f"{self.org_mspid}.json"

    @property
    def update_file(self) -> Path:
        return self.folder / f"{MAIN_CHANNEL}-update.pb"

    @property
    def signature_dir(self) -> Path:
        return self.folder / "signatures"

    @property
    def org_mspid(self) -> str:
        return f"Agg{self.number}MSP"

    def record(self) -> dict[str, Any]:
        try:
            return json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, **changes: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = self.record() | changes
        (self.folder / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    def done(self) -> list[str]:
        return list(self.record().get("done", []))

    def _mark(self, step: str, seconds: float) -> None:
        record = self.record()
        done = [s for s in record.get("done", []) if s != step] + [step]
        timings = record.get("seconds", {}) | {step: round(seconds, 1)}
        self._save(agg=self.number, done=done, seconds=timings)

    # --- running steps ---------------------------------------------------------------------
    def run(self, step: str, **options: Any) -> None:
        """Runs one step (again, if it was done: every step checks the network first)."""
        if step not in STEPS:
            raise AdmissionError(f"step {step!r}: is not one of {', '.join(STEPS)}")
        started = time.monotonic()
        getattr(self, f"step_{step}")(**options)
        if step == "sign" and self.missing():
            return  # signing is done when the signatures are enough, not at the first
        self._mark(step, time.monotonic() - started)

    def run_all(self, region: str | None = None, reputation: str = "") -> None:
        """The whole flow on the local network, skipping the steps already done."""
        done = set(self.done())
        for i, step in enumerate(STEPS, 1):
            prefix = f"[{i}/{len(STEPS)}] {step}: {STEP_HELP[step]}"
            if step in done and step != "sign":  # signatures of a new proposal are void
                self.log(f"{prefix} (done)")
                continue
            self.log(f"{prefix} ...")
            started = time.monotonic()
            if step == "sign":
                self.sign_until_satisfied()
            elif step == "market":
                self.step_market(region=region, reputation=reputation)
            else:
                getattr(self, f"step_{step}")()
            seconds = time.monotonic() - started
            self._mark(step, seconds)
            self.log(f"      {step} done in {seconds:.1f} s")
        self.log(f"Agg{self.number} admitted; it trades from the next period on.")

    # --- 1. the new organisation -------------------------------------------------------------
    def step_org(self) -> None:
        plan, org = self.plan, self.org
        ca = plan.ca_of(org)
        enrolled = (plan.peer_dir(org) / "msp" / "signcerts").is_dir() and self.record().get(
            "enrolled"
        )
        if not enrolled:
            self._reset_org()
            ca_servers.write_server_config(plan, ca)
        if plan.layout == "hosts":  # its own machine; every machine learns its names
            hosts.Machines(plan, self.log).up()
        self.log(f"      starting {ca.name}")
        self.net.start_process(ca.name)
        if not enrolled:
            self.log(f"      enrolling Agg{self.number}'s admin, peer, trader and meters")
            try:
                enrolment.enrol_peer_org(plan, org, plan.wallet_dir)
                chaincode_tls.issue_server_certs(plan, orgs=[org])
            except BaseException:
                self.net.stop_process(ca.name)
                self._reset_org()
                raise
            self._save(enrolled=True)
        sample = yaml.safe_load((plan.node_home("cli") / "core.yaml").read_text())
        configs.write_peer_config(plan, org, sample)
        msp_definition.export(
            org.mspid,
            plan.peer_org_dir(org) / "msp",
            *self._anchor(org),
            self.definition_file,
        )
        self.log(f"      public MSP definition: {self.definition_file}")

    def _anchor(self, org: PeerOrg) -> tuple[str, int]:
        section = configs._peer_org_section(self.plan, org)
        anchor = section["AnchorPeers"][0]
        return str(anchor["Host"]), int(anchor["Port"])

    def _reset_org(self) -> None:
        """Removes a half-made organisation (its CA's registry would refuse re-registration)."""
        plan, org = self.plan, self.org
        for folder in (plan.ca_home(plan.ca_of(org)), plan.peer_org_dir(org)):
            if folder.exists():
                shutil.rmtree(folder)
        for name in identities.agg_identities(self.number):
            for suffix in ("", ".id", ".json"):
                path = plan.wallet_dir / f"{name}{suffix}"
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()

    # --- 2. the update ----------------------------------------------------------------------
    def _configtx(self, definition: dict[str, Any]) -> Path:
        """configtx.yaml with the vpp-main and agg<N> profiles of the N-aggregator plan, the
        new organisation's MSP taken from its definition file (not from its folder)."""
        plan = self.plan
        work = self.folder / "configtx"
        msp_dir = msp_definition.materialise(definition, work / "msp" / definition["mspid"])
        profiles = {}
        for channel in plan.channels:
            if channel.name not in (MAIN_CHANNEL, f"agg{self.number}"):
                continue
            profile = configs._channel_profile(plan, channel)
            for section in profile["Application"]["Organizations"]:
                if section["ID"] == definition["mspid"]:
                    section["MSPDir"] = str(msp_dir)
                    anchor = definition["anchor_peer"]
                    section["AnchorPeers"] = [{"Host": anchor["host"], "Port": anchor["port"]}]
            profiles[configs.profile_name(channel)] = profile
        (work / "configtx.yaml").write_text(yaml.safe_dump({"Profiles": profiles}, sort_keys=False))
        return work

    def _genesis(self, channel_name: str, out: Path) -> common_pb2.Block:
        definition = msp_definition.load(self.definition_file)
        if definition["mspid"] != self.org_mspid:
            raise AdmissionError(
                f"{self.definition_file}: mspid {definition['mspid']!r} is not {self.org_mspid}"
            )
        work = self._configtx(definition)
        channel = next(c for c in self.plan.channels if c.name == channel_name)
        out.parent.mkdir(parents=True, exist_ok=True)
        fabric_cli.run(
            [
                str(self.plan.bin_dir / "configtxgen"),
                *("-configPath", str(work), "-profile", configs.profile_name(channel)),
                *("-channelID", channel_name, "-outputBlock", str(out)),
            ],
            dict(os.environ),
            f"configtxgen for {channel_name}",
        )
        return common_pb2.Block.FromString(out.read_bytes())

    def _current_main_config(self) -> configtx_pb2.Config:
        with tempfile.TemporaryDirectory() as work:
            return channel_config.fetch_config(self.plan, self.plan.vppo, MAIN_CHANNEL, Path(work))

    def _is_member(self) -> bool:
        app = self._current_main_config().channel_group.groups["Application"]
        return self.org_mspid in app.groups

    def step_propose(self) -> None:
        if not self.definition_file.exists():
            raise AdmissionError(
                f"propose: {self.definition_file} is missing; the new organisation runs the "
                "`org` step and hands over its public MSP definition first"
            )
        if self._is_member():
            self.log(f"      {self.org_mspid} is already a member of {MAIN_CHANNEL}")
            return
        current = self._current_main_config()
        block = self._genesis(MAIN_CHANNEL, self.folder / "configtx" / f"{MAIN_CHANNEL}.block")
        target = config_update.target_config(
            current, config_update.block_config(block), self.org_mspid
        )
        update = channel_config.compute_update(MAIN_CHANNEL, current, target)
        self.update_file.write_bytes(channel_config.update_envelope(update).SerializeToString())
        if self.signature_dir.exists():
            shutil.rmtree(self.signature_dir)  # signatures of an older proposal are void
        needed = config_policy.required_policies(current, update)
        self._save(based_on_sequence=current.sequence, policies=needed)
        self.log(f"      {self.update_file.name} written; it needs {', '.join(needed)}")

    # --- 3. signatures -------------------------------------------------------------------------
    def _update(self) -> configtx_pb2.ConfigUpdate:
        if not self.update_file.exists():
            raise AdmissionError(f"{self.update_file} is missing; run the `propose` step first")
        envelope = common_pb2.Envelope.FromString(self.update_file.read_bytes())
        payload = common_pb2.Payload.FromString(envelope.payload)
        config_update_envelope = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
        return configtx_pb2.ConfigUpdate.FromString(config_update_envelope.config_update)

    def signer(self, name: str) -> PeerOrg | None:
        """The organisation called ``name`` (VPPO, Grid, Agg3; ``Orderer``: None)."""
        if name.lower() in (ORDERER_SIGNER.lower(), "orderermsp"):
            return None
        for org in self.before.plan.peer_orgs:
            if name.lower() in (org.name.lower(), org.mspid.lower()):
                return org
        names = ", ".join([o.name for o in self.before.plan.peer_orgs] + [ORDERER_SIGNER])
        raise AdmissionError(f"--org {name!r}: not a member organisation ({names})")

    def step_sign(self, org: str) -> None:
        """``org``'s admin signs the proposed update; its signature becomes its own file."""
        signer = self.signer(org)
        mspid = "OrdererMSP" if signer is None else signer.mspid
        self._update()  # refuses early if there is nothing to sign
        with tempfile.TemporaryDirectory() as work:
            copy = Path(work) / self.update_file.name
            shutil.copyfile(self.update_file, copy)
            channel_config.sign(self.plan, signer, copy)
            signature = channel_config.signatures(copy)[-1]
        if config_policy.signer_mspid(signature) != mspid:
            raise AdmissionError(f"sign: the signature made is not {mspid}'s")
        self.signature_dir.mkdir(parents=True, exist_ok=True)
        (self.signature_dir / f"{mspid}.sig").write_bytes(signature.SerializeToString())
        self.log(f"      {mspid}'s admin signed ({self.signature_dir / f'{mspid}.sig'})")

    def collected(self) -> list[configtx_pb2.ConfigSignature]:
        if not self.signature_dir.is_dir():
            return []
        return [
            configtx_pb2.ConfigSignature.FromString(path.read_bytes())
            for path in sorted(self.signature_dir.glob("*.sig"))
        ]

    def missing(self, submitter: PeerOrg | None = None) -> list[str]:
        """The policies the collected signatures (and the submitter's) do not yet satisfy."""
        submitter = submitter or self.plan.vppo
        config = self._current_main_config()
        signers = [config_policy.signer_mspid(s) for s in self.collected()] + [submitter.mspid]
        return [
            path
            for path in config_policy.required_policies(config, self._update())
            if not config_policy.satisfied(config, path, signers)
        ]

    def sign_until_satisfied(self) -> None:
        """Local flow: the orderer organisation, then the Grid and the aggregators in turn,
        each signing with its own admin key until the VPPO's submission will pass."""
        if self._is_member():
            return
        order = [ORDERER_SIGNER, self.plan.grid.name, *(o.name for o in self.before.plan.agg_orgs)]
        have = {config_policy.signer_mspid(s) for s in self.collected()}
        for name in order:
            if not self.missing():
                return
            mspid = "OrdererMSP" if name == ORDERER_SIGNER else f"{name}MSP"
            if mspid not in have:
                self.step_sign(name)
        if self.missing():
            raise AdmissionError(f"sign: still not satisfied: {', '.join(self.missing())}")

    # --- 4. submit -------------------------------------------------------------------------------
    def step_submit(self) -> None:
        if self._is_member():
            self.log(f"      {self.org_mspid} is already a member of {MAIN_CHANNEL}")
            return
        missing = self.missing()
        if missing:
            have = [config_policy.signer_mspid(s) for s in self.collected()]
            raise AdmissionError(
                f"submit: the signatures of {', '.join(have) or 'nobody'} (and the VPPO's) do "
                f"not satisfy {', '.join(missing)}; more admins sign first (`sign --org ...`)"
            )
        before = self._current_main_config().sequence
        with tempfile.TemporaryDirectory() as work:
            merged = Path(work) / self.update_file.name
            merged.write_bytes(config_update.with_signatures(self.update_file, self.collected()))
            channel_config.submit(self.plan, self.plan.vppo, MAIN_CHANNEL, merged)
        deadline = time.monotonic() + 90
        while not self._is_member():
            if time.monotonic() > deadline:
                raise AdmissionError(
                    f"submit: accepted, but {MAIN_CHANNEL}'s config sequence is still {before}"
                )
            time.sleep(1)
        self.log(f"      {MAIN_CHANNEL} now has {self.org_mspid} as a member")

    # --- 5. channel agg<N> --------------------------------------------------------------------
    def step_channel(self) -> None:
        plan = self.plan
        name = f"agg{self.number}"
        block = plan.channel_block(name)
        if not block.exists():
            self._genesis(name, block)
        for orderer in plan.orderers:
            try:
                fabric_cli.osn_join(plan, orderer, name)
            except FabricCommandError as exc:
                if "already exists" not in str(exc):
                    raise
        self.log(f"      {name} created on {len(plan.orderers)} orderers")
        for org in (plan.vppo, plan.grid):
            self._join(org, name, block)
        meters = enrolment.enrol_agg_meters(plan, self.org, plan.wallet_dir)
        if meters:
            self.log(f"      the Grid issued {', '.join(meters)}")

    def _join(self, org: PeerOrg, channel: str, block: Path) -> None:
        if channel in fabric_cli.peer_channels(self.plan, org):
            return
        for attempt in range(30):  # a new channel's orderers may still be electing
            try:
                fabric_cli.run(
                    [str(self.plan.bin_dir / "peer"), "channel", "join", "-b", str(block)],
                    fabric_cli.admin_env(self.plan, org),
                    f"{org.peer_host} joining {channel}",
                )
                break
            except FabricCommandError:
                if attempt == 29:
                    raise
                time.sleep(1)
        self.log(f"      {org.peer_host} joined {channel}")

    # --- 6. the new peer, chaincode, definitions ------------------------------------------------
    def step_join(self) -> None:
        plan, org, net = self.plan, self.org, self.net
        channel = f"agg{self.number}"
        self.log(f"      starting {org.peer_host}")
        net.start_process(org.peer_host)
        oldest = self.folder / f"{MAIN_CHANNEL}-oldest.block"
        if MAIN_CHANNEL not in fabric_cli.peer_channels(plan, org):
            # The new member fetches the channel's first block itself (it may read now).
            fabric_cli.run(
                [
                    str(plan.bin_dir / "peer"),
                    *("channel", "fetch", "oldest", str(oldest), "-c", MAIN_CHANNEL),
                    *fabric_cli.orderer_args(plan),
                ],
                fabric_cli.admin_env(plan, org),
                f"{org.name} fetching the first block of {MAIN_CHANNEL}",
                timeout=60,
            )
        self._join(org, MAIN_CHANNEL, oldest)
        self._join(org, channel, plan.channel_block(channel))
        self._catch_up(MAIN_CHANNEL)
        packages = net.packages()
        for cc in plan.chaincodes:
            path = fabric_cli.write_ccaas_package(plan, cc, org)
            fabric_cli.install(plan, org, path)
            packages.setdefault(cc.name, {})[org.mspid] = fabric_cli.package_id(plan, cc, org)
        net.save_state(packages=packages)
        for cc in plan.chaincodes:
            net.start_process(cc.process_name(org))
        self.log("      its market and meter servers run; approving definitions")
        late_approval.ensure_definition(plan, MAIN_CHANNEL, packages["market"], self.log)
        late_approval.ensure_definition(plan, channel, packages["meter"], self.log)
        net.save_state(aggs=self.plan.aggs)
        after = existing_network(log=self.log)
        after.write_connection_profile()
        self.log(f"      the network now counts {after.plan.aggs} aggregators")
        from vpp_network import readiness

        waited = readiness.wait_until_endorsable(
            after.plan, only=lambda o, c: o == org or c.name == channel
        )
        self.log(f"      {org.peer_host} endorses on both channels after {waited:.1f} s")

    def _catch_up(self, channel: str, timeout: float = 1800.0) -> None:
        """Waits until the new peer holds the channel's blocks up to the VPPO peer's height
        when it joined (it validates every block since the first), with progress."""
        plan, org = self.plan, self.org
        target = fabric_cli.channel_height(plan, plan.vppo, channel)[0]
        started = time.monotonic()
        last_report = started
        while (height := self._height(org, channel)) < target:
            now = time.monotonic()
            if now - started > timeout:
                raise AdmissionError(
                    f"join: {org.peer_host} has {height} of {target} blocks of {channel} "
                    f"after {timeout:.0f} s; see its log"
                )
            if now - last_report >= 10:
                self.log(f"      {org.peer_host}: {height} of {target} blocks of {channel}")
                last_report = now
            time.sleep(1)
        self.log(f"      {org.peer_host} caught up with {channel} ({target} blocks)")

    def _height(self, org: PeerOrg, channel: str) -> int:
        try:
            return fabric_cli.channel_height(self.plan, org, channel)[0]
        except FabricCommandError:  # the channel is still being created on the peer
            return 0

    # --- 7. the market --------------------------------------------------------------------------
    def step_market(self, region: str | None = None, reputation: str = "") -> None:
        from vpp_gateway import EvaluateError, connect_as

        profile = self.plan.profile_file
        name = f"Agg{self.number}"
        with connect_as(identities.OPERATOR, profile=profile) as gw:
            market = gw.network(MAIN_CHANNEL).contract("market")
            try:
                market.evaluate("GetAggregator", name)
                self.log(f"      {name} is already registered in the market")
                return
            except EvaluateError as exc:
                if exc.code != "NOT_REGISTERED":
                    raise
            if not region:
                raise AdmissionError(f"market: --region is needed to admit {name}")
            meters = json.dumps(
                [identities.meter_id(self.number, m) for m in range(1, DEFAULT_METERS + 1)]
            )
            with connect_as(identities.agg_admin(self.number), profile=profile) as own:
                own.network(MAIN_CHANNEL).contract("market").submit(
                    "RequestAdmission", name, region, meters, wait_for_peers=True
                )
            self.log(f"      {name}'s admin asked to be admitted (region {region})")
            market.submit("ApproveAdmission", name, reputation, wait_for_peers=True)
            self.log(f"      the VPPO approved {name}")


def status(number: int) -> dict[str, Any]:
    """The recorded progress of aggregator ``number``'s admission (for ``admission status``)."""
    folder = existing_network(log=lambda _m: None).plan.net_dir / "admissions" / f"agg{number}"
    try:
        record = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        record = {}
    return {
        "agg": number,
        "folder": str(folder),
        "steps": [
            {
                "step": step,
                "done": step in record.get("done", []),
                "seconds": record.get("seconds", {}).get(step),
            }
            for step in STEPS
        ],
        "signatures": sorted(p.stem for p in (folder / "signatures").glob("*.sig")),
    }
