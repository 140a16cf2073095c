"""One transaction's life: Proposal -> (evaluate | endorse) -> Transaction -> submit -> Commit.

These are the lower-level steps behind ``Contract.evaluate`` and
``Contract.submit``, exposed for callers who need the transaction ID before
committing, want to submit many transactions and wait later, re-check a
commit that timed out, or sign offline.

Each object holds only a ``GatewayClient`` (connection, signer, timeouts)
and its channel name, never the Gateway/Network/Contract that made it.
Each message the peer checks is signed on first use with the client's
signer, or offline: ``bytes_to_sign()`` out, ``with_signature(sig)`` in
(the signature is ECDSA over SHA-256 of those bytes, DER, low S, as
``Signer.sign`` makes it; ``digest()`` is the SHA-256 for signers that take
a prehashed digest).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2

from vpp_gateway.client import GatewayClient
from vpp_gateway.errors import (
    CommitTimeoutError,
    EndorseError,
    GatewayError,
    PeersBehindError,
    SubmitError,
    UnconfirmedSubmitError,
    commit_error,
    endorsers_disagreed,
)
from vpp_gateway.messages import (
    Arg,
    build_proposal,
    commit_status_request,
    parse_prepared_transaction,
)

# Pauses before each re-endorsement when endorsers at different heights disagree (see
# Proposal.endorse): doubling, 3.15 s in all. A peer that validates and commits for
# several channels at once can be a second or more behind the gateway's own peer
# (make bench saw six channels' batch-1 readings exhaust the 0.3 s allowed before).
ENDORSE_MISMATCH_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
# How often wait_for_peers asks the peers for their height.
PEER_POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class CommitStatus:
    """How a transaction was committed: its validation code and block."""

    tx_id: str
    validation_code: str
    block_number: int

    @property
    def valid(self) -> bool:
        return self.validation_code == "VALID"


def validation_code_name(code: int) -> str:
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"UNKNOWN_VALIDATION_CODE_{code}"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Proposal:
    """A transaction proposal, signed on first use (or offline); evaluate it or endorse it."""

    def __init__(
        self,
        client: GatewayClient,
        channel: str,
        chaincode: str,
        function: str,
        tx_id: str,
        proposal_bytes: bytes,
        endorsing_orgs: Iterable[str] | None = None,
        signature: bytes | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.chaincode = chaincode
        self.function = function
        self.tx_id = tx_id
        self.proposal_bytes = proposal_bytes
        self.endorsing_orgs = list(endorsing_orgs or [])
        self._signature = signature

    @classmethod
    def build(
        cls,
        client: GatewayClient,
        channel: str,
        chaincode: str,
        function: str,
        *args: Arg,
        transient: Mapping[str, str | bytes] | None = None,
        endorsing_orgs: Iterable[str] | None = None,
    ) -> Proposal:
        """A fresh proposal (new nonce, new transaction ID) for one call of ``function``."""
        tx_id, proposal_bytes = build_proposal(
            channel=channel,
            chaincode=chaincode,
            function=function,
            args=args,
            transient=transient,
            creator=client.creator,
        )
        return cls(client, channel, chaincode, function, tx_id, proposal_bytes, endorsing_orgs)

    def bytes_to_sign(self) -> bytes:
        """What the creator signs: the serialized Proposal."""
        return self.proposal_bytes

    def digest(self) -> bytes:
        """SHA-256 of ``bytes_to_sign()``, for signers that sign a digest."""
        return _sha256(self.proposal_bytes)

    def with_signature(self, signature: bytes) -> Proposal:
        """This proposal signed offline; a signature the peer would reject is refused here."""
        self.client.check_signature(self.proposal_bytes, signature)
        return Proposal(
            self.client,
            self.channel,
            self.chaincode,
            self.function,
            self.tx_id,
            self.proposal_bytes,
            self.endorsing_orgs,
            signature,
        )

    def signed(self) -> proposal_pb2.SignedProposal:
        if self._signature is None:
            self._signature = self.client.sign(self.proposal_bytes)
        return proposal_pb2.SignedProposal(
            proposal_bytes=self.proposal_bytes, signature=self._signature
        )

    def evaluate(self, timeout: float | None = None) -> bytes:
        """Runs the function on one peer without ordering it; returns its result."""
        client = self.client
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.tx_id,
            channel_id=self.channel,
            proposed_transaction=self.signed(),
            target_organizations=self.endorsing_orgs,
        )
        response = client.call(
            "Evaluate",
            request,
            stage="evaluate",
            tx_id=self.tx_id,
            timeout=timeout if timeout is not None else client.timeouts.evaluate,
        )
        return bytes(response.result.payload)

    def endorse(self, timeout: float | None = None) -> Transaction:
        """Collects endorsements (the gateway follows the endorsement policy).

        Endorsers briefly at different block heights can return different
        results for the same proposal ("ProposalResponsePayloads do not
        match"); nothing has reached the orderers then, so the same proposal
        is endorsed again, a bounded number of times, whatever the call.

        The prepared envelope is checked to carry our transaction ID, channel
        and creator before we ever sign it.
        """
        client = self.client
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.tx_id,
            channel_id=self.channel,
            proposed_transaction=self.signed(),
            endorsing_organizations=self.endorsing_orgs,
        )
        for attempt in range(len(ENDORSE_MISMATCH_DELAYS) + 1):
            try:
                response = client.call(
                    "Endorse",
                    request,
                    stage="endorse",
                    tx_id=self.tx_id,
                    timeout=timeout if timeout is not None else client.timeouts.endorse,
                )
                break
            except EndorseError as err:
                if attempt == len(ENDORSE_MISMATCH_DELAYS) or not endorsers_disagreed(err):
                    raise
                time.sleep(ENDORSE_MISMATCH_DELAYS[attempt])
        envelope = response.prepared_transaction
        info = parse_prepared_transaction(envelope)
        if (info.tx_id, info.channel, info.creator) != (self.tx_id, self.channel, client.creator):
            raise EndorseError(
                "the gateway returned a prepared transaction that is not this proposal's "
                f"(tx {info.tx_id!r} on {info.channel!r}); refusing to sign it",
                tx_id=self.tx_id,
            )
        return Transaction(client, self.channel, self.tx_id, envelope, info.result)


class Transaction:
    """An endorsed transaction: its result is known, it is not yet ordered."""

    def __init__(
        self,
        client: GatewayClient,
        channel: str,
        tx_id: str,
        envelope: common_pb2.Envelope,
        result: bytes,
    ) -> None:
        self.client = client
        self.channel = channel
        self.tx_id = tx_id
        self.envelope = envelope
        self.result = result

    def bytes_to_sign(self) -> bytes:
        """What the creator signs: the envelope's payload."""
        return bytes(self.envelope.payload)

    def digest(self) -> bytes:
        return _sha256(self.bytes_to_sign())

    def with_signature(self, signature: bytes) -> Transaction:
        """This transaction signed offline (checked against the creator's certificate)."""
        self.client.check_signature(self.bytes_to_sign(), signature)
        envelope = common_pb2.Envelope(payload=self.envelope.payload, signature=signature)
        return Transaction(self.client, self.channel, self.tx_id, envelope, self.result)

    def submit(self, timeout: float | None = None) -> Commit:
        """Signs the envelope and hands it to the ordering service (does not wait for commit).

        Raises SubmitError when the gateway cannot confirm that the orderers
        took it; ``err.outcome_unknown`` says whether it may commit anyway
        (``Contract.submit`` then finds out by itself).
        """
        client = self.client
        if not self.envelope.signature:
            self.envelope.signature = client.sign(self.envelope.payload)
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.tx_id,
            channel_id=self.channel,
            prepared_transaction=self.envelope,
        )
        client.call(
            "Submit",
            request,
            stage="submit",
            tx_id=self.tx_id,
            timeout=timeout if timeout is not None else client.timeouts.submit,
        )
        return Commit(client, self.channel, self.tx_id, self.result)

    def unconfirmed_commit(self, submit_error: SubmitError) -> Commit:
        """The Commit of a transaction whose submit failed with an unknown outcome.

        Waiting on it asks for the transaction's commit status as for any
        commit; if none comes in time, UnconfirmedSubmitError says that the
        orderers did not confirm it and what they answered.
        """
        return Commit(self.client, self.channel, self.tx_id, self.result, submit_error)


class Commit:
    """A submitted transaction whose commit can be awaited."""

    def __init__(
        self,
        client: GatewayClient,
        channel: str,
        tx_id: str,
        result: bytes,
        submit_error: SubmitError | None = None,
        signature: bytes | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.tx_id = tx_id
        self.result = result
        self.submit_error = submit_error
        self._request = commit_status_request(channel=channel, tx_id=tx_id, creator=client.creator)
        self._signature = signature
        self._status: CommitStatus | None = None

    @classmethod
    def of(cls, client: GatewayClient, channel: str, tx_id: str) -> Commit:
        """Any transaction on the channel, e.g. one that timed out earlier (no result known)."""
        return cls(client, channel, tx_id, b"")

    def bytes_to_sign(self) -> bytes:
        """What the creator signs to ask for the commit status: a CommitStatusRequest."""
        return self._request

    def digest(self) -> bytes:
        return _sha256(self._request)

    def with_signature(self, signature: bytes) -> Commit:
        self.client.check_signature(self._request, signature)
        return Commit(
            self.client, self.channel, self.tx_id, self.result, self.submit_error, signature
        )

    def status(self, timeout: float | None = None) -> CommitStatus:
        """Blocks until the peer has committed the transaction (valid or not).

        Raises CommitTimeoutError after ``timeout`` (default: the client's
        commit timeout), or UnconfirmedSubmitError for a transaction whose
        submit the orderers did not confirm.
        """
        if self._status is not None:
            return self._status
        if self._signature is None:
            self._signature = self.client.sign(self._request)
        signed = gateway_pb2.SignedCommitStatusRequest(
            request=self._request, signature=self._signature
        )
        effective = timeout if timeout is not None else self.client.timeouts.commit
        try:
            response = self.client.call(
                "CommitStatus", signed, stage="commit_status", tx_id=self.tx_id, timeout=effective
            )
        except CommitTimeoutError as err:
            if self.submit_error is None:
                raise
            raise UnconfirmedSubmitError(self.submit_error, effective) from err
        self._status = CommitStatus(
            self.tx_id, validation_code_name(response.result), response.block_number
        )
        return self._status

    def wait(self, timeout: float | None = None) -> CommitStatus:
        """Like ``status`` but raises CommitError (MvccConflictError) unless VALID."""
        status = self.status(timeout)
        if not status.valid:
            raise commit_error(self.tx_id, status.validation_code, status.block_number)
        return status

    def wait_for_peers(self, orgs: Iterable[str], timeout: float | None = None) -> None:
        """Waits (after the commit) until a peer of each of ``orgs`` has the commit's block.

        The gateway reports a commit from its own peer only; the next
        transaction, often another identity's through another org's gateway,
        is simulated and endorsed on peers that may be a block behind for a
        moment and would not see this one's writes. Raises PeersBehindError
        (naming each org and its height) when they are not there within
        ``timeout`` (default: the client's ``peers`` timeout); the
        transaction itself is committed either way.
        """
        block = self.status().block_number
        limit = timeout if timeout is not None else self.client.timeouts.peers
        deadline = time.monotonic() + limit
        waiting = list(dict.fromkeys(orgs))
        heights: dict[str, int | None] = {}
        errors: dict[str, GatewayError] = {}
        while waiting:
            for org in list(waiting):
                try:
                    height = chain_height(self.client, self.channel, org)
                except GatewayError as err:  # a peer restarting: ask again until the deadline
                    heights[org], errors[org] = None, err
                    continue
                heights[org] = height
                errors.pop(org, None)
                if height > block:
                    waiting.remove(org)
            if not waiting:
                return
            if time.monotonic() >= deadline:
                behind = {org: heights.get(org) for org in waiting}
                cause = next((errors[org] for org in waiting if org in errors), None)
                raise PeersBehindError(self.tx_id, block, behind, limit) from cause
            time.sleep(PEER_POLL_INTERVAL)


def chain_height(
    client: GatewayClient, channel: str, org: str | None = None, timeout: float | None = None
) -> int:
    """Number of blocks on ``channel`` at a peer of ``org`` (default: the client's own org).

    Asked with qscc GetChainInfo, which every channel member may call.
    """
    proposal = Proposal.build(
        client,
        channel,
        "qscc",
        "GetChainInfo",
        channel,
        endorsing_orgs=[org or client.identity.mspid],
    )
    return int(ledger_pb2.BlockchainInfo.FromString(proposal.evaluate(timeout)).height)
