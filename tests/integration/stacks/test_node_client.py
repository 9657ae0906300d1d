"""The node client against the simulated node on loopback: values and error classes
(docs/token-processing.md#errors)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.processes import free_port

from devnet.scenario import Scenario, fungible_token, nft_collection
from devnet.server import Devnet
from shared.clarity import UInt
from shared.errors import (
    RetryableJobError,
    SmartContractClarityError,
    StacksNodeHttpError,
    StacksNodeJsonParseError,
)
from shared.stacks.node import StacksNodeClient

MONKEYS = nft_collection("monkeys", 3, 2)
BROKEN = nft_collection("broken", 3, 2, clarity_error=True)
COIN = fungible_token("coin", 2, symbol="COIN", decimals=0, total_supply=0)


@pytest.fixture(scope="module")
def node() -> Iterator[StacksNodeClient]:
    with Devnet(Scenario.build([MONKEYS, BROKEN, COIN])) as net:
        client = StacksNodeClient(net.node_url, timeout_s=5)
        yield client
        client.close()


def test_reads_uint_and_string_getters(node: StacksNodeClient) -> None:
    assert node.read_uint(MONKEYS.contract_id, "get-last-token-id") == 3
    uri = node.read_string(MONKEYS.contract_id, "get-token-uri", [UInt(1)])
    assert uri is not None
    assert uri.endswith("/monkeys/{id}.json")


def test_none_reads_as_absent(node: StacksNodeClient) -> None:
    assert node.read_string(MONKEYS.contract_id, "get-token-uri", [UInt(99)]) is None


def test_zero_is_a_value_not_absence(node: StacksNodeClient) -> None:
    assert node.read_uint(COIN.contract_id, "get-decimals") == 0
    assert node.read_uint(COIN.contract_id, "get-total-supply") == 0


def test_err_response_is_a_clarity_error(node: StacksNodeClient) -> None:
    with pytest.raises(SmartContractClarityError):
        node.read_uint(BROKEN.contract_id, "get-last-token-id")


def test_wrong_value_type_is_a_clarity_error(node: StacksNodeClient) -> None:
    with pytest.raises(SmartContractClarityError, match="expected a string"):
        node.read_string(COIN.contract_id, "get-decimals")


def test_missing_contract_is_retryable(node: StacksNodeClient) -> None:
    missing = MONKEYS.contract_id.split(".")[0] + ".not-deployed-yet"
    with pytest.raises(RetryableJobError, match="NoSuchContract"):
        node.read_uint(missing, "get-last-token-id")


def test_undefined_function_is_a_clarity_error(node: StacksNodeClient) -> None:
    with pytest.raises(SmartContractClarityError, match="UndefinedFunction"):
        node.read_uint(MONKEYS.contract_id, "get-nothing")


def test_unreachable_node_is_a_node_failure() -> None:
    client = StacksNodeClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(StacksNodeHttpError):
        client.read_uint(MONKEYS.contract_id, "get-last-token-id")


class StubNode:
    """A node on loopback that answers every call with a fixed status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(stub.status)
                self.send_header("Content-Length", str(len(stub.body)))
                self.end_headers()
                self.wfile.write(stub.body)

            def log_message(self, *args: object) -> None:
                pass

        self.status, self.body = status, body
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self) -> StacksNodeClient:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return StacksNodeClient(f"http://127.0.0.1:{self.server.server_port}", timeout_s=2)

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b'{"okay": false, "cause": "Runtime(Foo(Bar))"}', RetryableJobError),
        (200, b'{"okay": false, "cause": "Unchecked(Foo(Bar))"}', SmartContractClarityError),
        (500, b"internal error", StacksNodeHttpError),
        (200, b"not parseable", StacksNodeJsonParseError),
        (200, b'{"okay": true, "result": "0xzz"}', StacksNodeJsonParseError),
    ],
)
def test_node_answers_are_classified(status: int, body: bytes, error: type[Exception]) -> None:
    with StubNode(status, body) as client, pytest.raises(error):
        client.read_uint(MONKEYS.contract_id, "get-last-token-id")
