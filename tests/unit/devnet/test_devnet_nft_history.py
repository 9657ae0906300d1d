"""The simulated collections' history: who holds each token after the scenario's transfers
and burns, and which scenarios are refused."""

from __future__ import annotations

from typing import Any

import pytest

from devnet.nft_history import BURN, TRANSFER, NftMove, holder_address, nft_moves, owner_of
from devnet.scenario import NFT, Scenario, ScenarioError, fungible_token, nft_collection
from shared.c32 import c32_address_decode


def test_transfers_move_tokens_in_order_then_burns_destroy_them() -> None:
    collection = nft_collection("monkeys", 4, 1, transfers=(1, 2, 1), burns=(2, 4))
    deployer = collection.deployer
    hop = {n: holder_address(collection, *n) for n in [(1, 1), (1, 2), (2, 1)]}
    assert nft_moves(collection) == [
        NftMove(TRANSFER, 1, deployer, hop[1, 1]),
        NftMove(TRANSFER, 2, deployer, hop[2, 1]),
        NftMove(TRANSFER, 1, hop[1, 1], hop[1, 2]),
        NftMove(BURN, 2, hop[2, 1], None),
        NftMove(BURN, 4, deployer, None),
    ]
    assert [owner_of(collection, n) for n in range(6)] == [
        None,
        hop[1, 2],
        None,
        deployer,
        None,
        None,
    ]


def test_holders_are_distinct_addresses_on_the_collection_network() -> None:
    collection = nft_collection("monkeys", 2, 1, network="testnet")
    holders = {holder_address(collection, n, hop) for n in (1, 2) for hop in (1, 2)}
    assert len(holders) == 4
    assert {c32_address_decode(h)[0] for h in holders} == {26}


def test_a_scenario_file_lists_transfers_and_burns() -> None:
    contract = {"name": "m", "deployer_seed": "m", "kind": NFT, "block_height": 1}
    data = {"chain_tip_height": 1, "contracts": [contract | {"last_token_id": 3}]}
    data["contracts"][0] |= {"transfers": [3, 1], "burns": [2]}
    (loaded,) = Scenario.from_dict(data).contracts
    assert (loaded.transfers, loaded.burns) == ((3, 1), (2,))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nft_collection("m", 3, 1, transfers=(4,)), "1..last_token_id"),
        (lambda: nft_collection("m", 3, 1, burns=(0,)), "1..last_token_id"),
        (lambda: nft_collection("m", 3, 1, burns=(2, 2)), "burned twice"),
        (lambda: fungible_token("c", 1, symbol="C", transfers=(1,)), "only a sip-009"),
    ],
)
def test_impossible_histories_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        make()
