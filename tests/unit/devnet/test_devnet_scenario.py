"""Scenario files and builders: what loads, what is rejected and why."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from devnet.metadata_host import PNG, png
from devnet.scenario import (
    FT,
    NFT,
    OTHER,
    SFT,
    Scenario,
    ScenarioError,
    SftToken,
    deployer_address,
    fungible_token,
    nft_collection,
    plain_contract,
    semi_fungible_token,
)
from shared.c32 import c32_address_decode

MONKEYS = "SP2BFRB2PK03B2M2ENVBCF7TTWNBZ43JMYJW0Q6WF"
BAD_ADDRESS = {"name": "punks", "deployer": MONKEYS[:-1] + "X"}


def scenario_dict(*contracts: dict[str, Any], tip: int = 10) -> dict[str, Any]:
    return {"network": "mainnet", "chain_tip_height": tip, "contracts": list(contracts)}


def nft(name: str = "monkeys", **fields: Any) -> dict[str, Any]:
    return {"name": name, "deployer_seed": name, "kind": NFT, "block_height": 2} | fields


def test_default_scenario_has_every_kind_of_contract() -> None:
    scenario = Scenario.packaged("default")
    kinds = [c.kind for c in scenario.contracts if not c.failed]
    assert sorted(kinds) == sorted([NFT, NFT, NFT, FT, FT, SFT, OTHER])
    assert [c.kind for c in scenario.contracts if c.failed] == [NFT]
    assert sorted(
        c.last_token_id for c in scenario.contracts if c.kind == NFT and not c.failed
    ) == [
        25,
        100,
        200,
    ]
    assert scenario.chain_tip_height > max(c.block_height for c in scenario.contracts)


def test_e2e_scenario_has_one_collection_of_200_tokens() -> None:
    scenario = Scenario.packaged("e2e-200")
    (collection,) = scenario.token_contracts
    assert collection.kind == NFT
    assert collection.last_token_id == 200
    assert [c.kind for c in scenario.contracts if c.failed] == [NFT]
    assert [c.kind for c in scenario.contracts if not c.is_token] == [OTHER]


def test_loading_a_file_matches_the_packaged_copy() -> None:
    path = Path(__file__).parents[3] / "devnet" / "scenarios" / "default.json"
    assert Scenario.load(path) == Scenario.packaged("default")


def test_deployer_seeds_give_stable_valid_addresses() -> None:
    assert deployer_address("devnet/monkey-labs") == MONKEYS
    for seed in ("a", "devnet/e2e-monkeys", "x" * 100):
        assert c32_address_decode(deployer_address(seed))[0] == 22  # raises if invalid
    assert c32_address_decode(deployer_address("a", "testnet"))[0] == 26


def test_every_packaged_deployer_is_a_valid_address() -> None:
    for name in ("default", "e2e-200"):
        for contract in Scenario.packaged(name).contracts:
            c32_address_decode(contract.deployer)  # raises InvalidAddress for an invalid one


def test_explicit_deployer_is_kept() -> None:
    data = scenario_dict({"name": "punks", "deployer": MONKEYS, "kind": NFT, "block_height": 1})
    (contract,) = Scenario.from_dict(data).contracts
    assert contract.contract_id == f"{MONKEYS}.punks"


def test_token_uri_defaults_per_kind_and_keeps_the_id_placeholder() -> None:
    nft_uri = nft_collection("monkeys", 5, 1).resolved_token_uri("http://127.0.0.1:8999/")
    assert nft_uri == "http://127.0.0.1:8999/monkeys/{id}.json"
    assert fungible_token("coin", 1, symbol="C").token_uri == "{metadata}/coin/ft.json"
    assert plain_contract("registry", 1).token_uri is None
    assert nft_collection("x", 1, 1, token_uri=None).resolved_token_uri("http://h") is None


def test_build_defaults_the_tip_to_the_highest_deploy() -> None:
    scenario = Scenario.build(
        [nft_collection("monkeys", 3, 4), semi_fungible_token("items", 7, [SftToken(1, 0, 9)])]
    )
    assert scenario.chain_tip_height == 7
    assert scenario.contract(scenario.contracts[0].contract_id) == scenario.contracts[0]
    assert scenario.contract("SP000000000000000000002Q6VF78.nope") is None


def test_with_contracts_raises_the_tip() -> None:
    scenario = Scenario.build([nft_collection("monkeys", 3, 4)])
    grown = scenario.with_contracts(nft_collection("punks", 1, 9))
    assert grown.chain_tip_height == 9
    assert len(grown.contracts) == 2


def test_nft_token_ids_start_at_one() -> None:
    contract = nft_collection("monkeys", 3, 1)
    assert [contract.has_token(i) for i in range(5)] == [False, True, True, True, False]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario_dict(nft(), nft()), "duplicate contract id"),
        (scenario_dict(nft(block_height=11)), "above the chain tip"),
        (scenario_dict(nft(kind="sip-999")), "unknown kind"),
        (scenario_dict(nft(behaviour="flaky")), "unknown behaviour"),
        (scenario_dict(nft(colour="red")), "unknown keys"),
        (scenario_dict(nft(deployer=MONKEYS)), "exactly one of"),
        (scenario_dict({**BAD_ADDRESS, "kind": NFT, "block_height": 1}), "checksum|length"),
        (scenario_dict(nft(name="9lives")), "contract name"),
        (
            scenario_dict(
                nft(name="a", token_uri="{metadata}/x/{id}.json"),
                nft(name="b", token_uri="{metadata}/x/{id}.json"),
            ),
            "metadata path",
        ),
        (
            scenario_dict({"name": "coin", "deployer_seed": "c", "kind": FT, "block_height": 1}),
            "needs a 'token'",
        ),
        (scenario_dict(nft(), tip=0), "chain_tip_height"),
        ({"contracts": []}, "malformed"),
        ({"chain_tip_height": 3, "network": "regtest", "contracts": []}, "unknown network"),
    ],
)
def test_invalid_scenarios_are_rejected_with_a_reason(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict(data)


def test_mainnet_scenario_rejects_testnet_deployers() -> None:
    testnet = deployer_address("monkeys", "testnet")
    data = scenario_dict({"name": "m", "deployer": testnet, "kind": NFT, "block_height": 1})
    with pytest.raises(ScenarioError, match="not a mainnet address"):
        Scenario.from_dict(data)


def test_load_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(scenario_dict(nft(kind="sip-999"))))
    with pytest.raises(ScenarioError, match=r"broken\.json"):
        Scenario.load(path)


def test_image_size_gives_a_picture_of_that_size() -> None:
    scenario = Scenario.from_dict({**scenario_dict(nft()), "image_size_px": 64})
    picture = Image.open(io.BytesIO(png(scenario.image_size_px)))
    assert (picture.format, picture.size) == ("PNG", (64, 64))
    assert png(1) == PNG  # the default stays the 1x1 placeholder


def test_image_size_out_of_range_is_rejected() -> None:
    with pytest.raises(ScenarioError, match="image_size_px"):
        Scenario.from_dict({**scenario_dict(nft()), "image_size_px": 0})
