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
    is_valid_contract_principal,
    parse_contract_principal,
)

DATA = Path(__file__).parents[2] / "data"
VECTORS = json.loads((DATA / "c32-addresses.json").read_text(encoding="utf-8"))
VALID = [pytest.param(case, id=case["description"]) for case in VECTORS["valid"]]
INVALID = [
    pytest.param(case, id=f"{case['category']}:{case['address']}") for case in VECTORS["invalid"]
]
CONTRACTS = [
    pytest.param(case, id=case["id"][42:] or "empty") for case in VECTORS["contract_principals"]
]
ZERO_HASH = bytes(20)


def test_vector_file_holds_every_documented_case() -> None:
    assert (len(VALID), len(INVALID), len(CONTRACTS)) == (40, 25, 13)


@pytest.mark.parametrize("case", VALID)
def test_valid_address_decodes_to_its_version_and_hash160(case: dict[str, Any]) -> None:
    assert c32_address_decode(case["address"]) == (
        case["version"],
        bytes.fromhex(case["hash160_hex"]),
    )


@pytest.mark.parametrize("case", VALID)
def test_version_and_hash160_encode_to_the_address(case: dict[str, Any]) -> None:
    assert c32_address(case["version"], bytes.fromhex(case["hash160_hex"])) == case["address"]


@pytest.mark.parametrize("case", INVALID)
def test_invalid_address_is_rejected_by_the_strict_decoder(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidAddress):
        c32_address_decode(case["address"])


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


@pytest.mark.parametrize(
    "hash160",
    [ZERO_HASH, bytes(19) + b"\x01", b"\x00\x00\x01" + bytes(range(17)), b"\xff" * 20],
    ids=["zero", "one", "two-leading-zero-bytes", "all-ones"],
)
def test_addresses_round_trip_and_keep_leading_zero_bytes(hash160: bytes) -> None:
    for version in (MAINNET_SINGLE_SIG, TESTNET_MULTI_SIG, 0, 31):
        assert c32_address_decode(c32_address(version, hash160)) == (version, hash160)


def test_decode_errors_give_the_position_in_the_whole_address() -> None:
    with pytest.raises(InvalidAddress, match="'O' at position 3"):
        c32_address_decode("SP0O0000000000000000002Q6VF78")
