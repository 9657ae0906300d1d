"""c32check addresses and contract principals against the shared vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.c32 import (
    MAINNET_MULTI_SIG,
    MAINNET_SINGLE_SIG,
    TESTNET_MULTI_SIG,
    TESTNET_SINGLE_SIG,
    InvalidAddress,
    c32_address,
    c32_address_decode,
    c32_decode,
    c32_encode,
    is_valid_address,
    is_valid_contract_principal,
    lenient_address_decode,
    parse_contract_principal,
)

DATA = Path(__file__).parents[2] / "data"
VECTORS = json.loads((DATA / "c32-addresses.json").read_text(encoding="utf-8"))
VALID = [pytest.param(case, id=case["description"]) for case in VECTORS["valid"]]
INVALID = [
    pytest.param(case, id=f"{case['category']}:{case['address']}") for case in VECTORS["invalid"]
]
NON_CANONICAL = [
    pytest.param(case, id=case["address"])
    for case in VECTORS["invalid"]
    if "lenient_decode" in case
]
CONTRACTS = [
    pytest.param(case, id=case["id"][42:] or "empty") for case in VECTORS["contract_principals"]
]
ZERO_HASH = bytes(20)


def test_vector_file_holds_every_documented_case() -> None:
    assert (len(VALID), len(INVALID), len(NON_CANONICAL), len(CONTRACTS)) == (40, 25, 5, 13)


@pytest.mark.parametrize("case", VALID)
def test_valid_address_decodes_to_its_version_and_hash160(case: dict[str, Any]) -> None:
    assert c32_address_decode(case["address"]) == (
        case["version"],
        bytes.fromhex(case["hash160_hex"]),
    )
    assert is_valid_address(case["address"])


@pytest.mark.parametrize("case", VALID)
def test_version_and_hash160_encode_to_the_address(case: dict[str, Any]) -> None:
    assert c32_address(case["version"], bytes.fromhex(case["hash160_hex"])) == case["address"]


@pytest.mark.parametrize("case", INVALID)
def test_invalid_address_is_rejected_by_the_strict_decoder(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidAddress):
        c32_address_decode(case["address"])
    assert not is_valid_address(case["address"])


@pytest.mark.parametrize("case", NON_CANONICAL)
def test_non_canonical_spelling_decodes_leniently_to_the_canonical_address(
    case: dict[str, Any],
) -> None:
    expected = case["lenient_decode"]

    version, hash160 = lenient_address_decode(case["address"])

    assert (version, hash160.hex()) == (expected["version"], expected["hash160_hex"])
    assert c32_address(version, hash160) == case["canonical"]


@pytest.mark.parametrize("case", CONTRACTS)
def test_contract_principal_name_rules_match_value_and_deploy_limits(case: dict[str, Any]) -> None:
    assert is_valid_contract_principal(case["id"]) is case["valid_value"]
    assert is_valid_contract_principal(case["id"], deployable=True) is case["deployable"]


def test_parse_contract_principal_splits_address_and_name() -> None:
    version, hash160, name = parse_contract_principal("SP000000000000000000002Q6VF78.pox-4")

    assert (version, hash160, name) == (MAINNET_SINGLE_SIG, ZERO_HASH, "pox-4")


@pytest.mark.parametrize(
    "text",
    [
        "SP000000000000000000002Q6VF78",
        "SP000000000000000000002Q6VF78.a\n",
        "sp000000000000000000002q6vf78.a",
    ],
    ids=["no-dot", "trailing-newline", "lowercase-address"],
)
def test_parse_contract_principal_rejects_malformed_text(text: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_contract_principal(text)


@pytest.mark.parametrize(
    ("version", "prefix"),
    [
        (MAINNET_SINGLE_SIG, "SP"),
        (MAINNET_MULTI_SIG, "SM"),
        (TESTNET_SINGLE_SIG, "ST"),
        (TESTNET_MULTI_SIG, "SN"),
    ],
)
def test_network_versions_give_their_address_prefix(version: int, prefix: str) -> None:
    assert c32_address(version, ZERO_HASH).startswith(prefix)


@pytest.mark.parametrize(
    ("version", "hash160"), [(32, ZERO_HASH), (-1, ZERO_HASH), (22, bytes(19))]
)
def test_address_with_bad_version_or_hash_length_cannot_be_built(
    version: int, hash160: bytes
) -> None:
    with pytest.raises(InvalidAddress):
        c32_address(version, hash160)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x01", b"\xff" * 24, bytes(range(40))])
def test_c32_encoding_round_trips_and_keeps_leading_zero_bytes(data: bytes) -> None:
    assert c32_decode(c32_encode(data)) == data


def test_c32_decode_accepts_only_the_canonical_alphabet() -> None:
    with pytest.raises(InvalidAddress, match="position 1"):
        c32_decode("0O")


def test_lenient_decode_refuses_non_ascii_that_upper_cases_to_ascii() -> None:
    with pytest.raises(InvalidAddress, match="non-ASCII"):
        lenient_address_decode("SP\u0131H6HY2ZPSFPZF6HBNADAYKQ2FJN75GHVV95YZQ")
