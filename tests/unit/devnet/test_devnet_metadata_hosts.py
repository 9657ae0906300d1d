"""Metadata hosts on several loopback addresses: scenario keys, validation, URI resolution and
which host serves which contract after which latency."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from devnet.abis import source_code
from devnet.metadata_host import MetadataHost
from devnet.node import call_read_only
from devnet.scenario import (
    HostLatency,
    Scenario,
    ScenarioError,
    fungible_token,
    nft_collection,
    plain_contract,
)
from shared.clarity import OptionalSome, ResponseOk, StringAscii, StringUtf8, UInt

URL = "http://127.0.0.1:8999"
PUNKS = nft_collection("punks", 3, 1, metadata_host="127.0.0.2")
APES = nft_collection("apes", 3, 1, metadata_host="127.0.0.10", token_uri="{metadata}/{id}.json")
MONKEYS = nft_collection("monkeys", 3, 1)
COIN = fungible_token("coin", 1, symbol="C", metadata_host="127.0.0.2")


def scenario_dict(*contracts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"chain_tip_height": 5, "contracts": list(contracts)} | fields


def nft(name: str = "punks", **fields: Any) -> dict[str, Any]:
    return {"name": name, "deployer_seed": name, "kind": "sip-009", "block_height": 2} | fields


def hosts(**latencies: tuple[int, int]) -> dict[str, dict[str, int]]:
    """The `metadata_hosts` JSON object; `a2=(100, 20)` stands for 127.0.0.2 at 100+-20 ms."""
    return {
        f"127.0.0.{key.removeprefix('a')}": {"latency_ms": latency, "jitter_ms": jitter}
        for key, (latency, jitter) in latencies.items()
    }


def test_scenario_file_keys_load() -> None:
    data = scenario_dict(
        nft(metadata_host="127.0.0.2"),
        nft("monkeys"),
        metadata_latency_ms=5,
        metadata_jitter_ms=1,
        metadata_hosts=hosts(a2=(100, 20), a3=(0, 0)),
    )
    scenario = Scenario.from_dict(data)
    punks, monkeys = scenario.contracts
    assert (punks.metadata_host, monkeys.metadata_host) == ("127.0.0.2", None)
    assert scenario.metadata_hosts == (
        HostLatency("127.0.0.2", 100, 20),
        HostLatency("127.0.0.3", 0, 0),
    )
    assert scenario.latency_for("127.0.0.2") == (100, 20)
    assert scenario.latency_for("127.0.0.3") == (0, 0)
    assert scenario.latency_for("127.0.0.1") == (5, 1)
    assert scenario.latency_for("127.0.0.9") == (5, 1)


def test_a_host_entry_may_leave_out_its_numbers() -> None:
    data = scenario_dict(nft(), metadata_hosts={"127.0.0.2": {"latency_ms": 40}})
    assert Scenario.from_dict(data).metadata_hosts == (HostLatency("127.0.0.2", 40, 0),)


def test_build_takes_host_latencies_and_scenarios_stay_hashable() -> None:
    scenario = Scenario.build([PUNKS], metadata_hosts=[HostLatency("127.0.0.2", 80, 10)])
    assert scenario.latency_for("127.0.0.2") == (80, 10)
    assert hash(scenario) == hash(Scenario.build([PUNKS], metadata_hosts=scenario.metadata_hosts))
    assert scenario.with_contracts(MONKEYS).metadata_hosts == scenario.metadata_hosts


def test_metadata_addresses_put_the_default_first_then_numeric_order() -> None:
    listed = [HostLatency("127.0.0.3"), HostLatency("127.0.0.2"), HostLatency("127.0.0.1")]
    scenario = Scenario.build([APES, MONKEYS, PUNKS, COIN], metadata_hosts=listed)
    assert scenario.metadata_addresses() == ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.10")


def test_a_scenario_without_hosts_has_only_the_default_address() -> None:
    assert Scenario.packaged("default").metadata_addresses() == ("127.0.0.1",)
    assert Scenario.build([PUNKS]).metadata_addresses() == ("127.0.0.1", "127.0.0.2")


@pytest.mark.parametrize(
    ("metadata_url", "expected"),
    [
        ("http://127.0.0.1:8999", "http://127.0.0.2:8999/punks/{id}.json"),
        ("http://127.0.0.1:8999/", "http://127.0.0.2:8999/punks/{id}.json"),
        ("http://localhost", "http://127.0.0.2/punks/{id}.json"),
        ("https://127.0.0.1:443/prefix", "https://127.0.0.2:443/prefix/punks/{id}.json"),
    ],
)
def test_a_contract_host_replaces_the_host_name_and_keeps_the_port(
    metadata_url: str, expected: str
) -> None:
    assert PUNKS.resolved_token_uri(metadata_url) == expected


def test_a_contract_without_host_keeps_the_metadata_url() -> None:
    assert MONKEYS.resolved_token_uri(URL) == f"{URL}/monkeys/{{id}}.json"
    assert MONKEYS.metadata_address == "127.0.0.1"
    assert PUNKS.metadata_address == "127.0.0.2"


def test_node_answers_and_seeded_source_point_at_the_contract_host() -> None:
    uri = call_read_only(PUNKS.contract_id, PUNKS, "get-token-uri", [UInt(1)], URL)
    assert uri == ResponseOk(OptionalSome(StringAscii("http://127.0.0.2:8999/punks/{id}.json")))
    base = call_read_only(PUNKS.contract_id, PUNKS, "get-base-uri", [], URL)
    assert base == ResponseOk(StringAscii("http://127.0.0.2:8999/punks/"))
    ft_uri = call_read_only(COIN.contract_id, COIN, "get-token-uri", [], URL)
    assert ft_uri == ResponseOk(OptionalSome(StringUtf8("http://127.0.0.2:8999/coin/ft.json")))
    assert "http://127.0.0.2:8999/punks/{id}.json" in source_code(PUNKS, URL)
    assert "127.0.0.1" not in source_code(PUNKS, URL)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario_dict(nft(metadata_host="localhost")), "metadata_host: 'localhost' is not an"),
        (scenario_dict(nft(metadata_host="10.0.0.1")), r"inside 127\.0\.0\.0/8"),
        (scenario_dict(nft(metadata_host="::1")), "not an IPv4 address"),
        (scenario_dict(nft(metadata_host="127.0.0.256")), "not an IPv4 address"),
        (scenario_dict(nft(metadata_host="127.0.0.02")), "not an IPv4 address"),
        (scenario_dict(nft(metadata_host=2130706434)), "not an IPv4 address"),
        (scenario_dict(nft(metadata_host="127.0.0.2", token_uri=None)), "does not start with"),
        (
            scenario_dict(nft(metadata_host="127.0.0.2", token_uri="ipfs://Qm/{id}.json")),
            "does not start with",
        ),
        (scenario_dict(nft(), metadata_hosts=hosts(a2=(-1, 0))), "negative latency"),
        (scenario_dict(nft(), metadata_hosts=hosts(a2=(0, -1))), "negative latency"),
        (scenario_dict(nft(), metadata_hosts={"8.8.8.8": {}}), r"inside 127\.0\.0\.0/8"),
        (scenario_dict(nft(), metadata_hosts={"127.0.0.2": {"delay": 1}}), "unknown keys"),
        (scenario_dict(nft(), metadata_hosts={"127.0.0.2": 100}), "needs an object"),
        (scenario_dict(nft(), metadata_hosts=["127.0.0.2"]), "keyed by address"),
        (
            scenario_dict(
                nft("a", metadata_host="127.0.0.2", token_uri="{metadata}/{id}.json"),
                nft("b", metadata_host="127.0.0.2", token_uri="{metadata}/{id}.json"),
            ),
            r"metadata path /\{id\}\.json on 127\.0\.0\.2 used by",
        ),
        (
            scenario_dict(
                nft("a", token_uri="{metadata}/{id}.json"),
                nft("b", metadata_host="127.0.0.1", token_uri="{metadata}/{id}.json"),
            ),
            "metadata path",
        ),
    ],
)
def test_invalid_hosts_are_rejected_with_a_reason(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict(data)


def test_duplicate_host_latencies_are_rejected() -> None:
    twice = [HostLatency("127.0.0.2", 1), HostLatency("127.0.0.3"), HostLatency("127.0.0.2", 2)]
    with pytest.raises(ScenarioError, match=r"duplicate addresses \['127\.0\.0\.2'\]"):
        Scenario.build([MONKEYS], metadata_hosts=twice)


def test_a_plain_contract_cannot_name_a_host() -> None:
    with pytest.raises(ScenarioError, match="does not start with"):
        plain_contract("market", 1, metadata_host="127.0.0.2")


def test_the_same_path_may_live_on_two_hosts() -> None:
    other = nft_collection("others", 2, 1, metadata_host="127.0.0.3", token_uri=APES.token_uri)
    scenario = Scenario.build([APES, other])
    assert scenario.metadata_addresses() == ("127.0.0.1", "127.0.0.3", "127.0.0.10")


def route(host: MetadataHost, path: str) -> int:
    return host.route("GET", path, {"host": f"{host.address}:8999"}, b"").status


def test_each_host_serves_only_the_contracts_on_its_address() -> None:
    scenario = Scenario.build([MONKEYS, PUNKS, APES])
    default = MetadataHost(scenario)
    second = MetadataHost(scenario, address="127.0.0.2")
    tenth = MetadataHost(scenario, address="127.0.0.10")
    paths = ("/monkeys/1.json", "/punks/1.json", "/1.json", "/punks/1.png")
    statuses = {host.address: [route(host, p) for p in paths] for host in (default, second, tenth)}
    assert statuses == {
        "127.0.0.1": [200, 404, 404, 404],
        "127.0.0.2": [404, 200, 404, 200],
        "127.0.0.10": [404, 404, 200, 404],
    }


def test_each_host_waits_its_own_latency() -> None:
    scenario = Scenario.build(
        [MONKEYS, PUNKS],
        metadata_latency_ms=50,
        metadata_hosts=[HostLatency("127.0.0.2", 200, 20), HostLatency("127.0.0.3", 0, 0)],
    )
    delays: dict[str, list[float]] = {"127.0.0.1": [], "127.0.0.2": [], "127.0.0.3": []}
    for address, recorded in delays.items():
        host = MetadataHost(scenario, address=address, sleep=recorded.append)
        for _ in range(10):
            host.route("GET", "/monkeys/1.json", {}, b"")
    assert delays["127.0.0.1"] == [0.05] * 10
    assert all(0.18 <= delay <= 0.22 for delay in delays["127.0.0.2"])
    assert len(set(delays["127.0.0.2"])) > 1
    assert delays["127.0.0.3"] == []


def test_a_host_at_its_capacity_answers_429_without_retry_after() -> None:
    scenario = Scenario.from_dict(
        scenario_dict(nft("monkeys"), metadata_capacity=1, metadata_latency_ms=1)
    )
    entered, leave = threading.Event(), threading.Event()

    def held(_seconds: float) -> None:  # the first request stays in flight until told
        entered.set()
        assert leave.wait(10)

    host = MetadataHost(scenario, sleep=held)
    path = f"/{scenario.contracts[0].name}/1.json"
    first = threading.Thread(target=host.route, args=("GET", path, {}, b""))
    first.start()
    assert entered.wait(10)
    second = host.route("GET", path, {}, b"")
    leave.set()
    first.join(10)
    assert second.status == 429
    assert host.refused == 1
    assert host.route("GET", path, {}, b"").status != 429  # capacity free again


def test_metadata_capacity_must_not_be_negative() -> None:
    with pytest.raises(ScenarioError, match="metadata_capacity"):
        Scenario.from_dict(scenario_dict(nft("monkeys"), metadata_capacity=-1))
