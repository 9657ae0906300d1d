"""Simulated metadata hosts: deterministic SIP-016 documents and images for scenario contracts,
with per-contract misbehaviour (404, 500, HTML, oversized, slow...) and per-request latency."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from devnet.node import LoopbackServer, Response, json_response, text_response
from devnet.scenario import FT, SFT, Contract, Scenario

DEFAULT_METADATA_PORT = 8999
HUGE_DOCUMENT_BYTES = 1_200_000  # above both 1 MB and 1 MiB, the usual size limits
# A valid 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
_ID = r"(?P<id>[0-9]{1,39})"
Route = tuple[re.Pattern[str], Contract]


def document_routes(scenario: Scenario) -> list[Route]:
    """One path pattern per contract whose token URI points at this host."""
    routes = []
    for contract in scenario.contracts:
        template = contract.metadata_path()
        if template is None or contract.failed:
            continue
        pattern = re.escape(template).replace(re.escape("{id}"), _ID)
        routes.append((re.compile(pattern), contract))
    return routes


def traits(contract: Contract, token_id: int) -> list[dict[str, Any]]:
    """Three or four attributes picked from the collection's pools by hashing the token id."""
    pools = contract.collection.traits[: 3 + token_id % 2]
    chosen = []
    for trait, values in pools:
        digest = hashlib.sha256(f"{contract.contract_id}/{trait}/{token_id}".encode()).digest()
        chosen.append({"trait_type": trait, "value": values[digest[0] % len(values)]})
    return chosen


def token_document(contract: Contract, token_id: int | None, base_url: str) -> dict[str, Any]:
    """The SIP-016 document for one token (`token_id` None for a fungible token)."""
    collection = contract.collection
    folder = f"{base_url}/{contract.name}"
    external_url = collection.external_url or folder
    if contract.kind == FT and contract.ft is not None:
        return {
            "sip": 16,
            "name": contract.ft.name,
            "description": collection.description,
            "image": f"{folder}/ft.png",
            "properties": {
                "symbol": contract.ft.symbol,
                "decimals": contract.ft.decimals,
                "total_supply": str(contract.ft.total_supply),
                "external_url": external_url,
            },
        }
    number = token_id or 0
    properties: dict[str, Any] = {"collection": collection.title, "id": number}
    sft = next((t for t in contract.sft_tokens if t.token_id == number), None)
    if contract.kind == SFT and sft is not None:
        properties |= {"decimals": sft.decimals, "total_supply": str(sft.total_supply)}
    return {
        "sip": 16,
        "name": f"{collection.title} #{number}",
        "description": collection.description,
        "image": f"{folder}/{number}.png",
        "attributes": traits(contract, number),
        "properties": properties | {"external_url": external_url},
    }


def _huge(document: dict[str, Any]) -> Response:
    padding = "x" * HUGE_DOCUMENT_BYTES
    return json_response(document | {"description": padding})


_BEHAVIOURS: dict[str, Callable[[dict[str, Any]], Response]] = {
    "ok": json_response,
    "slow": json_response,
    "not-found": lambda doc: text_response("Not Found", 404),
    "server-error": lambda doc: text_response("Internal Server Error", 500),
    "html": lambda doc: Response(
        200, b"<!doctype html><html><body>Hello</body></html>", "text/html"
    ),
    "empty": lambda doc: Response(200, b""),
    "array": lambda doc: json_response([doc]),
    "no-name": lambda doc: json_response({k: v for k, v in doc.items() if k != "name"}),
    "huge": _huge,
}


class MetadataHost(LoopbackServer):
    """Serves `/<contract>/<id>.json` (or the contract's own template path) and `/<...>.png`."""

    def __init__(
        self, scenario: Scenario, *, port: int = 0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        super().__init__(port)
        self._sleep = sleep
        self._request_numbers = itertools.count()
        self._numbers_lock = threading.Lock()
        self.scenario = scenario

    @property
    def scenario(self) -> Scenario:
        return self._state[0]

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        names = {c.name: c for c in scenario.contracts if not c.failed}
        self._state = (scenario, document_routes(scenario), names)  # swapped in one assignment

    def route(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        self._sleep(self.latency_s())
        _, routes, names = self._state
        if method != "GET":
            return text_response("Method Not Allowed", 405)
        if path.endswith(".png") and path.count("/") == 2 and path.split("/")[1] in names:
            return Response(200, PNG, "image/png")
        for pattern, contract in routes:
            match = pattern.fullmatch(path)
            if match is not None:
                return self._document(contract, match.groupdict().get("id"))
        return text_response("Not Found", 404)

    def _document(self, contract: Contract, raw_id: str | None) -> Response:
        token_id = int(raw_id) if raw_id is not None else None
        if token_id is not None and not contract.has_token(token_id):
            return text_response("Not Found", 404)
        if contract.behaviour == "slow":
            self._sleep(contract.delay_ms / 1000)
        document = token_document(contract, token_id, self.url)
        return _BEHAVIOURS[contract.behaviour](document)

    def latency_s(self) -> float:
        """`metadata_latency_ms` plus a deterministic jitter in +-`metadata_jitter_ms`."""
        scenario = self.scenario
        if not scenario.metadata_latency_ms and not scenario.metadata_jitter_ms:
            return 0.0
        with self._numbers_lock:
            number = next(self._request_numbers)
        spread = 2 * scenario.metadata_jitter_ms + 1
        digest = hashlib.sha256(str(number).encode()).digest()
        offset = int.from_bytes(digest[:4], "big") % spread - scenario.metadata_jitter_ms
        return max(0, scenario.metadata_latency_ms + offset) / 1000


def document_bytes(contract: Contract, token_id: int | None, base_url: str) -> bytes:
    """The exact body an `ok` contract's document is served with (handy for assertions)."""
    return json.dumps(token_document(contract, token_id, base_url)).encode()
