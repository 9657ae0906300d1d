"""Builders of database rows for tests: each call makes unique, valid data."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy.orm import Session

from shared.c32 import c32_address
from shared.metadata.normalize import attribute_object
from shared.models import (
    Job,
    JobStatus,
    Metadata,
    MetadataAttribute,
    MetadataProperty,
    Sip,
    SmartContract,
    Token,
    TokenType,
)

_counter = itertools.count(1)


def new_principal(name: str = "collection") -> str:
    n = next(_counter)
    address = c32_address(22, hashlib.sha256(f"deployer-{n}".encode()).digest()[:20])
    return f"{address}.{name}-{n}"


def add_contract(
    session: Session,
    principal: str | None = None,
    sip: Sip = Sip.SIP_009,
    job_status: JobStatus = JobStatus.DONE,
    invalid_reason: int | None = None,
) -> SmartContract:
    principal = principal or new_principal()
    contract = SmartContract(
        principal=principal,
        sip=sip,
        fungible_token_name="ft-token" if sip == Sip.SIP_010 else None,
        non_fungible_token_name="nft-token" if sip == Sip.SIP_009 else None,
        sender_address=principal.split(".")[0],
        block_height=1,
        index_block_hash="0x000001",
        tx_id="0x123456",
        tx_index=0,
    )
    session.add(contract)
    session.flush()
    session.add(
        Job(smart_contract_id=contract.id, status=job_status, invalid_reason=invalid_reason)
    )
    session.flush()
    return contract


def add_token(
    session: Session,
    contract: SmartContract,
    token_number: int = 1,
    job_status: JobStatus = JobStatus.DONE,
    invalid_reason: int | None = None,
    processed: bool = True,
    **fields: Any,
) -> Token:
    token_type = {Sip.SIP_009: TokenType.NFT, Sip.SIP_010: TokenType.FT}.get(
        contract.sip, TokenType.SFT
    )
    token = Token(
        smart_contract_id=contract.id,
        type=token_type,
        token_number=token_number,
        block_height=1,
        index_block_hash="0x000001",
        tx_id="0x123456",
        tx_index=0,
        **fields,
    )
    session.add(token)
    session.flush()
    if processed:
        session.execute(update(Token).where(Token.id == token.id).values(updated_at=func.now()))
    session.add(Job(token_id=token.id, status=job_status, invalid_reason=invalid_reason))
    session.flush()
    return token


def add_metadata(
    session: Session,
    token: Token,
    name: str = "Token #1",
    locale: str | None = None,
    default: bool = True,
    attributes: list[tuple[str, Any, str | None]] = (),  # type: ignore[assignment]
    properties: dict[str, Any] | None = None,
    **fields: Any,
) -> int:
    # The answer's JSON beside the rows, as the workers store it (shared/indexing/metadata_rows.py).
    attributes_json = [attribute_object(t, d, v) for t, v, d in attributes] or None
    fields.setdefault("attributes_json", attributes_json)
    fields.setdefault("properties_json", properties or None)
    metadata_id = session.scalars(
        insert(Metadata)
        .values(
            token_id=token.id, sip=16, name=name, l10n_locale=locale, l10n_default=default, **fields
        )
        .returning(Metadata.id)
    ).one()
    for trait_type, value, display_type in attributes:
        session.execute(
            insert(MetadataAttribute).values(
                metadata_id=metadata_id,
                trait_type=trait_type,
                value=value,
                display_type=display_type,
            )
        )
    for key, value in (properties or {}).items():
        session.execute(
            insert(MetadataProperty).values(metadata_id=metadata_id, name=key, value=value)
        )
    return metadata_id
