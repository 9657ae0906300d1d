"""The two job kinds, wired to their clients: what a worker task calls."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from shared.db import session_scope
from shared.errors import RetryableJobError
from shared.indexing.contracts import (
    ContractRef,
    load_contract,
    store_contract_tokens,
    store_minted_tokens,
    token_count_for,
)
from shared.indexing.polite_fetch import MetadataService
from shared.indexing.tokens import (
    TokenData,
    TokenRef,
    add_token_metadata,
    load_token,
    load_tokens,
    read_token_data,
    read_token_facts,
    record_failed_fetches,
    store_tokens_data,
)
from shared.jobs.runner import BatchWork, JobContext, NeedsHost, run_batch, run_job
from shared.jobs.transitions import ClaimedJob, JobOutcome, finish_job
from shared.jobs.turns import TokenTurns
from shared.models import JobStatus, Sip
from shared.stacks.api_db import StacksApiDatabase
from shared.stacks.node import StacksNodeClient

log = logging.getLogger(__name__)
S = TypeVar("S")


@dataclass
class Processor:
    """A worker process's clients; built once per process by the workers package."""

    ctx: JobContext
    node: StacksNodeClient
    metadata: MetadataService
    chain: StacksApiDatabase | None = None
    # Node calls and metadata fetches of token batches run here, shared by every task thread.
    fetch_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="fetch")
    )
    # Hands token jobs out in turns across contracts; without it a contract job sends its
    # tokens' jobs itself, all at once.
    turns: TokenTurns | None = None

    def process_contract(self, job_id: int) -> JobOutcome | None:
        return run_job(self.ctx, job_id, self._contract_work)

    def process_token(self, job_id: int) -> JobOutcome | None:
        return run_job(self.ctx, job_id, self._token_work)

    def process_tokens(self, job_ids: Sequence[int]) -> dict[int, JobOutcome]:
        """A batch of token jobs: one claim, concurrent reads, one commit; then more token
        jobs are handed out, in turns, if no worker did a moment ago."""
        outcomes = run_batch(self.ctx, job_ids, self._token_batch, self.fetch_pool)
        if self.turns is not None:
            self.turns.refill()
        return outcomes

    @property
    def _token_batch(self) -> BatchWork[TokenRef, TokenData]:
        return BatchWork(load_tokens, self._read_token, self._store_tokens, record_failed_fetches)

    def _read_token(self, token: TokenRef) -> TokenData | NeedsHost[TokenData]:
        """The contract calls, then the metadata once its host has a free slot."""
        data = read_token_facts(self.node, token)
        load = partial(self.metadata.load, recorder=token.fetches)
        rest = partial(add_token_metadata, load, token, data)
        slots = self.metadata.host_slots
        host = self.metadata.host_to_wait_for(data.uri, token.token_number) if data.uri else None
        if slots is None or host is None:
            return rest()
        return NeedsHost(slots, host, rest)

    def _store_tokens(self, session: Session, pairs: Sequence[tuple[TokenRef, TokenData]]) -> None:
        cache_images = self.ctx.settings.image_cache_processor_enabled
        store_tokens_data(session, pairs, cache_images=cache_images)

    def _keep_failed_fetches(self, token: TokenRef, exc: Exception) -> None:
        """A single token run's attempts, written before its job is settled; an outage that
        stops this write must not hide the run's own error."""
        try:
            with session_scope(self.ctx.sessions) as session:
                record_failed_fetches(session, [(token, exc)])
        except OperationalError:
            log.warning("could not record the fetch attempts of token %s", token.id)

    def _contract_work(self, job: ClaimedJob) -> Sequence[int]:
        assert job.smart_contract_id is not None  # noqa: S101 - claim_job guarantees the kind
        contract = self._load_or_finish(load_contract, job, job.smart_contract_id)
        if contract is None:
            return []
        if contract.sip == Sip.SIP_013:
            return self._sft_contract_work(contract, job)
        limit = self.ctx.settings.metadata_max_nft_contract_token_count
        count = token_count_for(self.node, contract, limit)
        with session_scope(self.ctx.sessions) as session:
            job_ids = store_contract_tokens(session, contract, count, job)
        return self._hand_out(job_ids)

    def _load_or_finish(
        self, load: Callable[[Session, int], S | None], job: ClaimedJob, subject_id: int
    ) -> S | None:
        """The job's contract or token; None, and the job done, if a re-org deleted it."""
        with session_scope(self.ctx.sessions) as session:
            subject = load(session, subject_id)
            if subject is None:
                finish_job(session, job, JobOutcome(JobStatus.DONE))
        return subject

    def _hand_out(self, job_ids: Sequence[int]) -> Sequence[int]:
        """New token jobs, committed: in turns with every other contract's, or all at once."""
        if self.turns is None or not job_ids:
            return job_ids
        self.turns.first_helping()
        return []

    def _sft_contract_work(self, contract: ContractRef, job: ClaimedJob) -> Sequence[int]:
        """SFT tokens exist once minted: read the contract's `sft_mint` prints so far."""
        if self.chain is None:
            raise RetryableJobError("no Stacks API database configured to read SFT mints from")
        tip = self.chain.chain_tip()
        mints = self.chain.sft_mints(contract.principal, tip.block_height if tip else 0)
        with session_scope(self.ctx.sessions) as session:
            job_ids = store_minted_tokens(session, contract, mints, job)
        return self._hand_out(job_ids)

    def _token_work(self, job: ClaimedJob) -> Sequence[int]:
        assert job.token_id is not None  # noqa: S101 - claim_job guarantees the kind
        found = self._load_or_finish(load_token, job, job.token_id)
        if found is None:
            return []
        token = found.for_job(job)
        try:
            data = read_token_data(
                self.node, partial(self.metadata.load, recorder=token.fetches), token
            )
        except Exception as exc:
            self._keep_failed_fetches(token, exc)
            raise
        with session_scope(self.ctx.sessions) as session:
            self._store_tokens(session, [(token, data)])
            finish_job(session, job, JobOutcome(JobStatus.DONE))
        return []
