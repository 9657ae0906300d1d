"""A Devnet whose contracts live on metadata hosts of their own (127.0.0.2, 127.0.0.3), each
with its latency, driven over HTTP on loopback."""

from __future__ import annotations

import errno
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from devnet import server
from devnet.__main__ import announce
from devnet.scenario import Contract, HostLatency, Scenario, nft_collection
from devnet.server import Devnet, LoopbackServer
from shared import clarity
from shared.clarity import UInt

SLOW_MS = 200
FAST = nft_collection("fast-drop", 3, 1, metadata_host="127.0.0.2")
SLOW = nft_collection("slow-drop", 3, 1, metadata_host="127.0.0.3")
MONKEYS = nft_collection("monkeys", 3, 1)
SCENARIO = Scenario.build(
    [FAST, SLOW, MONKEYS],
    metadata_hosts=[HostLatency("127.0.0.2", 0, 0), HostLatency("127.0.0.3", SLOW_MS, 0)],
)
ADDRESSES = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
# Never through a proxy from the environment: every request stays on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def net() -> Iterator[Devnet]:
    with Devnet(SCENARIO) as devnet:
        yield devnet


def fetch(url: str) -> tuple[int, bytes, float]:
    """Status, body and seconds taken of one GET."""
    started = time.monotonic()
    try:
        with OPENER.open(url, timeout=5) as response:
            return response.status, response.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), time.monotonic() - started


def token_uri(net: Devnet, contract: Contract, token_id: int) -> str:
    """The URI the node answers `get-token-uri` with, `{id}` filled in."""
    address, name = contract.contract_id.split(".")
    body = {"sender": address, "arguments": [clarity.to_hex(UInt(token_id))]}
    request = urllib.request.Request(
        f"{net.node_url}/v2/contracts/call-read/{address}/{name}/get-token-uri",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with OPENER.open(request, timeout=5) as response:
        payload: dict[str, Any] = json.load(response)
    value = clarity.from_hex(payload["result"])
    assert isinstance(value, clarity.ResponseOk)
    assert isinstance(value.value, clarity.OptionalSome)
    uri = value.value.value
    assert isinstance(uri, clarity.StringAscii)
    return uri.value.replace("{id}", str(token_id))


def counts(net: Devnet, path: str) -> dict[str, int]:
    return {address: s.request_count(path) for address, s in net.metadata_servers.items()}


def port_is_free(address: str, port: int) -> bool:
    """Whether nothing listens on address:port any more (a listener blocks the bind even with
    SO_REUSEADDR; connections left in TIME_WAIT do not)."""
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((address, port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def test_every_address_has_a_metadata_host_on_the_same_port(net: Devnet) -> None:
    servers = net.metadata_servers
    assert list(servers) == ADDRESSES
    port = servers["127.0.0.1"].server_port
    assert [s.url for s in servers.values()] == [f"http://{a}:{port}" for a in ADDRESSES]
    assert net.metadata_host is servers["127.0.0.1"]
    assert net.metadata_url == f"http://127.0.0.1:{port}"


def test_node_points_each_contract_at_its_own_host(net: Devnet) -> None:
    port = net.metadata_servers["127.0.0.1"].server_port
    assert token_uri(net, FAST, 1) == f"http://127.0.0.2:{port}/fast-drop/1.json"
    assert token_uri(net, SLOW, 2) == f"http://127.0.0.3:{port}/slow-drop/2.json"
    assert token_uri(net, MONKEYS, 3) == f"{net.metadata_url}/monkeys/3.json"


def test_each_document_comes_from_its_host_after_that_hosts_latency(net: Devnet) -> None:
    status, body, fast_s = fetch(token_uri(net, FAST, 1))
    assert status == 200
    document = json.loads(body)
    assert document["name"] == "Fast Drop #1"
    assert document["image"].startswith("http://127.0.0.2:")
    status, body, slow_s = fetch(token_uri(net, SLOW, 1))
    assert (status, json.loads(body)["name"]) == (200, "Slow Drop #1")
    assert fast_s < 0.15
    assert slow_s >= SLOW_MS / 1000
    assert counts(net, "/fast-drop/1.json") == {"127.0.0.1": 0, "127.0.0.2": 1, "127.0.0.3": 0}
    assert counts(net, "/slow-drop/1.json") == {"127.0.0.1": 0, "127.0.0.2": 0, "127.0.0.3": 1}


def test_another_host_does_not_serve_a_contracts_documents(net: Devnet) -> None:
    port = net.metadata_servers["127.0.0.1"].server_port
    assert fetch(f"http://127.0.0.3:{port}/fast-drop/1.json")[0] == 404
    assert fetch(f"{net.metadata_url}/fast-drop/1.json")[0] == 404
    assert fetch(f"http://127.0.0.2:{port}/monkeys/1.json")[0] == 404
    assert counts(net, "/fast-drop/1.json")["127.0.0.2"] == 0


def test_deploying_on_an_address_without_a_host_is_refused(net: Devnet) -> None:
    stray = nft_collection("stray", 1, 2, metadata_host="127.0.0.4")
    with pytest.raises(ValueError, match=r"no metadata host runs on 127\.0\.0\.4"):
        net.deploy(stray)
    assert net.scenario is SCENARIO
    late = nft_collection("late-drop", 1, 2, metadata_host="127.0.0.3")
    net.deploy(late)
    assert fetch(token_uri(net, late, 1))[0] == 200


def test_stop_releases_every_address() -> None:
    with Devnet(SCENARIO) as net:
        port = net.metadata_servers["127.0.0.1"].server_port
        assert fetch(f"http://127.0.0.3:{port}/slow-drop/1.json")[0] == 200
        assert not port_is_free("127.0.0.3", port)
    assert net.metadata_servers == {}
    assert all(port_is_free(address, port) for address in ADDRESSES)


def test_a_failed_bind_releases_the_ports_already_bound() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.3", 0))
        taken.listen()
        port = taken.getsockname()[1]
        net = Devnet(SCENARIO, metadata_port=port)
        with pytest.raises(OSError, match="in use") as failure:
            net.start()
        # The traceback keeps the failed start's frames, and any server they bound, alive:
        # the ports must be free because start() closed them, not because they were collected.
        assert failure.tb is not None
        assert (net.node, net.metadata_host, net.metadata_servers) == (None, None, {})
        assert port_is_free("127.0.0.1", port)
        assert port_is_free("127.0.0.2", port)


def test_port_zero_moves_every_host_to_a_new_port_when_one_address_holds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[str] = []
    bound: list[LoopbackServer] = []

    class FirstPortTaken(LoopbackServer):
        """Fails like a bind on a port another program holds, for 127.0.0.3's first try."""

        def __init__(self, *args: Any, address: str = "127.0.0.1", **kwargs: Any) -> None:
            tried.append(address)
            if tried.count("127.0.0.3") == 1 and address == "127.0.0.3":
                raise OSError(errno.EADDRINUSE, "Address already in use")
            super().__init__(*args, address=address, **kwargs)
            bound.append(self)

    monkeypatch.setattr(server, "LoopbackServer", FirstPortTaken)
    with Devnet(SCENARIO) as net:
        assert tried == [*ADDRESSES, *ADDRESSES, "127.0.0.1"]  # two tries, then the node
        first_try = bound[:2]
        assert all(s.socket.fileno() == -1 for s in first_try)  # closed, not left bound
        assert list(net.metadata_servers) == ADDRESSES
        assert fetch(token_uri(net, SLOW, 1))[0] == 200


def test_serve_announces_each_extra_host_with_its_latency(
    net: Devnet, capsys: pytest.CaptureFixture[str]
) -> None:
    announce(net)
    lines = capsys.readouterr().out.splitlines()
    port = net.metadata_servers["127.0.0.1"].server_port
    assert lines[0] == f"stacks node rpc: {net.node_url}  metadata host: {net.metadata_url}"
    assert lines[1:3] == [
        f"metadata host: http://127.0.0.2:{port}  latency 0+-0 ms",
        f"metadata host: http://127.0.0.3:{port}  latency {SLOW_MS}+-0 ms",
    ]
    assert len(lines) == 3 + len(SCENARIO.token_contracts)
