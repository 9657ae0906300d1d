"""Encoding: a Clarity value to consensus bytes, refusing anything the node would not decode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared import c32
from shared.clarity.types_check import (
    _ASCII,
    _BOOL,
    _BUFFER,
    _INT,
    _NONE,
    _PRINCIPAL,
    _UINT,
    _UTF8,
    _Mismatch,
    _Sig,
    _supertype,
)
from shared.clarity.values import (
    _ASCII_ALLOWED,
    INT_MAX,
    INT_MIN,
    MAX_TYPE_DEPTH,
    MAX_UTF8_CHARS,
    MAX_VALUE_SIZE,
    UINT_MAX,
    Bool,
    Buffer,
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
    is_clarity_name,
)


def serialize(value: ClarityValue) -> bytes:
    """Consensus bytes of `value`; refuses anything the node would not decode back."""
    out = bytearray()
    _encode(value, 0, out)
    return bytes(out)


def to_hex(value: ClarityValue) -> str:
    """`0x` + lowercase hex, the form of node RPC arguments and event payloads."""
    return "0x" + serialize(value).hex()


def _encode(value: ClarityValue, depth: int, out: bytearray) -> _Sig:
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        raise ClarityEncodeError(f"not a Clarity value: {type(value).__name__}")
    return encoder(value, depth, out)


def _enter(depth: int) -> int:
    if depth >= MAX_TYPE_DEPTH:
        raise ClarityEncodeError(f"value nests deeper than {MAX_TYPE_DEPTH} containers")
    return depth + 1


def _put_count(out: bytearray, prefix: int, count: int, what: str) -> None:
    if count > MAX_VALUE_SIZE:
        raise ClarityEncodeError(f"{what} of {count} exceeds the maximum {MAX_VALUE_SIZE}")
    out += bytes([prefix]) + count.to_bytes(4, "big")


def _checked_int(value: object, low: int, high: int, kind: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ClarityEncodeError(f"{kind} must be an integer within {low}..{high}: {value!r}")
    return value


def _encode_int(value: Int, depth: int, out: bytearray) -> _Sig:
    number = _checked_int(value.value, INT_MIN, INT_MAX, "int")
    out += b"\x00" + number.to_bytes(16, "big", signed=True)
    return _INT


def _encode_uint(value: UInt, depth: int, out: bytearray) -> _Sig:
    out += b"\x01" + _checked_int(value.value, 0, UINT_MAX, "uint").to_bytes(16, "big")
    return _UINT


def _encode_buffer(value: Buffer, depth: int, out: bytearray) -> _Sig:
    _put_count(out, 0x02, len(value.value), "buffer length")
    out += value.value
    return _BUFFER


def _encode_bool(value: Bool, depth: int, out: bytearray) -> _Sig:
    out.append(0x03 if value.value else 0x04)
    return _BOOL


def _principal_bytes(version: int, hash160: bytes) -> bytes:
    if not 0 <= version <= c32.MAX_VERSION or len(hash160) != c32.HASH160_LENGTH:
        raise ClarityEncodeError(f"principal needs version 0..31 and a 20-byte hash160: {version}")
    return bytes([version]) + hash160


def _encode_standard(value: StandardPrincipal, depth: int, out: bytearray) -> _Sig:
    out += b"\x05" + _principal_bytes(value.version, value.hash160)
    return _PRINCIPAL


def _encode_contract(value: ContractPrincipal, depth: int, out: bytearray) -> _Sig:
    try:
        c32.check_contract_name(value.name)
    except c32.InvalidAddress as error:
        raise ClarityEncodeError(str(error)) from error
    name = value.name.encode("ascii")
    out += b"\x06" + _principal_bytes(value.version, value.hash160) + bytes([len(name)]) + name
    return _PRINCIPAL


def _encode_wrapper(
    value: ResponseOk | ResponseErr | OptionalSome, depth: int, out: bytearray
) -> _Sig:
    out.append(_WRAPPER_PREFIXES[type(value)])
    sig = _encode(value.value, _enter(depth), out)
    if isinstance(value, OptionalSome):
        return _Sig("optional", (sig,))
    return _Sig("response", (sig, None) if isinstance(value, ResponseOk) else (None, sig))


def _encode_none(value: OptionalNone, depth: int, out: bytearray) -> _Sig:
    out.append(0x09)
    return _NONE


def _encode_list(value: ClarityList, depth: int, out: bytearray) -> _Sig:
    level = _enter(depth)
    _put_count(out, 0x0B, len(value.items), "list length")
    element: _Sig | None = None
    for index, item in enumerate(value.items):
        try:
            element = _supertype(element, _encode(item, level, out))
        except _Mismatch as error:
            raise ClarityEncodeError(f"list item {index} has another type ({error})") from error
    return _Sig("list", (element,))


def _encode_tuple(value: ClarityTuple, depth: int, out: bytearray) -> _Sig:
    level = _enter(depth)
    if not value.fields:
        raise ClarityEncodeError("a tuple needs at least one field")
    for name in value.fields:
        if not isinstance(name, str) or not is_clarity_name(name):
            raise ClarityEncodeError(f"invalid tuple key {name!r}")
    names = tuple(sorted(value.fields, key=str.encode))  # the node's BTreeMap order
    _put_count(out, 0x0C, len(names), "tuple length")
    sigs: list[_Sig | None] = []
    for name in names:
        out += bytes([len(name)]) + name.encode("ascii")
        sigs.append(_encode(value.fields[name], level, out))
    return _Sig("tuple", tuple(sigs), names)


def _encode_ascii(value: StringAscii, depth: int, out: bytearray) -> _Sig:
    text = value.value
    if not text.isascii() or text.encode("ascii").translate(None, _ASCII_ALLOWED):
        raise ClarityEncodeError(f"string-ascii allows 0x20-0x7e and \\t\\n\\f\\r: {text[:60]!r}")
    _put_count(out, 0x0D, len(text), "string-ascii length")
    out += text.encode("ascii")
    return _ASCII


def _encode_utf8(value: StringUtf8, depth: int, out: bytearray) -> _Sig:
    try:
        raw = value.value.encode("utf-8")
    except UnicodeEncodeError as error:  # lone surrogates
        raise ClarityEncodeError(f"string-utf8 has a lone surrogate at {error.start}") from error
    if len(value.value) > MAX_UTF8_CHARS:
        raise ClarityEncodeError(f"string-utf8 longer than {MAX_UTF8_CHARS} characters")
    _put_count(out, 0x0E, len(raw), "string-utf8 length")
    out += raw
    return _UTF8


_WRAPPER_PREFIXES = {ResponseOk: 0x07, ResponseErr: 0x08, OptionalSome: 0x0A}
_ENCODERS: dict[type, Callable[[Any, int, bytearray], _Sig]] = {
    Int: _encode_int,
    UInt: _encode_uint,
    Buffer: _encode_buffer,
    Bool: _encode_bool,
    StandardPrincipal: _encode_standard,
    ContractPrincipal: _encode_contract,
    ResponseOk: _encode_wrapper,
    ResponseErr: _encode_wrapper,
    OptionalNone: _encode_none,
    OptionalSome: _encode_wrapper,
    ClarityList: _encode_list,
    ClarityTuple: _encode_tuple,
    StringAscii: _encode_ascii,
    StringUtf8: _encode_utf8,
}
