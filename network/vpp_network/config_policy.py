"""Which admins a channel configuration update needs, and whether it has them.

A config update is authorised by the orderer, which evaluates the
``mod_policy`` of every element the update modifies against the update's
signatures. Collecting signatures one organisation at a time (issue 16), the
submitter wants to know *before* sending whether enough have arrived: this
module reads the same policies from the channel's current configuration and
evaluates them the way Fabric does (a signature satisfies at most one
principal of a policy, spent greedily in rule order; ImplicitMeta policies
count the sub-groups' policies), for signatures that are all admin
signatures. The orderer stays the judge: this is a forecast so that nobody
submits too early, not a replacement.
"""

from __future__ import annotations

from collections.abc import Iterable

from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from fabric_protos.msp import identities_pb2, msp_principal_pb2

Role = msp_principal_pb2.MSPRole.MSPRoleType
# What an admin's signature satisfies: an ADMIN or MEMBER principal of its MSP.
ADMIN_SATISFIES = (Role.ADMIN, Role.MEMBER)


def signer_mspid(signature: configtx_pb2.ConfigSignature) -> str:
    """The MSP ID of whoever made a config signature (its signature header's creator)."""
    header = common_pb2.SignatureHeader.FromString(signature.signature_header)
    return identities_pb2.SerializedIdentity.FromString(header.creator).mspid


def required_policies(config: configtx_pb2.Config, update: configtx_pb2.ConfigUpdate) -> list[str]:
    """Absolute paths of the policies the orderer checks for ``update`` (sorted).

    A modified element needs its own ``mod_policy``; a new element (or a group whose
    membership changes) needs the ``mod_policy`` of the group that holds it.
    """
    found: set[str] = set()
    _walk(config.channel_group, update.write_set, ["Channel"], found)
    return sorted(found)


def _resolve(path: list[str], mod_policy: str) -> str:
    if mod_policy.startswith("/"):
        return mod_policy
    return "/" + "/".join([*path, mod_policy])


def _walk(
    current: configtx_pb2.ConfigGroup,
    written: configtx_pb2.ConfigGroup,
    path: list[str],
    found: set[str],
) -> None:
    if written.version != current.version:
        found.add(_resolve(path, current.mod_policy))
    for kind in ("policies", "values"):
        have, want = getattr(current, kind), getattr(written, kind)
        for key, element in want.items():
            if key not in have:
                found.add(_resolve(path, current.mod_policy))
            elif element.version != have[key].version:
                found.add(_resolve(path, have[key].mod_policy))
    for key, group in written.groups.items():
        if key in current.groups:
            _walk(current.groups[key], group, [*path, key], found)
        else:
            found.add(_resolve(path, current.mod_policy))


def _group_at(config: configtx_pb2.Config, path: list[str]) -> configtx_pb2.ConfigGroup:
    group = config.channel_group
    for name in path[1:]:
        group = group.groups[name]
    return group


def satisfied(config: configtx_pb2.Config, policy_path: str, admins: Iterable[str]) -> bool:
    """Whether admin signatures of the MSPs ``admins`` satisfy the policy at ``policy_path``."""
    *group_path, name = policy_path.strip("/").split("/")
    return _policy_satisfied(config, group_path, name, list(dict.fromkeys(admins)))


def _policy_satisfied(
    config: configtx_pb2.Config, group_path: list[str], name: str, admins: list[str]
) -> bool:
    group = _group_at(config, group_path)
    if name not in group.policies:
        return False
    policy = group.policies[name].policy
    if policy.type == policies_pb2.Policy.SIGNATURE:
        envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy.value)
        principals = [_principal(p) for p in envelope.identities]
        return _rule_satisfied(envelope.rule, principals, admins, frozenset()) is not None
    if policy.type == policies_pb2.Policy.IMPLICIT_META:
        meta = policies_pb2.ImplicitMetaPolicy.FromString(policy.value)
        subs = [
            _policy_satisfied(config, [*group_path, child], meta.sub_policy, admins)
            for child in sorted(group.groups)
        ]
        needed = {
            policies_pb2.ImplicitMetaPolicy.ANY: 1,
            policies_pb2.ImplicitMetaPolicy.ALL: len(subs),
            policies_pb2.ImplicitMetaPolicy.MAJORITY: len(subs) // 2 + 1,
        }[meta.rule]
        return sum(subs) >= needed
    return False


def _principal(principal: msp_principal_pb2.MSPPrincipal) -> tuple[str, int] | None:
    """(MSP ID, role) of a role principal; None for kinds an admin signature never meets."""
    if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
        return None
    role = msp_principal_pb2.MSPRole.FromString(principal.principal)
    return role.msp_identifier, role.role


def _rule_satisfied(
    rule: policies_pb2.SignaturePolicy,
    principals: list[tuple[str, int] | None],
    admins: list[str],
    used: frozenset[str],
) -> frozenset[str] | None:
    """The signers used if ``rule`` holds with signers not in ``used``; else None.

    Greedy in rule order, as Fabric's cauthdsl evaluates: a sub-rule that holds
    spends its signers at once, so what we forecast is what the orderer decides.
    """
    if rule.WhichOneof("Type") == "signed_by":
        principal = principals[rule.signed_by]
        if principal is None or principal[1] not in ADMIN_SATISFIES:
            return None
        if principal[0] in admins and principal[0] not in used:
            return used | {principal[0]}
        return None
    held = 0
    for sub in rule.n_out_of.rules:
        taken = _rule_satisfied(sub, principals, admins, used)
        if taken is not None:
            used, held = taken, held + 1
    return used if held >= rule.n_out_of.n else None
