"""The marketplace routes' views: validation and documentation by flask-smorest, answers by
`api.marketplace` (docs/marketplace-api.md)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from api.caching import to_response
from api.db import get_raw_reads
from api.marketplace import collection_page, owner_gallery, token_batch
from api.schemas.marketplace import (
    INCLUDE_RAW,
    BatchBodySchema,
    BatchQuerySchema,
    BatchResponseSchema,
    CollectionQuerySchema,
    OwnerPathSchema,
    OwnerQuerySchema,
    TokenPageSchema,
    collection_path_schema,
)
from api.schemas.responses import NOT_FOUND_RESPONSE
from shared.reads.items import ItemOptions

_BAD_REQUEST: dict[str, Any] = {"error_status_code": 400}
COLLECTIONS = (("nft", "SIP-009"), ("sft", "SIP-013"))


def options_of(args: dict[str, Any]) -> ItemOptions:
    return ItemOptions(
        locale=args.get("locale") or None, include_raw=INCLUDE_RAW in args["include"]
    )


def register(blp: Blueprint) -> None:
    for kind, standard in COLLECTIONS:
        _register_collection(blp, kind, standard)

    @blp.route("/owners/<principal>/nft")
    @blp.arguments(OwnerPathSchema(), location="path", as_kwargs=True, **_BAD_REQUEST)
    @blp.arguments(OwnerQuerySchema(), location="query", **_BAD_REQUEST)
    @blp.response(200, TokenPageSchema, description="The NFTs the principal owns now")
    @blp.doc(
        operationId="getOwnedNfts",
        summary="NFTs of an owner",
        description="The SIP-009 tokens a principal owns now, by contract then token id, in pages.",
    )
    def get_owned_nfts(args: dict[str, Any], principal: str) -> Response:
        answer = owner_gallery(
            get_raw_reads(),
            principal,
            args["limit"],
            args.get("cursor"),
            options_of(args),
            args.get("contract"),
        )
        return to_response(answer)

    @blp.route("/tokens/batch", methods=["POST"])
    @blp.arguments(BatchQuerySchema(), location="query", **_BAD_REQUEST)
    @blp.arguments(BatchBodySchema(), location="json", **_BAD_REQUEST)
    @blp.response(200, BatchResponseSchema, description="One result per requested token")
    @blp.doc(
        operationId="getTokenBatch",
        summary="Many tokens at once",
        description="Up to 100 tokens of any contracts, answered in request order.",
    )
    def get_token_batch(query: dict[str, Any], body: dict[str, Any]) -> Response:
        return to_response(token_batch(get_raw_reads(), body["tokens"], options_of(query)))


def _register_collection(blp: Blueprint, kind: str, standard: str) -> None:
    def view(args: dict[str, Any], principal: str) -> Response:
        answer = collection_page(
            get_raw_reads(),
            kind,
            principal,
            args["limit"],
            args.get("cursor"),
            options_of(args),
            _distinct(args.get("token_ids")),
        )
        return to_response(answer)

    view.__name__ = view.__qualname__ = f"get_{kind}_collection"
    path = collection_path_schema(kind, standard)
    for wrap in (
        blp.doc(
            operationId=f"get{kind.capitalize()}Collection",
            summary=f"{standard} collection",
            description=f"The tokens of a {standard} contract in token-id order, in pages.",
        ),
        blp.alt_response(404, schema=NOT_FOUND_RESPONSE, description="Contract not found"),
        blp.response(200, TokenPageSchema, description="A page of the collection"),
        blp.arguments(CollectionQuerySchema(), location="query", **_BAD_REQUEST),
        blp.arguments(path(), location="path", as_kwargs=True, **_BAD_REQUEST),
        blp.route(f"/{kind}/<principal>"),
    ):
        view = wrap(view)


def _distinct(numbers: list[int] | None) -> list[int] | None:
    return None if numbers is None else list(dict.fromkeys(numbers))
