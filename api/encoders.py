"""Response bodies built by hand: plain dicts, a field with no value left out
(docs/reference-differences.md#omitted-fields).

Serialising ourselves is several times faster than dumping through marshmallow on every
request; the marshmallow schemas in `api.schemas.responses` only document these shapes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response

from api.caching import json_answer, to_response
from shared.reads.ft_list import FtListQuery, FtPage
from shared.reads.search import SearchHit
from shared.reads.summaries import TokenSummary
from shared.reads.tokens import TokenView


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON answer no cache keeps, as a Flask response (`api.caching.json_answer`)."""
    return to_response(json_answer(body, status))


def _present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _supply(total_supply: Decimal | int | None) -> str | None:
    """Raw integer units as a string: u128 supplies do not fit a JSON number's exact range."""
    return None if total_supply is None else str(total_supply)


def _sender(principal: str) -> str:
    return principal.split(".", 1)[0]


def _asset_identifier(principal: str, fungible_token_name: str | None) -> str:
    # The reference prints a missing name as `null` too.
    return f"{principal}::{fungible_token_name if fungible_token_name is not None else 'null'}"


def _summary_fields(token: TokenSummary) -> dict[str, Any]:
    return _present(
        name=token.name,
        symbol=token.symbol,
        decimals=token.decimals,
        total_supply=_supply(token.total_supply),
        token_uri=token.uri,
        description=token.description,
        image_uri=token.cached_image,
        image_thumbnail_uri=token.cached_thumbnail_image,
        image_canonical_uri=token.image,
    )


def ft_list_body(query: FtListQuery, page: FtPage) -> dict[str, Any]:
    results = [
        {
            **_summary_fields(token),
            "tx_id": token.tx_id,
            "sender_address": _sender(token.contract_principal),
            "asset_identifier": _asset_identifier(
                token.contract_principal, token.fungible_token_name
            ),
            "contract_principal": token.contract_principal,
        }
        for token in page.results
    ]
    return {"limit": query.limit, "offset": query.offset, "total": page.total, "results": results}


def search_body(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [
        {
            "contract_id": hit.summary.contract_principal,
            "token_number": hit.token_number,
            "token_type": hit.token_type,
            **_summary_fields(hit.summary),
            "tx_id": hit.summary.tx_id,
            "sender_address": _sender(hit.summary.contract_principal),
        }
        for hit in hits
    ]


def ft_body(token: TokenView) -> dict[str, Any]:
    metadata = token.metadata or {}
    body = _present(
        name=token.name,
        symbol=token.symbol,
        decimals=token.decimals,
        total_supply=_supply(token.total_supply),
        token_uri=token.uri,
        description=metadata.get("description"),
        image_uri=metadata.get("cached_image"),
        image_thumbnail_uri=metadata.get("cached_thumbnail_image"),
        image_canonical_uri=metadata.get("image"),
    )
    body["tx_id"] = token.tx_id
    body["sender_address"] = _sender(token.contract_principal)
    body["asset_identifier"] = _asset_identifier(
        token.contract_principal, token.fungible_token_name
    )
    if token.metadata is not None:
        body["metadata"] = token.metadata
    return body


def nft_body(token: TokenView) -> dict[str, Any]:
    return _present(token_uri=token.uri, metadata=token.metadata)


def sft_body(token: TokenView) -> dict[str, Any]:
    return _present(
        token_uri=token.uri,
        decimals=token.decimals,
        total_supply=_supply(token.total_supply),
        metadata=token.metadata,
    )
