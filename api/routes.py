"""The token routes and `/search`, each declared once.

A declaration holds what a route is: its path parameters (a marshmallow schema of
`api.schemas.params`), how it loads the token, how it encodes the body, and its
documentation. Both ways of answering are built from it:
- `api.fast_routes` answers most traffic without Flask. It matches paths with regexes made
  from the schema's own fields (`path_regex`), never with patterns of its own.
- the flask-smorest views (`api.resources.token_routes`) answer everything else and give the
  OpenAPI document.

Both call the same `answer` method: one load, one encoder, the same caching policy
(`api.caching.cacheable_answer`) and the same error bodies. Headers that every answer
carries are added by `api.cors.AnyOrigin`, which both paths go through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from marshmallow import Schema, fields

from api.caching import Answer, cacheable_answer, json_answer
from api.db import RawReads
from api.encoders import ft_body, nft_body, search_body, sft_body
from api.errors import token_error_body
from api.schemas.params import INTEGER_PATTERN, Pattern, path_schema, principal_field
from api.schemas.responses import (
    FtMetadataResponseSchema,
    NftMetadataResponseSchema,
    SftMetadataResponseSchema,
)
from shared.reads.search import TokenKey, search_tokens
from shared.reads.tokens import TokenLookupError, TokenView, get_token

FT_TOKEN_NUMBER = 1  # a SIP-010 contract has one token


@dataclass(frozen=True)
class TokenRoute:
    """`GET /{kind}/{principal}[/{token_id}]`: one token of one contract."""

    kind: str  # the path's first segment: nft, sft or ft
    path: type[Schema]
    response: type[Schema]
    body: Callable[[TokenView], dict[str, Any]]
    endpoint: str
    operation_id: str
    summary: str
    description: str
    token_number: int | None = None  # a route without a token id always reads this number

    @cached_property
    def rule(self) -> str:
        """The Flask rule, from the path schema's fields in order."""
        return f"/{self.kind}/" + "/".join(f"<{name}>" for name in self.path().fields)

    def path_regex(self) -> re.Pattern[str]:
        """The path after `/{kind}/`, matched with the schema fields' own patterns."""
        return re.compile("/".join(_field_regex(name, f) for name, f in self.path().fields.items()))

    def answer(
        self,
        reads: RawReads,
        principal: str,
        token_id: int | None,
        locale: str | None,
        if_none_match: str | None,
    ) -> Answer:
        number = self.token_number if token_id is None else token_id
        if number is None:
            raise TypeError(f"/{self.kind}: a token id or a fixed token number is needed")
        try:
            token = get_token(reads, principal, number, locale)
        except TokenLookupError as exc:
            return json_answer(*token_error_body(exc))
        return cacheable_answer(self.body(token), token.etag, if_none_match)


@dataclass(frozen=True)
class SearchRoute:
    """`GET /search?contract=...`: up to 50 tokens in one request, in request order."""

    endpoint: str = "search_tokens_by_identifier"
    operation_id: str = "searchTokens"
    summary: str = "Search Tokens"
    description: str = (
        "Retrieves metadata for multiple tokens in a single request. "
        "Accepts up to 50 contract identifiers."
    )
    rule: str = "/search"

    def answer(
        self,
        reads: RawReads,
        identifiers: list[str],
        locale: str | None,
        if_none_match: str | None,
    ) -> Answer:
        keys = [TokenKey.parse(identifier) for identifier in identifiers]
        found = search_tokens(reads, keys, locale)
        return cacheable_answer(search_body(found.hits), found.etag, if_none_match)


def _field_regex(name: str, field: fields.Field) -> str:
    """A named group matching what `field` accepts: its Pattern validator, or an Integer's
    ASCII digits. A field of another kind has no regex: declare one here before using it."""
    if isinstance(field, fields.Integer):
        return f"(?P<{name}>{INTEGER_PATTERN})"
    patterns = [v for v in field.validators if isinstance(v, Pattern)]
    if len(patterns) != 1:
        raise TypeError(f"path field {name!r} needs one Pattern validator")
    return f"(?P<{name}>{patterns[0].body})"


NFT = TokenRoute(
    kind="nft",
    path=path_schema(
        "NftPathSchema",
        principal_field(
            "Non-Fungible Token Contract Principal",
            "SIP-009 compliant smart contract principal",
            "SP497E7RX3233ATBS2AB9G4WTHB63X5PBSP5VGAQ.boomboxes-cycle-12",
        ),
        with_token_id=True,
    ),
    response=NftMetadataResponseSchema,
    body=nft_body,
    endpoint="get_nft_metadata",
    operation_id="getNftMetadata",
    summary="Non-Fungible Token Metadata",
    description="Retrieves metadata for a SIP-009 Non-Fungible Token",
)
SFT = TokenRoute(
    kind="sft",
    path=path_schema(
        "SftPathSchema",
        principal_field(
            "Semi-Fungible Token Contract Principal",
            "SIP-013 compliant smart contract principal",
            "SP3K8BC0PPEVCV7NZ6QSRWPQ2JE9E5B6N3PA0KBR9.key-alex-autoalex-v1",
        ),
        with_token_id=True,
    ),
    response=SftMetadataResponseSchema,
    body=sft_body,
    endpoint="get_sft_metadata",
    operation_id="getSftMetadata",
    summary="Semi-Fungible Token Metadata",
    description="Retrieves metadata for a SIP-013 Semi-Fungible Token",
)
FT = TokenRoute(
    kind="ft",
    path=path_schema(
        "FtPathSchema",
        principal_field(
            "Fungible Token Contract Principal",
            "Principal for the contract which owns the SIP-010 token",
            "SP32XCD69XPS3GKDEXAQ29PJRDSD5AR643GNEEBXZ.fari-token",
        ),
        with_token_id=False,
    ),
    response=FtMetadataResponseSchema,
    body=ft_body,
    endpoint="get_ft_metadata",
    operation_id="getFtMetadata",
    summary="Fungible Token Metadata",
    description="Retrieves metadata for a SIP-010 Fungible Token",
    token_number=FT_TOKEN_NUMBER,
)
# In the order their views are registered (the OpenAPI document lists them so).
TOKEN_ROUTES = (FT, NFT, SFT)
SEARCH = SearchRoute()
