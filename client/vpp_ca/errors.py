"""Errors of the Fabric CA client, each carrying the CA's numeric error code.

Fabric CA answers ``{"success": false, "errors": [{"code": N, "message": ...}]}``;
callers branch on ``code`` (and on the ``kind`` we derive from it), never on
the message text, which differs between CA versions.
"""

from __future__ import annotations

# Fabric CA's error codes (lib/caerrors in fabric-ca v1.5) that callers act on.
CODE_AUTHENTICATION = 20  # wrong secret, unknown id, or a token the CA cannot verify
CODE_INVALID_USER = 23
CODE_INVALID_PASS = 24
CODE_UNTRUSTED_CERT = 26  # a token signed with a certificate another CA issued
CODE_CERT_REVOKED = 28
CODE_REG_ATTR_AUTH = 42  # the registrar may not assign this attribute
CODE_CALLER_NOT_AFFILIATED = 44
CODE_NOT_REVOKER = 7
CODE_REVOKE_ID_NOT_FOUND = 10
CODE_NO_GENCRL_AUTH = 35
CODE_GETTING_USER = 49
CODE_DB_GET = 63
CODE_CERT_ALREADY_REVOKED = 66
CODE_REVOKED_ID = 70
CODE_AUTHORIZATION = 71
CODE_PASSWORD_ATTEMPTS = 73
CODE_DUPLICATE = 74
CODE_REGISTRAR_REG_AUTH = 76

# What went wrong, in the terms vppctl reports (see docs/identities.md).
KIND_BY_CODE = {
    CODE_DUPLICATE: "duplicate",
    CODE_AUTHENTICATION: "authentication",
    CODE_INVALID_USER: "authentication",
    CODE_INVALID_PASS: "authentication",
    CODE_PASSWORD_ATTEMPTS: "authentication",
    CODE_UNTRUSTED_CERT: "foreign-registrar",
    CODE_REG_ATTR_AUTH: "attribute",
    CODE_CERT_REVOKED: "revoked",
    CODE_REVOKED_ID: "revoked",
    CODE_CERT_ALREADY_REVOKED: "already-revoked",
    CODE_REVOKE_ID_NOT_FOUND: "not-found",
    CODE_GETTING_USER: "not-found",
    CODE_DB_GET: "not-found",
    CODE_NOT_REVOKER: "not-authorized",
    CODE_NO_GENCRL_AUTH: "not-authorized",
    CODE_AUTHORIZATION: "not-authorized",
    CODE_REGISTRAR_REG_AUTH: "not-authorized",
    CODE_CALLER_NOT_AFFILIATED: "not-authorized",
}


class CAError(Exception):
    """A refusal or failure of a Fabric CA request (one line, names the CA and the id)."""

    def __init__(self, message: str, *, code: int | None = None, ca: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.ca = ca

    @property
    def kind(self) -> str:
        """``duplicate``, ``authentication``, ``attribute``, ``foreign-registrar``, ... or
        ``other``; stable across CA versions because it comes from the numeric code."""
        return KIND_BY_CODE.get(self.code, "other") if self.code is not None else "other"

    def __str__(self) -> str:
        return self.message


class CAUnreachableError(CAError):
    """The CA server did not answer (not started, wrong port, TLS mismatch)."""


class AttributeNameError(CAError, ValueError):
    """An attribute we do not issue (``vpp.role``, ``vpp.agg``, ``vpp.meter`` only)."""
