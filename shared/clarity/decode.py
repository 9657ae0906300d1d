"""Decoding: consensus bytes (or hex) to exactly one Clarity value, strict like the node."""

from __future__ import annotations

from collections.abc import Callable

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
    _HEX,
    MAX_NAME_LENGTH,
    MAX_TYPE_DEPTH,
    MAX_UTF8_CHARS,
    MAX_VALUE_SIZE,
    UNTYPED_MAX_DEPTH,
    Bool,
    Buffer,
    ClarityDecodeError,
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


class _Reader:
    """A cursor over the input that never reads, or allocates, past the real data."""

    __slots__ = ("data", "max_depth", "offset")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data, self.max_depth, self.offset = data, max_depth, 0

    def fail(self, message: str, offset: int | None = None) -> ClarityDecodeError:
        where = self.offset if offset is None else offset
        return ClarityDecodeError(f"{message} at byte offset {where}")

    def take(self, count: int, what: str) -> bytes:
        available = len(self.data) - self.offset
        if count > available:
            raise self.fail(f"truncated {what}: needs {count} bytes, {available} left")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def length(self, what: str, limit: int, width: int = 4) -> int:
        """Read a length prefix and bound it before anything is read or allocated from it."""
        start = self.offset
        size = int.from_bytes(self.take(width, f"{what} prefix"), "big")
        if size > limit:
            raise self.fail(f"{what} {size} exceeds the maximum {limit}", start)
        return size

    def enter(self, depth: int) -> int:
        """Nesting level of a container whose prefix byte was just read."""
        if depth + 1 > self.max_depth:
            raise self.fail(f"nesting deeper than {self.max_depth} containers", self.offset - 1)
        return depth + 1


def _decode_value(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    start = reader.offset
    prefix = reader.take(1, "type prefix")[0]
    decoder = _DECODERS.get(prefix)
    if decoder is None:
        raise reader.fail(f"unknown type prefix 0x{prefix:02x}", start)
    return decoder(reader, depth)


def _decode_int(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    return Int(int.from_bytes(reader.take(16, "int"), "big", signed=True)), _INT


def _decode_uint(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    return UInt(int.from_bytes(reader.take(16, "uint"), "big")), _UINT


def _decode_buffer(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    size = reader.length("buffer length", MAX_VALUE_SIZE)
    return Buffer(reader.take(size, "buffer")), _BUFFER


def _decode_principal_parts(reader: _Reader) -> tuple[int, bytes]:
    start = reader.offset
    version = reader.take(1, "principal version")[0]
    if version > c32.MAX_VERSION:
        raise reader.fail(f"principal version {version} is not below 32", start)
    return version, reader.take(c32.HASH160_LENGTH, "principal hash160")


def _decode_standard(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    return StandardPrincipal(*_decode_principal_parts(reader)), _PRINCIPAL


def _decode_contract(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    version, hash160 = _decode_principal_parts(reader)
    start = reader.offset
    raw = reader.take(reader.length("contract name length", MAX_NAME_LENGTH, 1), "contract name")
    name = raw.decode("ascii") if raw.isascii() else ""
    try:
        c32.check_contract_name(name)
    except c32.InvalidAddress as error:
        raise reader.fail(f"invalid contract name {raw!r}", start) from error
    return ContractPrincipal(version, hash160, name), _PRINCIPAL


def _decode_wrapper(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    prefix = reader.data[reader.offset - 1]  # the type prefix _decode_value just read
    inner, sig = _decode_value(reader, reader.enter(depth))
    if prefix == 0x07:
        return ResponseOk(inner), _Sig("response", (sig, None))
    if prefix == 0x08:
        return ResponseErr(inner), _Sig("response", (None, sig))
    return OptionalSome(inner), _Sig("optional", (sig,))


def _decode_list(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    level = reader.enter(depth)
    count = reader.length("list length", MAX_VALUE_SIZE)
    items: list[ClarityValue] = []
    element: _Sig | None = None
    for _ in range(count):  # each element consumes at least one byte, so this ends quickly
        start = reader.offset
        item, sig = _decode_value(reader, level)
        try:
            element = _supertype(element, sig)
        except _Mismatch as error:
            raise reader.fail(f"list element of another type ({error})", start) from error
        items.append(item)
    return ClarityList(tuple(items)), _Sig("list", (element,))


def _decode_tuple(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    level = reader.enter(depth)
    count = reader.length("tuple length", MAX_VALUE_SIZE)
    if count == 0:
        raise reader.fail("empty tuple (zero entries)", reader.offset - 4)
    fields: dict[str, tuple[ClarityValue, _Sig]] = {}
    for _ in range(count):
        start = reader.offset
        raw = reader.take(reader.length("tuple key length", MAX_NAME_LENGTH, 1), "tuple key")
        key = raw.decode("ascii") if raw.isascii() else ""
        if not is_clarity_name(key):
            raise reader.fail(f"invalid tuple key {raw!r}", start)
        if key in fields:
            raise reader.fail(f"duplicate tuple key {key!r}", start)
        fields[key] = _decode_value(reader, level)
    names = tuple(sorted(fields, key=str.encode))
    sig = _Sig("tuple", tuple(fields[name][1] for name in names), names)
    return ClarityTuple({name: fields[name][0] for name in names}), sig


def _decode_ascii(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    size = reader.length("string-ascii length", MAX_VALUE_SIZE)
    start = reader.offset
    raw = reader.take(size, "string-ascii")
    bad = raw.translate(None, _ASCII_ALLOWED)
    if bad:
        index = raw.index(bad[:1])
        raise reader.fail(f"string-ascii byte 0x{bad[0]:02x} not allowed", start + index)
    return StringAscii(raw.decode("ascii")), _ASCII


def _decode_utf8(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    size = reader.length("string-utf8 length", MAX_VALUE_SIZE)
    start = reader.offset
    raw = reader.take(size, "string-utf8")
    try:
        text = raw.decode("utf-8")  # strict: no surrogates, overlongs or code points > U+10FFFF
    except UnicodeDecodeError as error:
        raise reader.fail(f"invalid UTF-8 ({error.reason})", start + error.start) from error
    if len(text) > MAX_UTF8_CHARS:
        raise reader.fail(f"string-utf8 of {len(text)} characters exceeds {MAX_UTF8_CHARS}", start)
    return StringUtf8(text), _UTF8


def _decode_bool(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    return Bool(reader.data[reader.offset - 1] == 0x03), _BOOL


def _decode_none(reader: _Reader, depth: int) -> tuple[ClarityValue, _Sig]:
    return OptionalNone(), _NONE


_Decoder = Callable[[_Reader, int], tuple[ClarityValue, _Sig]]
_DECODERS: dict[int, _Decoder] = {
    0x00: _decode_int,
    0x01: _decode_uint,
    0x02: _decode_buffer,
    0x03: _decode_bool,
    0x04: _decode_bool,
    0x05: _decode_standard,
    0x06: _decode_contract,
    0x07: _decode_wrapper,
    0x08: _decode_wrapper,
    0x09: _decode_none,
    0x0A: _decode_wrapper,
    0x0B: _decode_list,
    0x0C: _decode_tuple,
    0x0D: _decode_ascii,
    0x0E: _decode_utf8,
}


def deserialize(data: bytes, *, max_depth: int = UNTYPED_MAX_DEPTH) -> ClarityValue:
    """Decode exactly one value; 15 levels like the node's untyped reads, up to 32 on request."""
    if not 0 <= max_depth <= MAX_TYPE_DEPTH:
        raise ValueError(f"max_depth must be within 0..{MAX_TYPE_DEPTH}, got {max_depth}")
    reader = _Reader(bytes(data), max_depth)
    value, _ = _decode_value(reader, 0)
    if reader.offset != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.offset} trailing bytes after the value")
    return value


def from_hex(text: str, *, max_depth: int = UNTYPED_MAX_DEPTH) -> ClarityValue:
    """Decode hex as found on the wire, with or without the `0x` prefix."""
    digits = text.removeprefix("0x")
    if len(digits) % 2 or not _HEX.fullmatch(digits):
        raise ClarityDecodeError(f"not an even-length hex string: {text[:80]!r}")
    return deserialize(bytes.fromhex(digits), max_depth=max_depth)
