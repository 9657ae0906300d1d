"""Compact JSON encoding for hot paths (API bodies, the worker's batch writes)."""

from __future__ import annotations

import json
from typing import Any

import orjson


class RawJson:
    """JSON text that Postgres already wrote, put into an answer as it is: parsing it into
    Python objects only to encode them again cost a third of a collection page's CPU."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson takes integers up to 64 bits; a token's attribute or supply
    may hold any JSON number, so a bigger one falls back to the json module (same output)."""
    try:
        return orjson.dumps(value, default=_fragment)
    except TypeError:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), default=_parsed
        ).encode()


def _fragment(value: Any) -> orjson.Fragment:
    if isinstance(value, RawJson):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _parsed(value: Any) -> Any:
    if isinstance(value, RawJson):
        return json.loads(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_text(value: Any) -> str:
    return dumps(value).decode()
