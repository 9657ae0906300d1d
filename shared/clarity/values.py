"""Clarity values: the 15 value types, the codec's errors and limits (docs/clarity.md#rules)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

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


def is_clarity_name(name: str) -> bool:
    """Whether `name` may be a tuple key (or function name) in Clarity."""
    return len(name) <= MAX_NAME_LENGTH and _CLARITY_NAME.fullmatch(name) is not None
