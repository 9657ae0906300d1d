"""A document's display fields under one set of names, whatever shape it came in
(docs/marketplace-api.md#normalized).

Marketplaces show the same dozen fields for every token; documents in the wild put them at
the top level, inside `properties`, or under other spellings of the image key. `normalize`
reads each from the top level first, then from `properties`, and keeps only values of the
right JSON type: a string field is a string or absent (None), `attributes` a list of valid
attributes, `properties` an object. Nothing here fetches, renders or follows a URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The spellings of the image key found in the wild, in the order they are tried.
IMAGE_KEYS = ("image", "imageUrl", "image_url", "image_uri", "image_canonical_uri")
STRING_FIELDS = (
    "name",
    "description",
    "image",
    "image_data",
    "external_url",
    "animation_url",
    "background_color",
    "youtube_url",
    "image_mime_type",
    "animation_mime_type",
)
# Other spellings of a field, in the order they are tried after its own name.
_ALIASES: Mapping[str, tuple[str, ...]] = {
    "image": tuple(key for key in IMAGE_KEYS if key != "image"),
    "external_url": ("external_link",),
    "animation_url": ("animation",),
}


def normalize(
    document: Mapping[str, Any], fallback: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The normalized fields of a parsed document (every key present, None when absent); a
    locale's document falls back to the default document's (`fallback`) field by field."""
    properties = _properties(document)
    sources: list[Mapping[str, Any]] = [document, properties]
    if fallback is not None and fallback is not document:
        sources += [fallback, _properties(fallback)]
    normalized: dict[str, Any] = {field: _first_string(field, *sources) for field in STRING_FIELDS}
    normalized["attributes"] = _attributes(*sources)
    merged = _properties(fallback) if fallback is not None else {}
    normalized["properties"] = {**merged, **properties}
    return normalized


def valid_attribute(item: Any) -> bool:
    """A string trait_type, a value key (any value) and, optionally, a string display_type."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("trait_type"), str)
        and "value" in item
        and isinstance(item.get("display_type"), str | None)
    )


def _properties(document: Mapping[str, Any]) -> dict[str, Any]:
    properties = document.get("properties")
    return dict(properties) if isinstance(properties, dict) else {}


def _first_string(field: str, *sources: Mapping[str, Any]) -> str | None:
    for source in sources:
        for key in (field, *_ALIASES.get(field, ())):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _attributes(*sources: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The first list of attributes that are all valid (SIP-016's rule: one bad element
    drops the list), each as `{trait_type, value[, display_type]}`."""
    for source in sources:
        items = source.get("attributes")
        if isinstance(items, list) and items and all(valid_attribute(item) for item in items):
            return [_attribute(item) for item in items]
    return []


def _attribute(item: Mapping[str, Any]) -> dict[str, Any]:
    return attribute_object(item["trait_type"], item.get("display_type"), item["value"])


def attribute_object(trait_type: str, display_type: str | None, value: Any) -> dict[str, Any]:
    """An attribute as answers show it: `display_type` only when it has one."""
    attribute: dict[str, Any] = {"trait_type": trait_type}
    if display_type is not None:
        attribute["display_type"] = display_type
    attribute["value"] = value
    return attribute
