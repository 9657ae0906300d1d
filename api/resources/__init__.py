"""Blueprints, one per tag of the reference document; each resource module adds its routes."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.resources import ft, images, nft, search, sft, status

TOKENS, STATUS = "Tokens", "Status"


def make_blueprints(suffix: str | None = None) -> list[Blueprint]:
    """The documented blueprints are named after their tag; others get `suffix` in their name."""
    tokens = Blueprint(_name(TOKENS, suffix), __name__, description="Token metadata endpoints")
    for module in (ft, nft, sft, search):
        module.register(tokens)
    service = Blueprint(_name(STATUS, suffix), __name__, description="Service status endpoints")
    status.register(service)
    images.register(service)  # cached image files: not in the OpenAPI document
    return [tokens, service]


def _name(tag: str, suffix: str | None) -> str:
    return tag if suffix is None else f"{tag.lower()}_{suffix}"
