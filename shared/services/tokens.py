"""Token jobs: read a token's facts from its contract, fetch its metadata, store both."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from shared.clarity import UInt
from shared.errors import JobError, RetryableJobError, SmartContractClarityError
from shared.metadata.parse import ParsedMetadata
from shared.metadata.uris import token_specific_uri
from shared.models import (
    Metadata,
    MetadataAttribute,
    MetadataProperty,
    SmartContract,
    Token,
    TokenType,
)
from shared.stacks.node import StacksNodeClient

log = logging.getLogger(__name__)

# (token URI as the contract returned it, token number) -> metadata rows, default locale first
MetadataLoader = Callable[[str, int], list[ParsedMetadata]]


@dataclass(frozen=True)
class TokenRef:
    id: int
    type: TokenType
    token_number: int
    contract_principal: str


@dataclass
class TokenData:
    uri: str | None = None
    name: str | None = None
    symbol: str | None = None
    decimals: int | None = None
    total_supply: int | None = None
    metadata: list[ParsedMetadata] = field(default_factory=list)

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


def read_token_data(node: StacksNodeClient, load: MetadataLoader, token: TokenRef) -> TokenData:
    """Contract calls then metadata, with the per-type rules of reference section 6.3."""
    if token.type == TokenType.FT:
        return _read_ft(node, load, token)
    args = [UInt(token.token_number)]
    principal = token.contract_principal
    data = TokenData(uri=_non_empty(node.read_string(principal, "get-token-uri", args)))
    if token.type == TokenType.SFT:
        data.decimals = node.read_uint(principal, "get-decimals", args)
        data.total_supply = node.read_uint(principal, "get-total-supply", args)
    if data.uri is not None:
        data.metadata = load(data.uri, token.token_number)
        data.uri = token_specific_uri(data.uri, token.token_number)
    return data


def _read_ft(node: StacksNodeClient, load: MetadataLoader, token: TokenRef) -> TokenData:
    principal = token.contract_principal
    data = TokenData(uri=_non_empty(node.read_string(principal, "get-token-uri")))
    data.name = node.read_string(principal, "get-name")
    data.symbol = node.read_string(principal, "get-symbol")
    data.decimals = node.read_uint(principal, "get-decimals")
    try:
        data.total_supply = node.read_uint(principal, "get-total-supply")
    except SmartContractClarityError as exc:  # e.g. ALEX wrapped tokens answer (err u6004)
        log.info("%s: total supply unavailable: %s", principal, exc)
    if data.uri is None:
        return data
    try:
        data.metadata = load(data.uri, token.token_number)
    except RetryableJobError:
        raise
    except JobError as exc:
        facts = (data.name, data.symbol, data.decimals, data.total_supply)
        if all(value is None for value in facts):
            raise
        log.info("%s: metadata unusable, keeping the contract's facts: %s", principal, exc)
    data.uri = token_specific_uri(data.uri, token.token_number)
    return data


def _non_empty(uri: str | None) -> str | None:
    return uri if uri else None  # an empty URI means none (reference issue #139)


def store_token_data(session: Session, token: TokenRef, data: TokenData) -> bool:
    """Replace the token's facts and metadata rows; False if the token no longer exists."""
    updated = session.execute(
        update(Token)
        .where(Token.id == token.id)
        .values(**data.contract_fields(), updated_at=func.now())
        .returning(Token.id)
    ).first()
    if updated is None:
        return False
    session.execute(delete(Metadata).where(Metadata.token_id == token.id))
    for row in data.metadata:
        _insert_metadata(session, token.id, row)
    return True


def _insert_metadata(session: Session, token_id: int, row: ParsedMetadata) -> None:
    metadata_id = session.scalars(
        insert(Metadata)
        .values(
            token_id=token_id,
            sip=row.sip,
            name=row.name,
            l10n_locale=row.l10n_locale,
            l10n_uri=row.l10n_uri,
            l10n_default=row.l10n_default,
            description=row.description,
            image=row.image,
        )
        .returning(Metadata.id)
    ).one()
    if row.attributes:
        session.execute(
            insert(MetadataAttribute),
            [
                {
                    "metadata_id": metadata_id,
                    "trait_type": a.trait_type,
                    "value": a.value,
                    "display_type": a.display_type,
                }
                for a in row.attributes
            ],
        )
    if row.properties:
        session.execute(
            insert(MetadataProperty),
            [
                {"metadata_id": metadata_id, "name": k, "value": v}
                for k, v in row.properties.items()
            ],
        )
