"""Blueprints, one per tag of the reference document; each resource module adds its routes."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.resources import changes, ft, history, images, marketplace, refresh, status
from api.resources.token_routes import register_search_route, register_token_route
from api.routes import FT, NFT, SEARCH, SFT

TOKENS, MARKETPLACE, CHANGES, STATUS = "Tokens", "Marketplace", "Changes", "Status"


def make_blueprints(suffix: str | None = None) -> list[Blueprint]:
    """The documented blueprints are named after their tag; others get `suffix` in their name."""
    tokens = Blueprint(_name(TOKENS, suffix), __name__, description="Token metadata endpoints")
    ft.register(tokens)  # the FT list first, as the reference document orders the paths
    for route in (FT, NFT, SFT):
        register_token_route(tokens, route)
    register_search_route(tokens, SEARCH)
    collections = Blueprint(
        _name(MARKETPLACE, suffix),
        __name__,
        description="Collections, owners, batch reads, refreshes and fetch history (not in "
        "Hiro's API)",
    )
    marketplace.register(collections)
    refresh.register(collections)
    history.register(collections)
    feed = Blueprint(
        _name(CHANGES, suffix),
        __name__,
        description="What changed in the index, in commit order (not in Hiro's API)",
    )
    changes.register(feed)
    service = Blueprint(_name(STATUS, suffix), __name__, description="Service status endpoints")
    status.register(service)
    images.register(service)  # cached image files: not in the OpenAPI document
    return [tokens, collections, feed, service]


def _name(tag: str, suffix: str | None) -> str:
    return tag if suffix is None else f"{tag.lower()}_{suffix}"
