"""`vppctl identity register|enroll|list|revoke|reenroll`: identities from the Fabric CAs.

Each organisation runs its own CA; its admin (``aggN-admin``, ``grid-admin``)
is a registrar and revoker there and nowhere else. A new trader or meter is
registered by its organisation's admin, enrolled with the one-time secret
(which writes it into the wallet), and can act at once. ``revoke`` revokes
at the CA and puts the CA's new CRL into the organisation's MSP on every
channel it is a member of, so every peer refuses the identity from then on.
docs/identities.md has the whole story.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from vpp_ca import identities as ids
from vpp_ca.channel_msp import ChannelUpdateError
from vpp_ca.client import REVOKE_REASONS
from vpp_ca.errors import AttributeNameError, CAError, CAUnreachableError
from vpp_market.units import trim
from vpp_network import identities

from vppctl.errors import EXIT_NETWORK, CliError, usage_error
from vppctl.options import AsOption
from vppctl.output import Column, Output, OutputOption, dumps, emit, progress
from vppctl.registry import SETUP, command
from vppctl.settings import SETTINGS

T = TypeVar("T")

commands = typer.Typer()  # this module's commands; main.py adds it to the app
identity_app = typer.Typer(
    name="identity",
    help="Register, enrol, list, re-enrol and revoke identities at the organisations' CAs.",
    no_args_is_help=True,
)
commands.add_typer(identity_app, rich_help_panel=SETUP)

OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        metavar="ORG",
        help="Organisation whose CA to use: AggN (or N), Grid, VPPO.",
        show_default=False,
    ),
]


def _admin_of(mspid: str) -> str:
    """The wallet name of an organisation's admin: Agg3MSP -> agg3-admin."""
    return identities.admin(mspid.removesuffix("MSP"))


def _ca_call(what: str, acting_as: str, org: str, fn: Callable[[], T]) -> T:
    """Runs a CA operation, turning the CA's refusals into one line (and exit code)."""
    try:
        return fn()
    except AttributeNameError as exc:
        raise usage_error(str(exc)) from exc
    except ids.IdentityInputError as exc:
        raise usage_error(str(exc)) from exc
    except CAUnreachableError as exc:
        raise CliError(f"{exc} — is the network up? run `make network-up`", EXIT_NETWORK) from exc
    except ChannelUpdateError as exc:
        raise CliError(str(exc)) from exc
    except CAError as exc:
        raise CliError(_ca_message(what, acting_as, org, exc)) from exc


def _ca_message(what: str, acting_as: str, org: str, exc: CAError) -> str:
    tag = f"[CA {exc.code}]" if exc.code is not None else ""
    ca = f"{exc.ca or org}'s CA"
    if exc.kind == "duplicate":
        return f"{what} is already registered at {ca} {tag}"
    if exc.kind == "authentication" and acting_as == what:
        return f"wrong secret for {what} at {ca}, or {what} is not registered there {tag}"
    if exc.kind == "authentication":
        return (
            f"{ca} does not know {acting_as}: only that organisation's own admin may do this {tag}"
        )
    if exc.kind in ("revoked", "already-revoked"):
        return f"{what} is revoked at {ca} {tag}"
    if exc.kind == "not-authorized":
        return (
            f"{ca} refused {acting_as}: not allowed to do this for {what} (an attribute or "
            f"role its registrar rights do not cover) {tag}"
        )
    if exc.kind == "not-found":
        return f"{ca} has no identity {what} {tag}"
    return str(exc)


# --- register ---------------------------------------------------------------------------
def _parse_attrs(values: list[str] | None) -> dict[str, str]:
    attrs = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise usage_error(f"--attr {item!r} is not NAME=VALUE")
        attrs[trim(name)] = trim(value)
    return attrs


@command(
    identity_app,
    "register",
    path="identity register",
    epilog=(
        "Examples:\n\n"
        "  vppctl identity register agg3-trader2 --role trader            # as agg3-admin\n\n"
        "  vppctl identity register agg3-meter3 --role meter --meter agg3-m3\n\n"
        "  vppctl identity register agg3-trader3 --role trader --output json\n\n"
        "Prints the one-time enrolment secret; pass it to `vppctl identity enroll`."
    ),
)
def register(
    name: Annotated[str, typer.Argument(help="Enrolment id, also the wallet name later.")],
    role: Annotated[str, typer.Option("--role", help="trader or meter.")] = "trader",
    org: OrgOption = None,
    meter: Annotated[
        str | None,
        typer.Option("--meter", metavar="ID", help="Meter id aggN-<name> (meters only)."),
    ] = None,
    attr: Annotated[
        list[str] | None,
        typer.Option(
            "--attr",
            metavar="NAME=VALUE",
            help="Extra certificate attribute (only vpp.role, vpp.agg, vpp.meter exist).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="Choose the secret (default: the CA makes one)."),
    ] = None,
    as_: AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Register a trader or meter at its organisation's CA (as that organisation's admin)."""
    extra = _parse_attrs(attr)
    target = ids.org_mspid(org) if org else _org_from_name(name, role, meter)
    registrar = as_ or _admin_of(target)
    with progress(f"registering {name} at {target[:-3]}'s CA ..."):
        done = _ca_call(
            name,
            registrar,
            target[:-3],
            lambda: ids.register(
                registrar,
                name,
                role,
                org=target,
                meter=meter,
                extra=extra,
                secret=secret or "",
                profile=SETTINGS.profile,
            ),
        )
    row = {
        "id": done.name,
        "mspid": done.mspid,
        "attrs": ",".join(f"{k}={v}" for k, v in sorted(done.attrs.items())),
        "secret": done.secret,
    }
    if output is Output.TABLE:
        typer.echo(f"registered {done.name} at {done.mspid[:-3]}'s CA ({row['attrs']})")
        typer.echo(f"secret: {done.secret}")
        typer.echo(
            f"next: vppctl identity enroll {done.name} --org {done.mspid[:-3]} "
            f"--secret {done.secret}"
        )
        return
    _emit_rows([row], ["id", "mspid", "attrs", "secret"], output)


def _org_from_name(name: str, role: str, meter: str | None) -> str:
    """The CA to use when --org is not given: the Grid's for a meter (once meters come
    from the metering authority), else the aggregator the name or meter id names."""
    if role == "meter" and ids.METERS_FROM_GRID:
        return ids.GRID_MSPID
    for text in (meter or "", name):
        head = text.split("-", 1)[0]
        if head.lower().startswith("agg") and head[3:].isdigit():
            return f"Agg{int(head[3:])}MSP"
    raise usage_error(f"which organisation's CA? pass --org (e.g. --org Agg3) for {name}")


def _emit_rows(rows: list[dict[str, Any]], keys: list[str], output: Output) -> None:
    if output is Output.JSON:
        typer.echo(dumps(rows))
    else:
        emit(rows, [Column(k, k) for k in keys], output)


# --- enroll -----------------------------------------------------------------------------
@command(
    identity_app,
    "enroll",
    path="identity enroll",
    epilog=(
        "Examples:\n\n"
        "  vppctl identity enroll agg3-trader2 --org Agg3 --secret S3cr3t\n\n"
        "  vppctl bid --as agg3-trader2 --agg 3 --side buy --qty 10 --price 0.7 --reserve 0.8"
    ),
)
def enroll(
    name: Annotated[str, typer.Argument(help="Enrolment id given at registration.")],
    secret: Annotated[str, typer.Option("--secret", help="The one-time enrolment secret.")],
    org: OrgOption = None,
    wallet_name: Annotated[
        str | None,
        typer.Option("--wallet-name", help="Wallet name (default: the enrolment id)."),
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Enrol a registered identity: new key, certificate from the CA, into the wallet."""
    target = ids.org_mspid(org) if org else _org_from_name(name, "trader", None)
    with progress(f"enrolling {name} at {target[:-3]}'s CA ..."):
        folder = _ca_call(
            name,
            name,
            target[:-3],
            lambda: ids.enroll(
                name, secret, org=target, wallet_name=wallet_name, profile=SETTINGS.profile
            ),
        )
    row = {"name": folder.name, "mspid": target, "wallet": str(folder)}
    if output is Output.TABLE:
        typer.echo(f"enrolled {name} as wallet identity {folder.name} ({target}): {folder}")
        return
    _emit_rows([row], ["name", "mspid", "wallet"], output)


# --- list -------------------------------------------------------------------------------
@command(
    identity_app,
    "list",
    path="identity list",
    epilog=(
        "Examples:\n\n"
        "  vppctl identity list --org Agg3                # as agg3-admin\n\n"
        "  vppctl identity list --org Grid --output json"
    ),
)
def list_(
    org: OrgOption = None,
    as_: AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Identities registered at an organisation's CA (as that organisation's admin)."""
    if org is None and as_ is None:
        raise usage_error("which CA? pass --org (e.g. --org Agg3) or --as an admin")
    target = ids.org_mspid(org) if org else None
    acting = as_ or _admin_of(target or "")
    where = (target or acting)[:-3] if target else acting
    rows = _ca_call(
        "identities",
        acting,
        where,
        lambda: ids.list_identities(acting, org=target, profile=SETTINGS.profile),
    )
    emit(
        rows,
        [
            Column("id", "Enrolment id"),
            Column("type", "Type"),
            Column("mspid", "MSP"),
            Column("attrs", "Attributes"),
        ],
        output,
        title=f"Identities at {where}'s CA",
        empty="no identities visible to this registrar",
    )


# --- revoke -----------------------------------------------------------------------------
@command(
    identity_app,
    "revoke",
    path="identity revoke",
    epilog=(
        "Examples:\n\n"
        "  vppctl identity revoke agg3-meter2      # as grid-admin: meters are the Grid's\n\n"
        "  vppctl identity revoke agg3-trader2 --reason superseded --output json\n\n"
        "Revokes at the CA, then updates the organisation's MSP (its CRL) on every channel\n"
        "it belongs to and waits until every peer there has it; the identity's next\n"
        "transaction is refused (access denied: the certificate has been revoked)."
    ),
)
def revoke(
    name: Annotated[str, typer.Argument(help="Wallet name or enrolment id.")],
    reason: Annotated[
        str, typer.Option("--reason", help="keycompromise, superseded, cessationofoperation, ...")
    ] = "keycompromise",
    as_: AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Revoke an identity at its CA and make every peer refuse it (channel MSP CRL)."""
    from vpp_gateway import load_profile

    profile = load_profile(SETTINGS.profile)
    mspid = ids.wallet_meta(profile, name).get("mspid")
    if as_ is None and mspid is None:
        raise usage_error(f"{name} is not in the wallet; pass --as the admin of its organisation")
    revoker = as_ or _admin_of(mspid or "")
    org = (mspid or "")[:-3] or revoker
    if reason not in REVOKE_REASONS:
        raise usage_error(f"--reason {reason!r} is not one of {', '.join(REVOKE_REASONS)}")
    steps: list[str] = []
    with progress(f"revoking {name} ..."):
        done = _ca_call(
            name,
            revoker,
            org,
            lambda: ids.revoke(
                revoker, name, reason=reason, profile=profile, progress=steps.append
            ),
        )
    row = {
        "id": done.enrollment_id,
        "mspid": done.mspid,
        "certificates": len(done.revoked),
        "channels": ",".join(done.channels),
    }
    if output is Output.TABLE:
        typer.echo(
            f"revoked {done.enrollment_id} at {done.mspid[:-3]}'s CA "
            f"({len(done.revoked)} certificate(s)); {done.mspid}'s CRL is now on "
            f"{', '.join(done.channels)}: peers refuse it"
        )
        return
    _emit_rows([row], ["id", "mspid", "certificates", "channels"], output)


# --- reenroll ---------------------------------------------------------------------------
@command(
    identity_app,
    "reenroll",
    path="identity reenroll",
    epilog=(
        "Examples:\n\n  vppctl identity reenroll agg3-trader\n\n"
        "  vppctl identity reenroll agg3-meter1 --output json"
    ),
)
def reenroll(
    name: Annotated[str, typer.Argument(help="Wallet identity to renew.")],
    output: OutputOption = Output.TABLE,
) -> None:
    """New key and certificate for a wallet identity (same attributes), signed by itself."""
    with progress(f"re-enrolling {name} ..."):
        folder = _ca_call(name, name, name, lambda: ids.reenroll(name, profile=SETTINGS.profile))
    if output is Output.TABLE:
        typer.echo(f"re-enrolled {name}: new key and certificate in {folder}")
        return
    _emit_rows([{"name": name, "wallet": str(folder)}], ["name", "wallet"], output)
