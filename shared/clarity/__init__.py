"""Clarity value consensus serialization, all 15 types, strict like the node (docs/clarity.md).

The codec is split into `values` (the value types, errors and limits), `types_check` (list element
type compatibility), `decode`, `encode` and `repr_json` (the typed JSON form); import from here.
"""

from __future__ import annotations

from shared.clarity.decode import deserialize, from_hex
from shared.clarity.encode import serialize, to_hex
from shared.clarity.repr_json import from_json, principal_from_string, to_json
from shared.clarity.values import (
    INT_MAX,
    INT_MIN,
    MAX_NAME_LENGTH,
    MAX_TYPE_DEPTH,
    MAX_UTF8_CHARS,
    MAX_VALUE_SIZE,
    UINT_MAX,
    UNTYPED_MAX_DEPTH,
    Bool,
    Buffer,
    ClarityDecodeError,
    ClarityEncodeError,
    ClarityError,
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
    is_clarity_name,
)

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_NAME_LENGTH",
    "MAX_TYPE_DEPTH",
    "MAX_UTF8_CHARS",
    "MAX_VALUE_SIZE",
    "UINT_MAX",
    "UNTYPED_MAX_DEPTH",
    "Bool",
    "Buffer",
    "ClarityDecodeError",
    "ClarityEncodeError",
    "ClarityError",
    "ClarityList",
    "ClarityTuple",
    "ClarityValue",
    "ContractPrincipal",
    "Int",
    "OptionalNone",
    "OptionalSome",
    "ResponseErr",
    "ResponseOk",
    "StandardPrincipal",
    "StringAscii",
    "StringUtf8",
    "UInt",
    "deserialize",
    "from_hex",
    "from_json",
    "is_clarity_name",
    "principal_from_string",
    "serialize",
    "to_hex",
    "to_json",
]
