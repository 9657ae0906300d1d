from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.models import Sip
from shared.stacks.abi import classify_abi, first_token_name


def function(name: str, *types: Any) -> dict[str, Any]:
    args = [{"name": f"a{i}", "type": t} for i, t in enumerate(types)]
    return {"name": name, "access": "read_only", "args": args, "outputs": {"type": "bool"}}


MEMO = {"optional": {"buffer": {"length": 34}}}
NFT_ABI = {
    "functions": [
        function("get-last-token-id"),
        function("get-token-uri", "uint128"),
        function("get-owner", "uint128"),
        function("transfer", "uint128", "principal", "principal"),
        function("mint", "principal"),
    ],
    "non_fungible_tokens": [{"name": "monkey", "type": "uint128"}],
    "fungible_tokens": [],
}
FT_ABI = {
    "functions": [
        function("transfer", "uint128", "principal", "principal", MEMO),
        function("get-name"),
        function("get-symbol"),
        function("get-decimals"),
        function("get-balance", "principal"),
        function("get-total-supply"),
        function("get-token-uri"),
    ],
    "fungible_tokens": [{"name": "stx-coin"}],
    "non_fungible_tokens": [],
}
SFT_ABI = {
    "functions": [
        function("get-balance", "uint128", "principal"),
        function("get-overall-balance", "principal"),
        function("get-total-supply", "uint128"),
        function("get-overall-supply"),
        function("get-decimals", "uint128"),
        function("get-token-uri", "uint128"),
        function("transfer", "uint128", "uint128", "principal", "principal"),
        function(
            "transfer-memo",
            "uint128",
            "uint128",
            "principal",
            "principal",
            {"buffer": {"length": 34}},
        ),
    ],
    "fungible_tokens": [{"name": "semi"}],
    "non_fungible_tokens": [{"name": "semi-id", "type": {"tuple": []}}],
}


@pytest.mark.parametrize(
    ("abi", "sip"), [(NFT_ABI, Sip.SIP_009), (FT_ABI, Sip.SIP_010), (SFT_ABI, Sip.SIP_013)]
)
def test_each_standard_is_recognised(abi: dict[str, Any], sip: Sip) -> None:
    assert classify_abi(abi) == sip


def test_nft_functions_without_an_nft_definition_are_not_a_token() -> None:
    abi = copy.deepcopy(NFT_ABI)
    abi["non_fungible_tokens"] = []
    assert classify_abi(abi) is None


def test_ft_transfer_memo_type_is_compared_structurally() -> None:
    abi = copy.deepcopy(FT_ABI)
    abi["functions"][0]["args"][3]["type"] = {"list": {"type": "uint128", "length": 5}}
    assert classify_abi(abi) is None


def test_wrong_primitive_argument_type_is_not_a_token() -> None:
    abi = copy.deepcopy(NFT_ABI)
    abi["functions"][1]["args"][0]["type"] = "int128"
    assert classify_abi(abi) is None


def test_missing_function_is_not_a_token() -> None:
    abi = copy.deepcopy(NFT_ABI)
    abi["functions"] = [f for f in abi["functions"] if f["name"] != "get-owner"]
    assert classify_abi(abi) is None


@pytest.mark.parametrize("abi", [None, "null", [], {}, {"functions": "x"}, {"functions": [1]}])
def test_malformed_abis_are_not_tokens(abi: Any) -> None:
    assert classify_abi(abi) is None


def test_sft_wins_over_nft_and_ft_definitions() -> None:
    assert classify_abi(SFT_ABI) == Sip.SIP_013


def test_token_names_come_from_the_first_definition() -> None:
    assert first_token_name(FT_ABI, "fungible_tokens") == "stx-coin"
    assert first_token_name(NFT_ABI, "non_fungible_tokens") == "monkey"
    assert first_token_name(NFT_ABI, "fungible_tokens") is None
