"""Compact JSON encoding for hot paths (API bodies, the worker's batch writes)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson takes integers up to 64 bits; a token's attribute or supply
    may hold any JSON number, so a bigger one falls back to the json module (same output)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    return dumps(value).decode()
