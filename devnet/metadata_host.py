"""Simulated metadata hosts: deterministic SIP-016 documents and images for scenario contracts,
with per-contract misbehaviour (404, 500, HTML, oversized, slow...) and per-request latency."""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from devnet.node import Response, json_response, text_response
from devnet.scenario import (
    DEFAULT_METADATA_ADDRESS,
    FT,
    SFT,
    Contract,
    FungibleToken,
    Scenario,
)

DEFAULT_METADATA_PORT = 8999
HUGE_DOCUMENT_BYTES = 1_200_000  # above both 1 MB and 1 MiB, the usual size limits
# A valid 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000"
    "000d49444154789c6360606060000000050001a5f645400000000049454e44ae426082"
)
DEFAULT_TRAITS = (
    ("Background", ("Orange", "Teal", "Midnight", "Sand", "Bitcoin Gold")),
    ("Body", ("Classic", "Zombie", "Robot", "Gold", "Ghost")),
    ("Eyes", ("Laser", "Sleepy", "Wink", "3D Glasses", "Visor")),
    ("Accessory", ("None", "Chain", "Earring", "Stacks Pin")),
)


@functools.cache
def png(size_px: int) -> bytes:
    """A square PNG: the 1x1 placeholder, or a gradient with noise (compresses like a picture,
    not like a flat colour) for image-cache work that resembles real token art."""
    if size_px == 1:
        return PNG
    base = Image.linear_gradient("L").resize((size_px, size_px))
    noise = Image.effect_noise((size_px, size_px), 40)
    picture = Image.merge("RGB", (base, noise, base.transpose(Image.Transpose.ROTATE_90)))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


_ID = r"(?P<id>[0-9]{1,39})"
Route = tuple[re.Pattern[str], Contract]


def served_contracts(scenario: Scenario, address: str) -> list[Contract]:
    """The deployed contracts whose documents the metadata host on `address` serves."""
    return [c for c in scenario.contracts if c.metadata_address == address and not c.failed]


def document_routes(
    scenario: Scenario, address: str = DEFAULT_METADATA_ADDRESS
) -> dict[str, list[Route]]:
    """Path patterns of the contracts whose token URI points at the host on `address`, by first
    segment (`*` when that segment holds the id), so a lookup does not scan every contract."""
    routes: dict[str, list[Route]] = {}
    for contract in served_contracts(scenario, address):
        template = contract.metadata_path()
        if template is None:
            continue
        pattern = re.escape(template).replace(re.escape("{id}"), _ID)
        first = template.split("/")[1] if template.count("/") > 1 else "*"
        key = "*" if "{id}" in first else first
        routes.setdefault(key, []).append((re.compile(pattern), contract))
    return routes


def traits(contract: Contract, token_id: int) -> list[dict[str, Any]]:
    """Three or four attributes picked from the collection's pools by hashing the token id."""
    pools = (contract.collection.traits or DEFAULT_TRAITS)[: 3 + token_id % 2]
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
        return _ft_document(contract.ft, collection.description, folder, external_url)
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


def _ft_document(
    token: FungibleToken, description: str, folder: str, external_url: str
) -> dict[str, Any]:
    """SIP-016 asks FT documents to repeat the on-chain decimals in `properties`."""
    properties = {"symbol": token.symbol, "decimals": token.decimals}
    properties |= {"total_supply": str(token.total_supply), "external_url": external_url}
    return {
        "sip": 16,
        "name": token.name,
        "description": description,
        "image": f"{folder}/ft.png",
        "properties": properties,
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


class MetadataHost:
    """The metadata host on one loopback `address`: serves `/<contract>/<id>.json` (or the
    contract's own template path) and `/<...>.png` for the contracts whose `metadata_address`
    is this one, after that address's latency; documents link to images on whatever host name
    the client used."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        address: str = DEFAULT_METADATA_ADDRESS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.address = address
        self._sleep = sleep
        self._request_numbers = itertools.count()
        self._numbers_lock = threading.Lock()
        self._busy_lock = threading.Lock()
        self._busy = 0  # requests being answered now
        self.refused = 0  # requests answered 429 for being one too many
        self.scenario = scenario

    @property
    def scenario(self) -> Scenario:
        return self._state[0]

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        names = {c.name: c for c in served_contracts(scenario, self.address)}
        routes = document_routes(scenario, self.address)
        latency = scenario.latency_for(self.address)
        self._state = (scenario, routes, names, latency)  # swapped in one assignment

    def route(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        capacity = self.scenario.metadata_capacity
        with self._busy_lock:
            if capacity and self._busy >= capacity:
                self.refused += 1
                return text_response("Too Many Requests", 429)
            self._busy += 1
        try:
            return self._answer(method, path, headers)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _answer(self, method: str, path: str, headers: Mapping[str, str]) -> Response:
        delay = self.latency_s()
        if delay:
            self._sleep(delay)
        _, routes, names, _ = self._state
        if method != "GET":
            return text_response("Method Not Allowed", 405)
        if path.endswith(".png") and path.count("/") == 2 and path.split("/")[1] in names:
            return Response(200, png(self.scenario.image_size_px), "image/png")
        first = path.split("/")[1] if path.count("/") > 1 else "*"
        candidates = routes.get(first, []) if first != "*" else []
        for pattern, contract in [*candidates, *routes.get("*", [])]:
            match = pattern.fullmatch(path)
            if match is not None:
                base_url = f"http://{headers.get('host') or self.address}"
                return self._document(contract, match.groupdict().get("id"), base_url)
        return text_response("Not Found", 404)

    def _document(self, contract: Contract, raw_id: str | None, base_url: str) -> Response:
        token_id = int(raw_id) if raw_id is not None else None
        if token_id is not None and contract.kind != FT and not contract.has_token(token_id):
            return text_response("Not Found", 404)
        if contract.behaviour == "slow":
            self._sleep(contract.delay_ms / 1000)
        document = token_document(contract, token_id, base_url)
        return _BEHAVIOURS[contract.behaviour](document)

    def latency_s(self) -> float:
        """This address's latency (`Scenario.latency_for`) plus a deterministic jitter in
        +-its jitter, in seconds."""
        latency_ms, jitter_ms = self._state[3]
        if not latency_ms and not jitter_ms:
            return 0.0
        with self._numbers_lock:
            number = next(self._request_numbers)
        spread = 2 * jitter_ms + 1
        digest = hashlib.sha256(str(number).encode()).digest()
        offset = int.from_bytes(digest[:4], "big") % spread - jitter_ms
        return max(0, latency_ms + offset) / 1000
