"""SQLAlchemy models of the service's own database: Hiro's API's tables plus our own.

Our additions: docs/reference-differences.md#schema-additions.
"""

from shared.models.base import Base
from shared.models.chain import (
    AppliedOwnershipChange,
    AppliedSupplyDelta,
    ChainTip,
    OwnershipImport,
    ProcessedBlock,
)
from shared.models.changes import Change, ChangesHorizon
from shared.models.contracts import SmartContract
from shared.models.enums import (
    TOKEN_TYPE_BY_SIP,
    ChangeKind,
    FetchOutcome,
    JobStatus,
    JobTrigger,
    Sip,
    TokenType,
    TokenUpdateMode,
    token_type_sql,
)
from shared.models.images import ImageJob
from shared.models.jobs import Job, RateLimitedHost
from shared.models.ownership import NftOwnership
from shared.models.tokens import (
    Metadata,
    MetadataAttribute,
    MetadataProperty,
    Token,
    UpdateNotification,
)

__all__ = [
    "TOKEN_TYPE_BY_SIP",
    "AppliedOwnershipChange",
    "AppliedSupplyDelta",
    "Base",
    "ChainTip",
    "Change",
    "ChangeKind",
    "ChangesHorizon",
    "FetchOutcome",
    "ImageJob",
    "Job",
    "JobStatus",
    "JobTrigger",
    "Metadata",
    "MetadataAttribute",
    "MetadataProperty",
    "NftOwnership",
    "OwnershipImport",
    "ProcessedBlock",
    "RateLimitedHost",
    "Sip",
    "SmartContract",
    "Token",
    "TokenType",
    "TokenUpdateMode",
    "UpdateNotification",
    "token_type_sql",
]
