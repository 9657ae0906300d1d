"""The simulated node RPC and metadata host, driven over HTTP on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devnet.metadata_host import HUGE_DOCUMENT_BYTES, MetadataHost
from devnet.nft_history import holder_address
from devnet.scenario import (
    BEHAVIOURS,
    Contract,
    Scenario,
    SftToken,
    fungible_token,
    nft_collection,
    plain_contract,
    semi_fungible_token,
)
from devnet.server import Devnet
from shared import clarity
from shared.clarity import (
    ClarityValue,
    OptionalNone,
    OptionalSome,
    ResponseErr,
    ResponseOk,
    StringAscii,
    StringUtf8,
    UInt,
)

SLOW_MS = 150
MONKEYS = nft_collection("monkeys", 3, 1, transfers=(2, 2), burns=(3,))
COIN = fungible_token(
    "coin", 1, token_name="Coin", symbol="COIN", decimals=6, total_supply=1_000_000
)
ITEMS = semi_fungible_token("items", 2, [SftToken(1, 0, 10), SftToken(5, 2, 990)])
MARKET = plain_contract("market", 2)
FAILED = nft_collection("failed-drop", 2, 2, failed=True)
BROKEN = nft_collection("broken", 2, 2, clarity_error=True)
CUSTOM_PATHS = [
    nft_collection("deep", 2, 1, token_uri="{metadata}/api/v1/deep/{id}"),
    nft_collection("flat", 2, 1, token_uri="{metadata}/flat-{id}.json"),
    fungible_token("single", 1, symbol="ONE", token_uri="{metadata}/single.json"),
]
MISBEHAVING = {
    behaviour: nft_collection(f"host-{behaviour}", 2, 3, behaviour=behaviour, delay_ms=SLOW_MS)
    for behaviour in BEHAVIOURS
}
SCENARIO = Scenario.build(
    [MONKEYS, COIN, ITEMS, MARKET, FAILED, BROKEN, *CUSTOM_PATHS, *MISBEHAVING.values()],
    chain_tip_height=5,
)
UNKNOWN_ID = "SP000000000000000000002Q6VF78.nothing"


@pytest.fixture(scope="module")
def net() -> Iterator[Devnet]:
    with Devnet(SCENARIO) as devnet:
        yield devnet


def call(net: Devnet, contract_id: str, function: str, *args: ClarityValue) -> dict[str, Any]:
    address, name = contract_id.split(".")
    response = requests.post(
        f"{net.node_url}/v2/contracts/call-read/{address}/{name}/{function}",
        json={"sender": address, "arguments": [clarity.to_hex(arg) for arg in args]},
        timeout=5,
    )
    assert response.status_code == 200
    payload: dict[str, Any] = response.json()
    return payload


def value(net: Devnet, contract: Contract, function: str, *args: ClarityValue) -> ClarityValue:
    payload = call(net, contract.contract_id, function, *args)
    assert payload["okay"] is True, payload
    return clarity.from_hex(payload["result"])


def test_info_reports_the_scenario_tip(net: Devnet) -> None:
    info = requests.get(f"{net.node_url}/v2/info", timeout=5).json()
    assert info["stacks_tip_height"] == 5
    assert info["network_id"] == 1
    assert len(info["stacks_tip"]) == 64
    assert info["burn_block_height"] > info["stacks_tip_height"]
    assert "server_version" in info


@pytest.mark.parametrize(
    ("contract", "asset_section"),
    [(MONKEYS, "non_fungible_tokens"), (COIN, "fungible_tokens"), (ITEMS, "fungible_tokens")],
)
def test_interface_is_the_contract_abi(net: Devnet, contract: Contract, asset_section: str) -> None:
    address, name = contract.contract_id.split(".")
    abi = requests.get(f"{net.node_url}/v2/contracts/interface/{address}/{name}", timeout=5).json()
    assert abi[asset_section][0]["name"] == name
    assert {"get-token-uri", "transfer"} <= {f["name"] for f in abi["functions"]}


@pytest.mark.parametrize("contract_id", [FAILED.contract_id, UNKNOWN_ID])
def test_interface_of_a_missing_contract_is_404(net: Devnet, contract_id: str) -> None:
    address, name = contract_id.split(".")
    response = requests.get(f"{net.node_url}/v2/contracts/interface/{address}/{name}", timeout=5)
    assert response.status_code == 404
    assert response.text == "No contract interface data found"


def test_nft_getters(net: Devnet) -> None:
    uri = f"{net.metadata_url}/monkeys/{{id}}.json"
    assert value(net, MONKEYS, "get-last-token-id") == ResponseOk(UInt(3))
    assert value(net, MONKEYS, "get-token-uri", UInt(1)) == ResponseOk(
        OptionalSome(StringAscii(uri))
    )
    assert value(net, MONKEYS, "get-token-uri", UInt(4)) == ResponseOk(OptionalNone())
    # The seeded history's owners: 1 stays with the deployer, 2 changed hands twice, 3 burned.
    assert value(net, MONKEYS, "get-owner", UInt(1)) == owner_response(MONKEYS.deployer)
    assert value(net, MONKEYS, "get-owner", UInt(2)) == owner_response(
        holder_address(MONKEYS, 2, 2)
    )
    assert value(net, MONKEYS, "get-owner", UInt(3)) == ResponseOk(OptionalNone())
    assert value(net, MONKEYS, "get-owner", UInt(0)) == ResponseOk(OptionalNone())


def owner_response(address: str) -> ClarityValue:
    return ResponseOk(OptionalSome(clarity.principal_from_string(address)))


def test_ft_getters(net: Devnet) -> None:
    uri = f"{net.metadata_url}/coin/ft.json"
    assert value(net, COIN, "get-name") == ResponseOk(StringAscii("Coin"))
    assert value(net, COIN, "get-symbol") == ResponseOk(StringAscii("COIN"))
    assert value(net, COIN, "get-decimals") == ResponseOk(UInt(6))
    assert value(net, COIN, "get-total-supply") == ResponseOk(UInt(1_000_000))
    assert value(net, COIN, "get-token-uri") == ResponseOk(OptionalSome(StringUtf8(uri)))


def test_sft_getters(net: Devnet) -> None:
    uri = f"{net.metadata_url}/items/{{id}}.json"
    assert value(net, ITEMS, "get-token-uri", UInt(5)) == ResponseOk(OptionalSome(StringAscii(uri)))
    assert value(net, ITEMS, "get-token-uri", UInt(2)) == ResponseOk(OptionalNone())
    assert value(net, ITEMS, "get-decimals", UInt(5)) == ResponseOk(UInt(2))
    assert value(net, ITEMS, "get-total-supply", UInt(5)) == ResponseOk(UInt(990))
    assert value(net, ITEMS, "get-overall-supply") == ResponseOk(UInt(1000))


def test_clarity_error_contract_returns_err(net: Devnet) -> None:
    assert value(net, BROKEN, "get-last-token-id") == ResponseErr(UInt(1))


@pytest.mark.parametrize("contract_id", [UNKNOWN_ID, FAILED.contract_id])
def test_missing_contract_cause(net: Devnet, contract_id: str) -> None:
    payload = call(net, contract_id, "get-last-token-id")
    assert payload == {"okay": False, "cause": f'Unchecked(NoSuchContract("{contract_id}"))'}


@pytest.mark.parametrize(
    ("contract", "function", "args", "cause"),
    [
        (MONKEYS, "get-name", (), 'Unchecked(UndefinedFunction("get-name"))'),
        (MARKET, "get-token-uri", (UInt(1),), 'Unchecked(UndefinedFunction("get-token-uri"))'),
        (MONKEYS, "get-token-uri", (), "Unchecked(IncorrectArgumentCount(1, 0))"),
        (MONKEYS, "get-token-uri", (StringAscii("1"),), "Unchecked(TypeValueError(UIntType"),
        (MONKEYS, "transfer", (), "NotReadOnly"),
    ],
)
def test_refused_calls_explain_why(
    net: Devnet, contract: Contract, function: str, args: tuple[ClarityValue, ...], cause: str
) -> None:
    payload = call(net, contract.contract_id, function, *args)
    assert payload["okay"] is False
    assert payload["cause"].startswith(cause)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (json.dumps({"sender": "SP000000000000000000002Q6VF78", "arguments": ["0xzz"]}), None),
        (json.dumps({"sender": "SP000000000000000000002Q6VF78", "arguments": ["0x01"]}), None),
        (json.dumps({"sender": "not-a-principal", "arguments": []}), None),
        ("{not json", None),
        (json.dumps({"sender": "SP000000000000000000002Q6VF78", "arguments": []}), "text/plain"),
    ],
)
def test_malformed_call_is_400(net: Devnet, body: str, headers: str | None) -> None:
    address, name = MONKEYS.contract_id.split(".")
    response = requests.post(
        f"{net.node_url}/v2/contracts/call-read/{address}/{name}/get-last-token-id",
        data=body,
        headers={"Content-Type": headers or "application/json"},
        timeout=5,
    )
    assert response.status_code == 400


def test_requests_are_counted_per_path(net: Devnet) -> None:
    assert net.node is not None
    address, name = COIN.contract_id.split(".")
    path = f"/v2/contracts/call-read/{address}/{name}/get-decimals"
    before = net.node.request_count(path)
    call(net, COIN.contract_id, "get-decimals")
    call(net, COIN.contract_id, "get-decimals")
    assert net.node.request_count(path) == before + 2


def test_ok_document_is_a_sip16_document(net: Devnet) -> None:
    document = requests.get(f"{net.metadata_url}/monkeys/2.json", timeout=5).json()
    assert document["sip"] == 16
    assert document["name"] == "Monkeys #2"
    assert document["image"] == f"{net.metadata_url}/monkeys/2.png"
    assert 3 <= len(document["attributes"]) <= 4
    assert document["properties"]["id"] == 2
    assert document["properties"]["collection"] == "Monkeys"
    again = requests.get(f"{net.metadata_url}/monkeys/2.json", timeout=5).json()
    assert again == document


def test_ft_and_sft_documents_carry_decimals(net: Devnet) -> None:
    ft = requests.get(f"{net.metadata_url}/coin/ft.json", timeout=5).json()
    assert (ft["name"], ft["properties"]["decimals"]) == ("Coin", 6)
    sft = requests.get(f"{net.metadata_url}/items/5.json", timeout=5).json()
    assert sft["properties"]["decimals"] == 2


def test_image_is_a_png(net: Devnet) -> None:
    response = requests.get(f"{net.metadata_url}/monkeys/2.png", timeout=5)
    assert response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/v1/deep/2", "Deep #2"), ("/flat-1.json", "Flat #1"), ("/single.json", "Single")],
)
def test_documents_live_where_the_uri_template_says(net: Devnet, path: str, name: str) -> None:
    response = requests.get(f"{net.metadata_url}{path}", timeout=5)
    assert response.json()["name"] == name


@pytest.mark.parametrize("path", ["/monkeys/4.json", "/monkeys/0.json", "/nothing/1.json", "/"])
def test_unknown_documents_are_404(net: Devnet, path: str) -> None:
    assert requests.get(f"{net.metadata_url}{path}", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("behaviour", "status", "check"),
    [
        ("not-found", 404, lambda r: True),
        ("server-error", 500, lambda r: True),
        ("html", 200, lambda r: r.headers["Content-Type"] == "text/html"),
        ("empty", 200, lambda r: r.content == b""),
        ("array", 200, lambda r: isinstance(r.json(), list)),
        ("no-name", 200, lambda r: "name" not in r.json() and r.json()["sip"] == 16),
        ("huge", 200, lambda r: len(r.content) > HUGE_DOCUMENT_BYTES and r.json()["sip"] == 16),
    ],
)
def test_misbehaving_hosts(net: Devnet, behaviour: str, status: int, check: Any) -> None:
    response = requests.get(f"{net.metadata_url}/host-{behaviour}/1.json", timeout=5)
    assert response.status_code == status
    assert check(response)


def test_slow_host_delays_the_document(net: Devnet) -> None:
    started = time.monotonic()
    response = requests.get(f"{net.metadata_url}/host-slow/1.json", timeout=5)
    assert time.monotonic() - started >= SLOW_MS / 1000
    assert response.json()["name"] == "Host Slow #1"


def test_latency_and_jitter_are_deterministic_and_bounded() -> None:
    scenario = Scenario.build([MONKEYS], metadata_latency_ms=100, metadata_jitter_ms=20)
    delays: list[list[float]] = [[], []]
    for recorded in delays:
        host = MetadataHost(scenario, sleep=recorded.append)
        for _ in range(20):
            assert host.route("GET", "/monkeys/1.json", {}, b"").status == 200
    assert delays[0] == delays[1]
    assert all(0.08 <= delay <= 0.12 for delay in delays[0])
    assert len(set(delays[0])) > 1


def test_deploying_later_makes_a_contract_visible() -> None:
    late = nft_collection("late-drop", 2, 9)
    with Devnet(Scenario.build([MONKEYS])) as net:
        assert call(net, late.contract_id, "get-last-token-id")["okay"] is False
        net.deploy(late)
        assert value(net, late, "get-last-token-id") == ResponseOk(UInt(2))
        assert requests.get(f"{net.metadata_url}/late-drop/2.json", timeout=5).status_code == 200
    with pytest.raises(RuntimeError):
        _ = net.node_url


def test_cli_serves_until_sigterm() -> None:
    scenario = Path(__file__).parents[3] / "devnet" / "scenarios" / "e2e-200.json"
    command = [sys.executable, "-m", "devnet", "serve", "--node-port", "0", "--metadata-port", "0"]
    process = subprocess.Popen(
        [*command, "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "API_PORT": "3123"},  # the API the examples call
    )
    try:
        assert process.stdout is not None
        node_url = process.stdout.readline().split()[3]
        contract_line = process.stdout.readline()
        assert "curl http://localhost:3123/metadata/v1/nft/SP" in contract_line
        info = requests.get(f"{node_url}/v2/info", timeout=5).json()
        assert info["stacks_tip_height"] == 6
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "stopped" in process.stdout.read()
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
