"""The 400's message for invalid parameters, worded as Hiro's API's validator (Ajv) words it:
`querystring/limit must be <= 1000`. Shared by the Flask app and the live stream, so it needs
no Flask."""

from __future__ import annotations

from typing import Any

LOCATION_NAMES = {"path": "params", "query": "querystring", "json": "body"}


def validation_message(messages: dict[str, Any]) -> str:
    """`params/principal must match pattern ...`: the part, the field, what is wrong."""
    parts = []
    for location, fields in messages.items():
        parts += _flatten(LOCATION_NAMES.get(location, location), fields)
    return "; ".join(parts)


def _flatten(path: str, errors: Any) -> list[str]:
    """webargs nests list items' errors by index: `querystring/contract/0 must match ...`."""
    if isinstance(errors, dict):
        found: list[str] = []
        for key, nested in errors.items():
            found += _flatten(path if key == "_schema" else f"{path}/{key}", nested)
        return found
    if isinstance(errors, list) and errors and not all(isinstance(e, str) for e in errors):
        return [message for e in errors for message in _flatten(path, e)]
    text = errors[0] if isinstance(errors, list) and errors else str(errors)
    return [f"{path} {text}"]
