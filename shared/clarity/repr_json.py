"""Principals from their string form, and the typed JSON of clarity-values.json."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from shared import c32
from shared.clarity.values import (
    _HEX,
    INT_MAX,
    INT_MIN,
    MAX_TYPE_DEPTH,
    UINT_MAX,
    Bool,
    Buffer,
    ClarityDecodeError,
    ClarityEncodeError,
    ClarityList,
    ClarityTuple,
    ClarityValue,
    ContractPrincipal,
    Int,
    OptionalNone,
    OptionalSome,
    ResponseErr,
    ResponseOk,
    StandardPrincipal,
    StringAscii,
    StringUtf8,
    UInt,
)


def principal_from_string(text: str) -> StandardPrincipal | ContractPrincipal:
    """Parse `SP...` or `SP....name` strictly; anything else raises ClarityEncodeError."""
    try:
        if "." in text:
            return ContractPrincipal(*c32.parse_contract_principal(text))
        return StandardPrincipal(*c32.c32_address_decode(text))
    except c32.InvalidAddress as error:
        raise ClarityEncodeError(f"invalid principal {text[:200]!r}: {error}") from error


_JSON_TYPES: dict[type, str] = {
    Int: "int",
    UInt: "uint",
    Bool: "bool",
    Buffer: "buffer",
    StringAscii: "string-ascii",
    StringUtf8: "string-utf8",
    StandardPrincipal: "standard-principal",
    ContractPrincipal: "contract-principal",
    OptionalNone: "none",
    OptionalSome: "some",
    ResponseOk: "ok",
    ResponseErr: "err",
    ClarityList: "list",
    ClarityTuple: "tuple",
}


def to_json(value: ClarityValue) -> dict[str, Any]:
    """The typed JSON of clarity-values.json: integers as decimal strings, buffers as hex."""
    kind = _JSON_TYPES.get(type(value))
    if kind is None:
        raise TypeError(f"not a Clarity value: {type(value).__name__}")
    if isinstance(value, OptionalNone):
        return {"type": kind}
    return {"type": kind, "value": _json_payload(value)}


def _json_payload(value: ClarityValue) -> Any:
    match value:
        case Int(number) | UInt(number):
            return str(number)
        case Buffer(data):
            return data.hex()
        case Bool(flag):
            return flag
        case StringAscii(text) | StringUtf8(text):
            return text
        case StandardPrincipal():
            return value.address
        case ContractPrincipal():
            return value.contract_id
        case OptionalSome(inner) | ResponseOk(inner) | ResponseErr(inner):
            return to_json(inner)
        case ClarityList(items):
            return [to_json(item) for item in items]
        case ClarityTuple(fields):
            return {name: to_json(fields[name]) for name in sorted(fields, key=str.encode)}
    raise TypeError(f"not a Clarity value: {type(value).__name__}")


def from_json(obj: Mapping[str, Any]) -> ClarityValue:
    """Build a value from its typed JSON; malformed JSON raises ClarityDecodeError."""
    return _from_json(obj, 0, "$")


def _from_json(obj: Any, depth: int, path: str) -> ClarityValue:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
        raise ClarityDecodeError(f"{path}: expected an object with a string 'type'")
    kind = obj["type"]
    if kind == "none":
        return OptionalNone()
    if "value" not in obj:
        raise ClarityDecodeError(f"{path}: a {kind!r} needs a 'value'")
    if kind in _JSON_SCALARS:
        return _JSON_SCALARS[kind](obj["value"], path)
    if kind not in _JSON_CONTAINERS:
        raise ClarityDecodeError(f"{path}: unknown type {kind!r}")
    if depth >= MAX_TYPE_DEPTH:
        raise ClarityDecodeError(f"{path}: nests deeper than {MAX_TYPE_DEPTH} containers")
    return _JSON_CONTAINERS[kind](obj["value"], depth + 1, path)


_T = TypeVar("_T")
_DECIMAL = re.compile(r"-?[0-9]{1,40}")


def _json_typed(raw: Any, kind: type[_T], path: str) -> _T:
    if not isinstance(raw, kind):
        raise ClarityDecodeError(f"{path}: expected {kind.__name__}, got {type(raw).__name__}")
    return raw


def _json_integer(raw: Any, path: str, low: int, high: int) -> int:
    if not isinstance(raw, str) or not _DECIMAL.fullmatch(raw) or not low <= int(raw) <= high:
        raise ClarityDecodeError(f"{path}: expected a decimal string within {low}..{high}")
    return int(raw)


def _json_hex(raw: Any, path: str) -> bytes:
    if not isinstance(raw, str) or len(raw) % 2 or not _HEX.fullmatch(raw):
        raise ClarityDecodeError(f"{path}: expected an even-length hex string")
    return bytes.fromhex(raw)


def _json_principal(raw: Any, path: str, kind: type[_T]) -> _T:
    try:
        principal = principal_from_string(_json_typed(raw, str, path))
    except ClarityEncodeError as error:
        raise ClarityDecodeError(f"{path}: {error}") from error
    return _json_typed(principal, kind, path)


def _json_list(raw: Any, depth: int, path: str) -> ClarityList:
    items = _json_typed(raw, list, path)
    return ClarityList(
        tuple(_from_json(item, depth, f"{path}[{i}]") for i, item in enumerate(items))
    )


def _json_tuple(raw: Any, depth: int, path: str) -> ClarityTuple:
    fields = _json_typed(raw, dict, path)
    return ClarityTuple(
        {key: _from_json(item, depth, f"{path}.{key}") for key, item in fields.items()}
    )


_JSON_SCALARS: dict[str, Callable[[Any, str], ClarityValue]] = {
    "int": lambda raw, path: Int(_json_integer(raw, path, INT_MIN, INT_MAX)),
    "uint": lambda raw, path: UInt(_json_integer(raw, path, 0, UINT_MAX)),
    "bool": lambda raw, path: Bool(_json_typed(raw, bool, path)),
    "buffer": lambda raw, path: Buffer(_json_hex(raw, path)),
    "string-ascii": lambda raw, path: StringAscii(_json_typed(raw, str, path)),
    "string-utf8": lambda raw, path: StringUtf8(_json_typed(raw, str, path)),
    "standard-principal": lambda raw, path: _json_principal(raw, path, StandardPrincipal),
    "contract-principal": lambda raw, path: _json_principal(raw, path, ContractPrincipal),
}
_JSON_CONTAINERS: dict[str, Callable[[Any, int, str], ClarityValue]] = {
    "some": lambda raw, depth, path: OptionalSome(_from_json(raw, depth, f"{path}.value")),
    "ok": lambda raw, depth, path: ResponseOk(_from_json(raw, depth, f"{path}.value")),
    "err": lambda raw, depth, path: ResponseErr(_from_json(raw, depth, f"{path}.value")),
    "list": _json_list,
    "tuple": _json_tuple,
}
