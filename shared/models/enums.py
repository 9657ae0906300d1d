"""Enumerations stored as Postgres enum types, with the names and values of Hiro's schema."""

from __future__ import annotations

import enum


class Sip(enum.StrEnum):
    SIP_009 = "sip-009"
    SIP_010 = "sip-010"
    SIP_013 = "sip-013"


class TokenType(enum.StrEnum):
    FT = "ft"
    NFT = "nft"
    SFT = "sft"


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"
    INVALID = "invalid"


class TokenUpdateMode(enum.StrEnum):
    STANDARD = "standard"
    FROZEN = "frozen"
    DYNAMIC = "dynamic"


class ChangeKind(enum.StrEnum):
    """What a change-log entry records (docs/change-feed.md#kinds). Ours, not Hiro's."""

    TOKEN_ADDED = "token_added"  # noqa: S105 - a kind, not a secret
    METADATA_UPDATED = "metadata_updated"
    METADATA_INVALID = "metadata_invalid"
    IMAGE_CACHED = "image_cached"
    OWNER_CHANGED = "owner_changed"
    TOKEN_BURNED = "token_burned"  # noqa: S105 - a kind, not a secret
    SUPPLY_CHANGED = "supply_changed"
    CONTRACT_ADDED = "contract_added"
    ROLLED_BACK = "rolled_back"


TOKEN_TYPE_BY_SIP = {
    Sip.SIP_009: TokenType.NFT,
    Sip.SIP_010: TokenType.FT,
    Sip.SIP_013: TokenType.SFT,
}


def token_type_sql(sip_column: str) -> str:
    """SQL giving the token type (as text) of a contract's `sip` column: `TOKEN_TYPE_BY_SIP`."""
    cases = " ".join(
        f"WHEN '{sip.value}' THEN '{kind.value}'" for sip, kind in TOKEN_TYPE_BY_SIP.items()
    )
    return f"CASE {sip_column} {cases} END"


class JobTrigger(enum.StrEnum):
    """What made a token job due (docs/fetch-history.md#triggers). Ours, stored as text."""

    IMPORT = "import"
    MINT = "mint"
    NOTIFICATION = "notification"
    DYNAMIC = "dynamic"
    SELF_SERVICE = "self_service"
    ADMIN = "admin"
    RETRY = "retry"


class FetchOutcome(enum.StrEnum):
    """How one fetch attempt ended (docs/fetch-history.md#outcomes). Ours, stored as text."""

    OK = "ok"
    UNCHANGED = "unchanged"
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"
    PARSE_ERROR = "parse_error"
    TOO_LARGE = "too_large"
    BLOCKED = "blocked"
    RATE_LIMITED = "rate_limited"
    DEFERRED = "deferred"
    ERROR = "error"  # our own bug or outage, never the host's answer: counted, not recorded
