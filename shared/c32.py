"""c32check encoding of Stacks addresses and contract principals (docs/clarity.md#c32)."""

from __future__ import annotations

import hashlib
import re

C32_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

MAINNET_SINGLE_SIG = 22
MAINNET_MULTI_SIG = 20
TESTNET_SINGLE_SIG = 26
TESTNET_MULTI_SIG = 21

HASH160_LENGTH = 20
CHECKSUM_LENGTH = 4
MAX_VERSION = 31
# "S" + version char + at most 39 chars for 24 bytes (fewer when there are leading zero bytes).
MAX_ADDRESS_LENGTH = 41
MAX_CONTRACT_NAME_LENGTH = 128
MAX_DEPLOYABLE_CONTRACT_NAME_LENGTH = 40

_C32_VALUES = {char: index for index, char in enumerate(C32_ALPHABET)}
_CONTRACT_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")


class InvalidAddress(ValueError):
    """A string is not a canonical c32check address or contract principal."""


def c32_encode(data: bytes) -> str:
    """Encode bytes as c32: the big-endian integer in base 32, one '0' per leading zero byte."""
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    if number == 0:
        return "0" * leading_zeros
    bits = format(number, "b")  # linear time for a power-of-two base, unlike repeated divmod
    bits = bits.zfill(-(-len(bits) // 5) * 5)
    digits = "".join(C32_ALPHABET[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))
    return "0" * leading_zeros + digits


def c32_checksum(version: int, payload: bytes) -> bytes:
    """First four bytes of sha256(sha256(version || payload)), which the address carries."""
    inner = hashlib.sha256(bytes([version]) + payload).digest()
    return hashlib.sha256(inner).digest()[:CHECKSUM_LENGTH]


def c32_address(version: int, hash160: bytes) -> str:
    """Build the canonical address `S<version char><c32(hash160 || checksum)>`."""
    _check_version(version)
    if len(hash160) != HASH160_LENGTH:
        raise InvalidAddress(f"hash160 must be {HASH160_LENGTH} bytes, got {len(hash160)}")
    return "S" + C32_ALPHABET[version] + c32_encode(hash160 + c32_checksum(version, hash160))


def c32_address_decode(address: str) -> tuple[int, bytes]:
    """Strictly decode an address to (version, hash160); rejects anything not canonical."""
    if not 2 < len(address) <= MAX_ADDRESS_LENGTH:
        raise InvalidAddress(f"address length {len(address)} is outside 3..{MAX_ADDRESS_LENGTH}")
    if address[0] != "S":
        raise InvalidAddress(f"address must start with 'S', got {address[0]!r}")
    if address[1] not in _C32_VALUES:
        raise InvalidAddress(f"version character {address[1]!r} is not c32")
    version = _C32_VALUES[address[1]]
    payload = _decode_digits(address[2:], offset=2)
    if len(payload) != HASH160_LENGTH + CHECKSUM_LENGTH:
        raise InvalidAddress(
            f"address data decodes to {len(payload)} bytes, expected 24 (hash160 + checksum)"
        )
    hash160, checksum = payload[:HASH160_LENGTH], payload[HASH160_LENGTH:]
    if checksum != c32_checksum(version, hash160):
        raise InvalidAddress("address checksum mismatch")
    if c32_address(version, hash160) != address:  # c32 is bijective; this only guards the above
        raise InvalidAddress("address is not in canonical form")
    return version, hash160


def parse_contract_principal(text: str, *, deployable: bool = False) -> tuple[int, bytes, str]:
    """Split `ADDR.name` into (version, hash160, name), validating both parts."""
    address, dot, name = text.partition(".")
    if not dot:
        raise InvalidAddress(f"contract principal {text!r} has no '.'")
    version, hash160 = c32_address_decode(address)
    check_contract_name(name, deployable=deployable)
    return version, hash160, name


def is_valid_contract_principal(text: str, *, deployable: bool = False) -> bool:
    """True when `text` is `ADDR.name` with a canonical address and an acceptable name."""
    try:
        parse_contract_principal(text, deployable=deployable)
    except InvalidAddress:
        return False
    return True


def check_contract_name(name: str, *, deployable: bool = False) -> None:
    """Reject names a value may not carry (1..128 chars), or a deployment may not use (1..40)."""
    limit = MAX_DEPLOYABLE_CONTRACT_NAME_LENGTH if deployable else MAX_CONTRACT_NAME_LENGTH
    if not 1 <= len(name) <= limit:
        raise InvalidAddress(f"contract name length {len(name)} is outside 1..{limit}")
    if _CONTRACT_NAME.fullmatch(name) is None:
        raise InvalidAddress(f"contract name {name!r} must match ^[a-zA-Z]([a-zA-Z0-9]|[-_])*$")


def _check_version(version: int) -> None:
    """Versions are one c32 character, so only 0..31 can be written."""
    if not 0 <= version <= MAX_VERSION:
        raise InvalidAddress(f"address version {version} is outside 0..{MAX_VERSION}")


def _decode_digits(text: str, *, offset: int) -> bytes:
    """c32 decoding whose error messages give positions within the caller's whole string."""
    for position, char in enumerate(text, start=offset):
        if char not in _C32_VALUES:
            raise InvalidAddress(f"character {char!r} at position {position} is not c32")
    rest = text.lstrip("0")
    leading_zeros = len(text) - len(rest)
    if not rest:
        return b"\x00" * leading_zeros
    # Building a binary string keeps this linear; int("...", 2) is linear for a power-of-two base.
    number = int("".join(format(_C32_VALUES[char], "05b") for char in rest), 2)
    return b"\x00" * leading_zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
