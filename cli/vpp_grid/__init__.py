"""The Grid's off-chain security check: AC power flow of a period's cleared trades.

Power flow has no place inside chaincode (floats, seconds of CPU, a large
dependency), so the Grid's organisation runs it here, off-chain, and submits
only integers and decimal strings that the market chaincode validates
(``SubmitGridVerdict``). Anyone can re-run it (``verify``) from the model
file whose SHA-256 is on the ledger and the public contracts.

Modules: ``model`` (the grid model file: load, validate, hash), ``build``
(generates the model from pandapower's IEEE 33-bus case), ``flow`` (one AC
power flow of a set of transfers), ``check`` (the curtailment rule and the
verdict), ``verify`` (is a verdict right), ``plot`` (bus voltages).
"""
