"""Clarity value consensus serialization, all 15 types, strict like the node (spec section 1)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from shared import c32

MAX_VALUE_SIZE = 1_048_576
MAX_UTF8_CHARS = MAX_VALUE_SIZE // 4
MAX_NAME_LENGTH = 128
UNTYPED_MAX_DEPTH = 15
MAX_TYPE_DEPTH = 32
INT_MIN, INT_MAX = -(2**127), 2**127 - 1
UINT_MAX = 2**128 - 1

_CLARITY_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9\-_!?+<>=/*]*|[-+=/*]|[<>]=?")
_HEX = re.compile(r"[0-9a-fA-F]*")
_ASCII_ALLOWED = bytes(range(0x20, 0x7F)) + b"\t\n\x0c\r"


class ClarityError(ValueError):
    """Base of every Clarity codec error, so callers can catch one type."""


class ClarityDecodeError(ClarityError):
    """Input bytes (or hex, or JSON) are not exactly one valid Clarity value."""


class ClarityEncodeError(ClarityError):
    """A Python value cannot be written as a valid Clarity value."""


class ClarityValue:
    """Base of the 15 value types, so annotations can say 'any Clarity value'."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Int(ClarityValue):
    """Clarity `int`: signed 128-bit, prefix 0x00."""

    value: int


@dataclass(frozen=True, slots=True)
class UInt(ClarityValue):
    """Clarity `uint`: unsigned 128-bit, prefix 0x01 (token ids and amounts)."""

    value: int


@dataclass(frozen=True, slots=True)
class Buffer(ClarityValue):
    """Clarity `(buff n)`, prefix 0x02."""

    value: bytes


@dataclass(frozen=True, slots=True)
class Bool(ClarityValue):
    """Clarity `bool`, prefix 0x03 (true) or 0x04 (false)."""

    value: bool


@dataclass(frozen=True, slots=True)
class StandardPrincipal(ClarityValue):
    """An account principal `'SP...`, prefix 0x05."""

    version: int
    hash160: bytes

    @property
    def address(self) -> str:
        """The c32check address, e.g. `SP2PABAF9FTAJYNFZH93XENAJ8FVY99RRM50D2JG9`."""
        return c32.c32_address(self.version, self.hash160)


@dataclass(frozen=True, slots=True)
class ContractPrincipal(ClarityValue):
    """A contract principal `'SP....name`, prefix 0x06."""

    version: int
    hash160: bytes
    name: str

    @property
    def address(self) -> str:
        """The c32check address of the deployer."""
        return c32.c32_address(self.version, self.hash160)

    @property
    def contract_id(self) -> str:
        """`ADDR.name`, the form the API and the node use to name a contract."""
        return f"{self.address}.{self.name}"


@dataclass(frozen=True, slots=True)
class ResponseOk(ClarityValue):
    """`(ok value)`, prefix 0x07."""

    value: ClarityValue


@dataclass(frozen=True, slots=True)
class ResponseErr(ClarityValue):
    """`(err value)`, prefix 0x08."""

    value: ClarityValue


@dataclass(frozen=True, slots=True)
class OptionalNone(ClarityValue):
    """`none`, prefix 0x09."""


@dataclass(frozen=True, slots=True)
class OptionalSome(ClarityValue):
    """`(some value)`, prefix 0x0a."""

    value: ClarityValue


@dataclass(frozen=True, slots=True)
class ClarityList(ClarityValue):
    """`(list ...)`, prefix 0x0b; every item has one common type."""

    items: tuple[ClarityValue, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))  # accept a list, stay hashable


@dataclass(frozen=True, slots=True)
class ClarityTuple(ClarityValue):
    """`{key: value, ...}`, prefix 0x0c; at least one field, keys are Clarity names."""

    fields: Mapping[str, ClarityValue]

    def __post_init__(self) -> None:
        # A private copy, so the caller's mapping can change freely; dict == ignores key order.
        object.__setattr__(self, "fields", dict(self.fields))

    def __hash__(self) -> int:
        return hash(frozenset(self.fields.items()))


@dataclass(frozen=True, slots=True)
class StringAscii(ClarityValue):
    """`(string-ascii n)`, prefix 0x0d; printable ASCII plus \\t \\n \\f \\r."""

    value: str


@dataclass(frozen=True, slots=True)
class StringUtf8(ClarityValue):
    """`(string-utf8 n)`, prefix 0x0e; the length prefix counts bytes."""

    value: str


@dataclass(frozen=True, slots=True)
class _Sig:
    """A value's type, reduced to what decides list compatibility (lengths always widen)."""

    kind: str
    children: tuple[_Sig | None, ...] = ()  # None is NoType: the inside of `none`, `(list)`, ...
    names: tuple[str, ...] = ()


class _Mismatch(Exception):
    """Two list elements have no common supertype."""


def _supertype(a: _Sig | None, b: _Sig | None) -> _Sig | None:
    """Least supertype, as the node computes it for list elements; raises _Mismatch."""
    if a is None or a is b:
        return b
    if b is None:
        return a
    if a.kind != b.kind:
        raise _Mismatch(f"{a.kind} and {b.kind} have no common type")
    if a.names != b.names:
        raise _Mismatch(f"tuple keys {a.names} and {b.names} differ")
    merged = tuple(map(_supertype, a.children, b.children))  # same kind: same child count
    if all(map(operator.is_, merged, a.children)):
        return a  # nothing widened: keep the running type, so long lists allocate nothing
    return _Sig(a.kind, merged, a.names)


_INT, _UINT, _BOOL = _Sig("int"), _Sig("uint"), _Sig("bool")
_BUFFER, _ASCII, _UTF8, _PRINCIPAL = _Sig("buffer"), _Sig("ascii"), _Sig("utf8"), _Sig("principal")
_NONE = _Sig("optional", (None,))


def is_clarity_name(name: str) -> bool:
    """Whether `name` may be a tuple key (or function name) in Clarity."""
    return len(name) <= MAX_NAME_LENGTH and _CLARITY_NAME.fullmatch(name) is not None


# --- decoding -------------------------------------------------------------------------------


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


# --- encoding -------------------------------------------------------------------------------


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


# --- principals and typed JSON --------------------------------------------------------------


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
