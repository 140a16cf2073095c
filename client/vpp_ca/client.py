"""A small client of Fabric CA's REST API (v1): enroll, reenroll, register, revoke,
gencrl and the identity list, over TLS, from Python.

Why our own: the official SDK clients (Go, Node, Java) are not Python, and
``fabric-ca-client`` would mean one Go process per call (network-up enrols
~40 identities). The wire format is small: JSON bodies, HTTP basic auth for
enroll, and for everything else an ``Authorization`` token made of the
caller's enrolment certificate and an ECDSA signature over the request
(method, URI, body and certificate, each base64-encoded, joined by dots,
hashed with SHA-256; S normalised low as Fabric's BCCSP requires). See
docs/identities.md.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from vpp_gateway.identity import Signer

from vpp_ca.errors import CAError, CAUnreachableError

API = "/api/v1"
DEFAULT_TIMEOUT = 15.0
# RFC 5280 reason names Fabric CA accepts.
REVOKE_REASONS = (
    "unspecified",
    "keycompromise",
    "cacompromise",
    "affiliationchange",
    "superseded",
    "cessationofoperation",
    "certificatehold",
    "removefromcrl",
    "privilegewithdrawn",
    "aacompromise",
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class CAEndpoint:
    """Where one organisation's CA listens and the certificate its TLS chains to."""

    org: str  # VPPO, Grid, Agg3, Orderer
    url: str  # https://127.0.0.1:8044
    tls_ca_pem: bytes = field(repr=False)
    caname: str = ""

    def describe(self) -> str:
        return f"{self.org}'s CA ({self.url})"


@dataclass(frozen=True)
class Caller:
    """An enrolled identity that signs requests to its CA (a registrar, a revoker, or
    itself when it re-enrols)."""

    cert_pem: bytes = field(repr=False)
    signer: Signer = field(repr=False)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> Caller:
        return cls(cert_pem, Signer.from_pem(key_pem))

    @property
    def enrollment_id(self) -> str:
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    def token(self, method: str, uri: str, body: bytes) -> str:
        """The ``Authorization`` header value Fabric CA verifies for ``method uri body``."""
        b64cert = _b64(self.cert_pem)
        payload = ".".join((method, _b64(uri.encode()), _b64(body), b64cert))
        return f"{b64cert}.{_b64(self.signer.sign(payload.encode()))}"


@dataclass(frozen=True)
class Enrollment:
    """What an enrol or re-enrol returns: a new key, its certificate and the CA chain."""

    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    ca_chain_pem: bytes = field(repr=False)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def caller(self) -> Caller:
        return Caller.from_pem(self.cert_pem, self.key_pem)


@dataclass(frozen=True)
class Revocation:
    revoked: tuple[tuple[str, str], ...]  # (serial hex, AKI hex) of each revoked certificate
    crl_pem: bytes = field(repr=False)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def csr_pem(key: ec.EllipticCurvePrivateKey, common_name: str, hosts: Sequence[str] = ()) -> str:
    """A PKCS#10 request; the CA insists that its CN is the enrolment id."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    import ipaddress

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def crl_to_pem(data: bytes) -> bytes:
    """Fabric CA returns the CRL base64-encoded, PEM or DER depending on version."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return data
    return x509.load_der_x509_crl(data).public_bytes(serialization.Encoding.PEM)


class CAClient:
    """One Fabric CA server. Thread-safe (each call opens its own HTTPS connection)."""

    def __init__(self, endpoint: CAEndpoint, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cadata=endpoint.tls_ca_pem.decode())

    # --- transport ----------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        caller: Caller | None = None,
        basic: tuple[str, str] | None = None,
        what: str,
    ) -> Any:
        uri = f"{API}/{path}"
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"}
        if caller is not None:
            headers["Authorization"] = caller.token(method, uri, data)
        elif basic is not None:
            headers["Authorization"] = "Basic " + _b64(f"{basic[0]}:{basic[1]}".encode())
        request = urllib.request.Request(
            self.endpoint.url.rstrip("/") + uri,
            data=data if method != "GET" else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._ssl) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CAUnreachableError(
                f"{what}: {self.endpoint.describe()} is unreachable: {reason}",
                ca=self.endpoint.org,
            ) from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            raise CAError(
                f"{what}: {self.endpoint.describe()} answered with non-JSON: {raw[:200]!r}",
                ca=self.endpoint.org,
            ) from None
        if not answer.get("success"):
            errors = answer.get("errors") or [{}]
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = first.get("code")
            message = str(first.get("message", "unknown error")).replace("\n", " ")
            raise CAError(
                f"{what}: {self.endpoint.org}'s CA refused (code {code}): {message}",
                code=code if isinstance(code, int) else None,
                ca=self.endpoint.org,
            )
        return answer.get("result")

    def _with_caname(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.endpoint.caname:
            body["caname"] = self.endpoint.caname
        return body

    # --- API ------------------------------------------------------------------------------
    def cainfo(self) -> dict[str, Any]:
        """The CA's name, certificate chain and version (no authentication)."""
        result = self._request("POST", "cainfo", self._with_caname({}), what="cainfo")
        return dict(result)

    def ca_chain_pem(self) -> bytes:
        return base64.b64decode(self.cainfo()["CAChain"])

    def enroll(
        self,
        enrollment_id: str,
        secret: str,
        *,
        profile: str = "",
        hosts: Sequence[str] = (),
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> Enrollment:
        """A fresh key and certificate for a registered identity (``profile="tls"`` for a TLS
        certificate). Attributes registered with ``ecert: true`` go into the certificate."""
        key = key or new_key()
        body: dict[str, Any] = {"certificate_request": csr_pem(key, enrollment_id, hosts)}
        if profile:
            body["profile"] = profile
        if hosts:
            body["hosts"] = list(hosts)
        result = self._request(
            "POST",
            "enroll",
            self._with_caname(body),
            basic=(enrollment_id, secret),
            what=f"enroll {enrollment_id}",
        )
        return self._enrollment(result, key)

    def reenroll(self, caller: Caller, *, hosts: Sequence[str] = ()) -> Enrollment:
        """A new key and certificate for the caller itself (same attributes), e.g. before
        the old certificate expires or after its key may have leaked."""
        key = new_key()
        body: dict[str, Any] = {"certificate_request": csr_pem(key, caller.enrollment_id, hosts)}
        result = self._request(
            "POST",
            "reenroll",
            self._with_caname(body),
            caller=caller,
            what=f"reenroll {caller.enrollment_id}",
        )
        return self._enrollment(result, key)

    @staticmethod
    def _enrollment(result: Mapping[str, Any], key: ec.EllipticCurvePrivateKey) -> Enrollment:
        info = result.get("ServerInfo") or {}
        return Enrollment(
            cert_pem=base64.b64decode(result["Cert"]),
            key_pem=key_pem(key),
            ca_chain_pem=base64.b64decode(info.get("CAChain", "")),
        )

    def register(
        self,
        registrar: Caller,
        enrollment_id: str,
        *,
        secret: str = "",
        id_type: str = "client",
        attrs: Mapping[str, str] | None = None,
        affiliation: str = "",
        max_enrollments: int = 0,
        registrar_attrs: Mapping[str, str] | None = None,
    ) -> str:
        """Registers ``enrollment_id``; returns its enrolment secret (generated by the CA
        when ``secret`` is empty). ``attrs`` go into its certificates (``ecert: true``);
        ``registrar_attrs`` (``hf.*``) only into the CA's registry."""
        attr_list = [{"name": k, "value": v, "ecert": True} for k, v in (attrs or {}).items()]
        attr_list += [{"name": k, "value": v} for k, v in (registrar_attrs or {}).items()]
        body: dict[str, Any] = {
            "id": enrollment_id,
            "type": id_type,
            "affiliation": affiliation,
            "attrs": attr_list,
            "max_enrollments": max_enrollments,
        }
        if secret:
            body["secret"] = secret
        result = self._request(
            "POST",
            "register",
            self._with_caname(body),
            caller=registrar,
            what=f"register {enrollment_id}",
        )
        return str(result["secret"])

    def revoke(
        self,
        revoker: Caller,
        *,
        enrollment_id: str = "",
        serial: str = "",
        aki: str = "",
        reason: str = "keycompromise",
        gencrl: bool = True,
    ) -> Revocation:
        """Revokes every certificate of ``enrollment_id`` (and the id itself, so it cannot
        enrol again), or one certificate by serial and AKI; with ``gencrl`` the answer
        carries the CA's new CRL."""
        if reason not in REVOKE_REASONS:
            raise ValueError(f"reason {reason!r} is not one of {', '.join(REVOKE_REASONS)}")
        body: dict[str, Any] = {"reason": reason, "gencrl": gencrl}
        if enrollment_id:
            body["id"] = enrollment_id
        if serial:
            body |= {"serial": serial, "aki": aki}
        result = self._request(
            "POST",
            "revoke",
            self._with_caname(body),
            caller=revoker,
            what=f"revoke {enrollment_id or serial}",
        )
        revoked = tuple(
            (str(r.get("Serial", "")), str(r.get("AKI", "")))
            for r in result.get("RevokedCerts") or []
        )
        crl = result.get("CRL") or ""
        return Revocation(revoked, crl_to_pem(base64.b64decode(crl)) if crl else b"")

    def gencrl(self, caller: Caller) -> bytes:
        """The CA's current CRL (PEM), signed by the CA."""
        result = self._request(
            "POST", "gencrl", self._with_caname({}), caller=caller, what="gencrl"
        )
        return crl_to_pem(base64.b64decode(result["CRL"]))

    def identities(self, caller: Caller) -> list[dict[str, Any]]:
        """The registered identities the caller may see (its registrar roles)."""
        path = "identities" + (f"?ca={self.endpoint.caname}" if self.endpoint.caname else "")
        result = self._request("GET", path, None, caller=caller, what="identities list")
        return list((result or {}).get("identities") or [])
