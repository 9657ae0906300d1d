"""Token jobs: read a token's facts from its contract, fetch its metadata, store both."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.changes import Entry, entry, record
from shared.clarity import UInt
from shared.errors import JobError, RetryableJobError, SmartContractClarityError
from shared.images.jobs import keeping_cached_images
from shared.indexing.fetch_counts import count_stored_documents
from shared.indexing.fetch_history import FetchRecorder, attempt_rows, write_attempts
from shared.indexing.freshness import observe_when_committed
from shared.indexing.metadata_rows import replace_metadata
from shared.indexing.polite_fetch import LoadedMetadata
from shared.jobs.transitions import ClaimedJob
from shared.metadata.outcomes import HostClass
from shared.metadata.parse import ParsedMetadata
from shared.metadata.uris import token_specific_uri
from shared.models import ChangeKind, JobTrigger, SmartContract, Token, TokenType
from shared.sql_params import array_of, joined, json_rows
from shared.stacks.node import StacksNodeClient

log = logging.getLogger(__name__)

# (token URI as the contract returned it, token number) -> metadata rows, default locale first
MetadataLoader = Callable[[str, int], LoadedMetadata]


@dataclass(frozen=True)
class TokenRef:
    id: int
    type: TokenType
    token_number: int
    contract_principal: str
    # What made its job due, when that happened, and whether this run retries a failure
    # (docs/fetch-history.md#triggers).
    trigger: str = JobTrigger.IMPORT.value
    caused_at: datetime | None = None
    retried: bool = False
    # This run's fetches, written with its result or its error.
    fetches: FetchRecorder = field(default_factory=FetchRecorder, compare=False, repr=False)

    @property
    def attempt_trigger(self) -> str:
        return JobTrigger.RETRY.value if self.retried else self.trigger

    def for_job(self, job: ClaimedJob) -> TokenRef:
        """This token as the run of `job` sees it."""
        return TokenRef(
            self.id,
            self.type,
            self.token_number,
            self.contract_principal,
            job.trigger,
            job.caused_at,
            job.retry_count > 0,
        )


@dataclass
class TokenData:
    uri: str | None = None
    name: str | None = None
    symbol: str | None = None
    decimals: int | None = None
    total_supply: int | None = None
    metadata: list[ParsedMetadata] = field(default_factory=list)
    # Where the documents came from, counted when the token is stored.
    fetched_from: tuple[HostClass, ...] = ()

    def contract_fields(self) -> dict[str, object]:
        """The columns this token type owns (an NFT never touches FT columns)."""
        return {
            "uri": self.uri,
            "name": self.name,
            "symbol": self.symbol,
            "decimals": self.decimals,
            "total_supply": self.total_supply,
        }


def load_token(session: Session, token_id: int) -> TokenRef | None:
    row = session.execute(
        select(Token.id, Token.type, Token.token_number, SmartContract.principal)
        .join(SmartContract, SmartContract.id == Token.smart_contract_id)
        .where(Token.id == token_id)
    ).first()
    return None if row is None else TokenRef(row.id, row.type, row.token_number, row.principal)


def load_tokens(session: Session, jobs: Sequence[ClaimedJob]) -> dict[int, TokenRef]:
    """The tokens of claimed token jobs, by job id, in one query (deleted tokens are absent)."""
    by_token = {job.token_id: job for job in jobs if job.token_id is not None}
    if not by_token:
        return {}
    rows = session.execute(_LOAD_TOKENS, {"ids": joined(by_token)})
    return {
        by_token[r.id].id: TokenRef(
            r.id, TokenType(r.type), int(r.token_number), r.principal
        ).for_job(by_token[r.id])
        for r in rows
    }


def read_token_data(node: StacksNodeClient, load: MetadataLoader, token: TokenRef) -> TokenData:
    """Contract calls then metadata, with the per-type rules of
    docs/token-processing.md#contract-calls."""
    return add_token_metadata(load, token, read_token_facts(node, token))


def read_token_facts(node: StacksNodeClient, token: TokenRef) -> TokenData:
    """What the contract says of the token: its URI (as returned) and, for FTs and SFTs,
    its name, symbol, decimals and supply. No metadata yet."""
    principal = token.contract_principal
    if token.type == TokenType.FT:
        data = TokenData(uri=_non_empty(node.read_string(principal, "get-token-uri")))
        data.name = node.read_string(principal, "get-name")
        data.symbol = node.read_string(principal, "get-symbol")
        data.decimals = node.read_uint(principal, "get-decimals")
        try:
            data.total_supply = node.read_uint(principal, "get-total-supply")
        except SmartContractClarityError as exc:  # e.g. ALEX wrapped tokens answer (err u6004)
            log.info("%s: total supply unavailable: %s", principal, exc)
        return data
    args = [UInt(token.token_number)]
    data = TokenData(uri=_non_empty(node.read_string(principal, "get-token-uri", args)))
    if token.type == TokenType.SFT:
        data.decimals = node.read_uint(principal, "get-decimals", args)
        data.total_supply = node.read_uint(principal, "get-total-supply", args)
    return data


def add_token_metadata(load: MetadataLoader, token: TokenRef, data: TokenData) -> TokenData:
    """Fetch the metadata `data.uri` names; the URI becomes the token-specific one. An FT whose
    document is unusable keeps the contract's facts if it has any."""
    if data.uri is None:
        return data
    try:
        loaded = load(data.uri, token.token_number)
        data.metadata, data.fetched_from = loaded.rows, loaded.fetched_from
    except RetryableJobError:
        raise
    except JobError as exc:
        facts = (data.name, data.symbol, data.decimals, data.total_supply)
        if token.type != TokenType.FT or all(value is None for value in facts):
            raise
        log.info(
            "%s: metadata unusable, keeping the contract's facts: %s", token.contract_principal, exc
        )
    data.uri = token_specific_uri(data.uri, token.token_number)
    return data


def _non_empty(uri: str | None) -> str | None:
    return uri if uri else None  # an empty URI means none, as in Hiro's API


def store_tokens_data(
    session: Session,
    pairs: Sequence[tuple[TokenRef, TokenData]],
    *,
    cache_images: bool = False,
) -> list[int]:
    """Replace the tokens' facts and metadata rows in a few statements; returns the ids stored
    (a token deleted meanwhile is skipped). With `cache_images`, the rows' images get image
    jobs (IMAGE_CACHE_PROCESSOR_ENABLED). Records a `metadata_updated` entry per token, and
    `supply_changed` where the supply moved (docs/change-feed.md#kinds)."""
    if not pairs:
        return []
    facts = json_rows({"id": token.id, **data.contract_fields()} for token, data in pairs)
    stored = {row.id: row for row in session.execute(_UPDATE_TOKENS, {"rows": facts})}
    pairs = [(token, data) for token, data in pairs if token.id in stored]
    if not pairs:
        return []
    changed: set[int] = set()
    if cache_images:
        for token, data in pairs:
            with keeping_cached_images(session, token.id, enabled=True):
                changed |= replace_metadata(session, [(token.id, data.metadata)])
    else:
        changed = replace_metadata(session, [(token.id, data.metadata) for token, data in pairs])
    write_attempts(
        session,
        [
            row
            for token, _ in pairs
            for row in attempt_rows(
                token.id,
                token.attempt_trigger,
                token.fetches.attempts,
                unchanged=token.id not in changed,
            )
        ],
    )
    observe_when_committed(session, ((token.trigger, token.caused_at) for token, _ in pairs))
    record(session, _entries(pairs, stored, changed))
    count_stored_documents(session, ((d.fetched_from, t.id in changed) for t, d in pairs))
    return [token.id for token, _ in pairs]


def record_failed_fetches(session: Session, failed: Sequence[tuple[TokenRef, Exception]]) -> None:
    """The fetches of token runs that failed, written where their failure is; a fetch that
    never started (a busy or rate-limited host) is noted as one (docs/fetch-history.md)."""
    rows: list[dict[str, Any]] = []
    for token, exc in failed:
        if exc is not token.fetches.last_error:
            token.fetches.deferred(exc)
        rows.extend(attempt_rows(token.id, token.attempt_trigger, token.fetches.attempts))
    write_attempts(session, rows)


def _entries(
    pairs: Sequence[tuple[TokenRef, TokenData]], stored: Mapping[int, Any], changed: set[int]
) -> Iterator[Entry]:
    for token, _ in pairs:
        principal, number = token.contract_principal, token.token_number
        details = {"document_changed": token.id in changed}
        yield entry(ChangeKind.METADATA_UPDATED, principal, number, details=details)
        row = stored[token.id]
        if row.supply_changed:
            supply = {"total_supply": row.total_supply}
            yield entry(ChangeKind.SUPPLY_CHANGED, principal, number, details=supply)


# The batch statements are plain SQL: the ORM's bulk delete and expanding IN lists cost more
# CPU than the statements themselves. Ids travel as one comma-joined string, rows as one JSON
# array of objects unpacked by Postgres (docs/sql.md#lists-and-rows).
_LOAD_TOKENS = text(
    f"""
    SELECT t.id, t.type::text AS type, t.token_number, c.principal
      FROM tokens t JOIN smart_contracts c ON c.id = t.smart_contract_id
     WHERE t.id = ANY({array_of(":ids", "integer")})
    """  # noqa: S608 - composed of constant SQL, values are bound
)
# `old` is the row as the statement's snapshot saw it: `supply_changed` compares the supply
# with the one replaced (a concurrent FT supply delta in between would be compared with the
# value before it; its own entry is in the log, and this token's `metadata_updated` follows).
_UPDATE_TOKENS = text(
    """
    UPDATE tokens SET uri = u.uri, name = u.name, symbol = u.symbol, decimals = u.decimals,
           total_supply = u.total_supply, updated_at = NOW()
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS u(id integer, uri text, name text, symbol text, decimals integer,
                total_supply numeric),
           tokens AS old
     WHERE tokens.id = u.id AND old.id = u.id
    RETURNING tokens.id, CAST(tokens.total_supply AS text) AS total_supply,
              old.total_supply IS DISTINCT FROM tokens.total_supply AS supply_changed
    """
)
# A metadata row's document as a digest (its display fields for a row stored before documents
# were kept): a token whose digests, by locale, are the same before and after a fetch did not
# change its documents (docs/change-feed.md#kinds).
