"""How far the index is: jobs by kind and status, recent throughput, time left."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.models import JobStatus

# One pass over the jobs: token jobs by token type, contract jobs by standard.
_PROGRESS = text(
    """
    SELECT COALESCE(t.type::text, c.sip::text) AS kind, j.status::text AS status,
           COUNT(*) AS n,
           COUNT(*) FILTER (WHERE j.status IN ('done', 'failed', 'invalid')
                            AND j.updated_at > NOW() - make_interval(secs => :window)) AS recent
    FROM jobs j
    LEFT JOIN tokens t ON t.id = j.token_id
    LEFT JOIN smart_contracts c ON c.id = j.smart_contract_id
    WHERE CAST(:contract AS text) IS NULL OR c.principal = :contract OR t.smart_contract_id =
          (SELECT id FROM smart_contracts WHERE principal = :contract)
    GROUP BY 1, 2
    """
)

FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.INVALID)
TOKEN_KINDS = ("ft", "nft", "sft")


@dataclass
class Progress:
    """Counts by kind (`ft`, `nft`, `sft`, `sip-009`, ...) then by job status."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    finished_recently: int = 0
    window_s: float = 60.0

    def total(self, kinds: tuple[str, ...] = TOKEN_KINDS) -> int:
        return sum(sum(self.counts.get(kind, {}).values()) for kind in kinds)

    def finished(self, kinds: tuple[str, ...] = TOKEN_KINDS) -> int:
        return sum(
            self.counts.get(kind, {}).get(status.value, 0) for kind in kinds for status in FINISHED
        )

    @property
    def tokens_per_second(self) -> float:
        return self.finished_recently / self.window_s

    @property
    def seconds_left(self) -> float | None:
        remaining = self.total() - self.finished()
        if remaining == 0:
            return 0.0
        rate = self.tokens_per_second
        return remaining / rate if rate > 0 else None


def index_progress(
    session: Session, contract: str | None = None, window_s: float = 60.0
) -> Progress:
    progress = Progress(window_s=window_s)
    rows = session.execute(_PROGRESS, {"window": window_s, "contract": contract})
    for kind, status, n, recent in rows:
        progress.counts.setdefault(kind, {})[status] = n
        if kind in TOKEN_KINDS:
            progress.finished_recently += recent
    return progress


# One contract: its job, and its token jobs by status with those finished in the window.
_CONTRACT_PROGRESS = text(
    """
    SELECT c.principal, c.sip::text AS sip, c.token_count,
           (SELECT j.status::text FROM jobs j
            WHERE j.smart_contract_id = c.id AND j.token_id IS NULL) AS contract_job,
           s.status, s.n, s.recent
    FROM smart_contracts c
    LEFT JOIN LATERAL (
      SELECT j.status::text AS status, COUNT(*) AS n,
             COUNT(*) FILTER (WHERE j.status IN ('done', 'failed', 'invalid')
                              AND j.updated_at > NOW() - make_interval(secs => :window)) AS recent
      FROM tokens t JOIN jobs j ON j.token_id = t.id
      WHERE t.smart_contract_id = c.id
      GROUP BY j.status
    ) s ON true
    WHERE c.principal = :contract
    """
)


@dataclass
class ContractProgress:
    """One contract's figures: its own job, its tokens' jobs by status, recent throughput."""

    principal: str
    sip: str
    # Tokens the contract reports (None until its job has enumerated them).
    token_count: int | None
    contract_job: str | None
    tokens: dict[str, int] = field(default_factory=dict)
    finished_recently: int = 0
    window_s: float = 60.0

    @property
    def total(self) -> int:
        return sum(self.tokens.values())

    @property
    def finished(self) -> int:
        return sum(self.tokens.get(status.value, 0) for status in FINISHED)

    @property
    def tokens_per_second(self) -> float:
        return self.finished_recently / self.window_s

    @property
    def seconds_left(self) -> float | None:
        """None while unknown: the contract's tokens are being enumerated, or nothing
        finished lately."""
        if self.contract_job in (JobStatus.PENDING.value, JobStatus.QUEUED.value):
            return None
        remaining = self.total - self.finished
        if remaining == 0:
            return 0.0
        rate = self.tokens_per_second
        return remaining / rate if rate > 0 else None


def contract_progress(
    session: Session, principal: str, window_s: float = 60.0
) -> ContractProgress | None:
    """The figures of one contract; None when no such contract is stored."""
    rows = session.execute(_CONTRACT_PROGRESS, {"window": window_s, "contract": principal}).all()
    if not rows:
        return None
    first = rows[0]
    token_count = None if first.token_count is None else int(first.token_count)  # numeric
    progress = ContractProgress(
        first.principal, first.sip, token_count, first.contract_job, window_s=window_s
    )
    progress.tokens = {status.value: 0 for status in JobStatus}
    for row in rows:
        if row.status is not None:
            progress.tokens[row.status] = row.n
            progress.finished_recently += row.recent
    return progress
