"""Read-only calls to a Stacks node (`POST /v2/contracts/call-read`), errors per section 4.4."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import urllib3

from shared import clarity
from shared.deadline import check_deadline
from shared.errors import (
    RetryableJobError,
    SmartContractClarityError,
    StacksNodeHttpError,
    StacksNodeJsonParseError,
)


class StacksNodeClient:
    """One client per process, shared by its threads; keeps up to `connections` keep-alive
    connections to the node (urllib3 directly: a node call is hot, requests' per-call
    environment and hook handling is not free)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, connections: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        # A read-only call is idempotent: a connection refused, or reset before the answer
        # (a keep-alive connection the node closed meanwhile), is tried once more at once.
        retries = urllib3.Retry(
            total=1, connect=1, read=1, status=0, redirect=0, other=0, allowed_methods=None
        )
        self._http = urllib3.PoolManager(num_pools=4, maxsize=connections, retries=retries)

    def call_read_only(
        self, contract_id: str, function: str, args: Sequence[clarity.ClarityValue] = ()
    ) -> clarity.ClarityValue:
        """Call a read-only function; return its decoded Clarity value."""
        check_deadline(f"calling {function}")
        address, name = contract_id.split(".", 1)
        url = f"{self.base_url}/v2/contracts/call-read/{address}/{name}/{function}"
        body = {"sender": address, "arguments": [clarity.to_hex(arg) for arg in args]}
        payload = self._post_json(url, body)
        if payload.get("okay") is True and isinstance(payload.get("result"), str):
            try:
                return clarity.from_hex(payload["result"])
            except clarity.ClarityDecodeError as exc:
                raise StacksNodeJsonParseError(f"{url}: undecodable result: {exc}") from exc
        cause = str(payload.get("cause", ""))
        if cause.startswith("Runtime") or "NoSuchContract" in cause:
            raise RetryableJobError(f"{contract_id}::{function} failed on the node: {cause}")
        raise SmartContractClarityError(f"{contract_id}::{function} failed: {cause}")

    def read_string(
        self, contract_id: str, function: str, args: Sequence[clarity.ClarityValue] = ()
    ) -> str | None:
        """A string getter: `(ok (some "..."))`, `none` reads as absent."""
        value = unwrap(self.call_read_only(contract_id, function, args))
        if isinstance(value, clarity.OptionalNone):
            return None
        if isinstance(value, clarity.StringAscii | clarity.StringUtf8):
            return value.value
        raise SmartContractClarityError(
            f"{contract_id}::{function} returned {type(value).__name__}, expected a string"
        )

    def read_uint(
        self, contract_id: str, function: str, args: Sequence[clarity.ClarityValue] = ()
    ) -> int:
        """A uint getter: `(ok uN)`; anything else is the contract's fault."""
        value = unwrap(self.call_read_only(contract_id, function, args))
        if isinstance(value, clarity.UInt):
            return value.value
        raise SmartContractClarityError(
            f"{contract_id}::{function} returned {type(value).__name__}, expected a uint"
        )

    def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.request(
                "POST",
                url,
                body=json.dumps(body).encode(),
                headers=_JSON_HEADERS,
                timeout=self.timeout_s,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise StacksNodeHttpError(f"{url}: {exc}") from exc
        if response.status >= 400:
            text = response.data[:200].decode("utf-8", "replace")
            raise StacksNodeHttpError(f"{url}: HTTP {response.status}: {text}")
        try:
            payload = json.loads(response.data)
        except ValueError as exc:
            raise StacksNodeJsonParseError(f"{url}: body is not JSON") from exc
        if not isinstance(payload, dict):
            raise StacksNodeJsonParseError(f"{url}: body is not a JSON object")
        return payload

    def close(self) -> None:
        self._http.clear()


_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def unwrap(value: clarity.ClarityValue) -> clarity.ClarityValue:
    """Strip `(ok ...)` and `(some ...)` wrappers, as the reference does."""
    while isinstance(value, clarity.ResponseOk | clarity.OptionalSome):
        value = value.value
    return value
