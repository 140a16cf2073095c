"""The market's certificate attributes: one definition for every layer.

The chaincode reads them (``vpp_shim.api.Caller``); the network's enrolment and
vppctl's identity commands write them into Fabric CA certificates. They live in
a module of their own, beside ``codes``, so that the client side can share them
without importing the shim's machinery.
"""

from __future__ import annotations

from cryptography import x509

# Fabric CA puts enrollment attributes in this X.509 extension as JSON {"attrs": {...}}.
FABRIC_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
ROLE_ATTR = "vpp.role"  # trader | meter
AGG_ATTR = "vpp.agg"  # the aggregator a meter belongs to
METER_ATTR = "vpp.meter"  # the meter id, aggN-<name>

__all__ = ["AGG_ATTR", "FABRIC_ATTRS_OID", "METER_ATTR", "ROLE_ATTR"]
