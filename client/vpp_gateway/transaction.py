"""One transaction's life: Proposal -> (evaluate | endorse) -> Transaction -> submit -> Commit.

These are the lower-level steps behind ``Contract.evaluate`` and
``Contract.submit``, exposed for callers who need the transaction ID before
committing, want to submit many transactions and wait later, or re-check a
commit that timed out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2

from vpp_gateway.errors import EndorseError, commit_error, endorsers_disagreed
from vpp_gateway.messages import parse_prepared_transaction

# Re-endorsements when endorsers at different heights disagree (see Proposal.endorse).
ENDORSE_MISMATCH_RETRIES = 3

if TYPE_CHECKING:
    from vpp_gateway.gateway import Network


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


class Proposal:
    """A transaction proposal, signed on first use; evaluate it or endorse it."""

    def __init__(
        self,
        network: Network,
        chaincode: str,
        function: str,
        tx_id: str,
        proposal_bytes: bytes,
        endorsing_orgs: list[str] | None = None,
    ) -> None:
        self.network = network
        self.chaincode = chaincode
        self.function = function
        self.tx_id = tx_id
        self.proposal_bytes = proposal_bytes
        self.endorsing_orgs = list(endorsing_orgs or [])
        self._signature: bytes | None = None

    def signed(self) -> proposal_pb2.SignedProposal:
        if self._signature is None:
            self._signature = self.network.gateway.signer.sign(self.proposal_bytes)
        return proposal_pb2.SignedProposal(
            proposal_bytes=self.proposal_bytes, signature=self._signature
        )

    def evaluate(self, timeout: float | None = None) -> bytes:
        """Runs the function on one peer without ordering it; returns its result."""
        gateway = self.network.gateway
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.tx_id,
            channel_id=self.network.name,
            proposed_transaction=self.signed(),
            target_organizations=self.endorsing_orgs,
        )
        response = gateway.call(
            "Evaluate",
            request,
            stage="evaluate",
            tx_id=self.tx_id,
            timeout=timeout if timeout is not None else gateway.timeouts.evaluate,
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
        gateway = self.network.gateway
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.tx_id,
            channel_id=self.network.name,
            proposed_transaction=self.signed(),
            endorsing_organizations=self.endorsing_orgs,
        )
        for attempt in range(ENDORSE_MISMATCH_RETRIES + 1):
            try:
                response = gateway.call(
                    "Endorse",
                    request,
                    stage="endorse",
                    tx_id=self.tx_id,
                    timeout=timeout if timeout is not None else gateway.timeouts.endorse,
                )
                break
            except EndorseError as err:
                if attempt == ENDORSE_MISMATCH_RETRIES or not endorsers_disagreed(err):
                    raise
                time.sleep(0.05 * (attempt + 1))
        envelope = response.prepared_transaction
        info = parse_prepared_transaction(envelope)
        if (info.tx_id, info.channel, info.creator) != (
            self.tx_id,
            self.network.name,
            gateway.creator,
        ):
            raise EndorseError(
                "the gateway returned a prepared transaction that is not this proposal's "
                f"(tx {info.tx_id!r} on {info.channel!r}); refusing to sign it",
                tx_id=self.tx_id,
            )
        return Transaction(self.network, self.tx_id, envelope, info.result)


class Transaction:
    """An endorsed transaction: its result is known, it is not yet ordered."""

    def __init__(
        self, network: Network, tx_id: str, envelope: common_pb2.Envelope, result: bytes
    ) -> None:
        self.network = network
        self.tx_id = tx_id
        self.envelope = envelope
        self.result = result

    def submit(self, timeout: float | None = None) -> Commit:
        """Signs the envelope and hands it to the ordering service (does not wait for commit)."""
        gateway = self.network.gateway
        if not self.envelope.signature:
            self.envelope.signature = gateway.signer.sign(self.envelope.payload)
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.tx_id,
            channel_id=self.network.name,
            prepared_transaction=self.envelope,
        )
        gateway.call(
            "Submit",
            request,
            stage="submit",
            tx_id=self.tx_id,
            timeout=timeout if timeout is not None else gateway.timeouts.submit,
        )
        return Commit(self.network, self.tx_id, self.result)


class Commit:
    """A submitted transaction whose commit can be awaited."""

    def __init__(self, network: Network, tx_id: str, result: bytes) -> None:
        self.network = network
        self.tx_id = tx_id
        self.result = result

    def status(self, timeout: float | None = None) -> CommitStatus:
        """Blocks until the peer has committed the transaction (valid or not)."""
        return self.network.commit_status(self.tx_id, timeout=timeout)

    def wait(self, timeout: float | None = None) -> CommitStatus:
        """Like ``status`` but raises CommitError (MvccConflictError) unless VALID."""
        status = self.status(timeout)
        if not status.valid:
            raise commit_error(self.tx_id, status.validation_code, status.block_number)
        return status
