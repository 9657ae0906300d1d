"""Read-only calls to a Stacks node (`POST /v2/contracts/call-read`).

How each failure ends a job: docs/token-processing.md#errors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from io import BytesIO
from typing import Any

import pycurl

from shared import clarity
from shared.curl_handles import ThreadHandles, error_parts
from shared.deadline import check_deadline
from shared.errors import (
    RetryableJobError,
    SmartContractClarityError,
    StacksNodeHttpError,
    StacksNodeJsonParseError,
)


class StacksNodeClient:
    """One client per process, shared by its threads, each of which keeps a keep-alive
    connection to the node (libcurl: a node call is hot, see `shared.curl_handles`)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._handles = ThreadHandles(self._configure)

    def _configure(self, handle: pycurl.Curl) -> None:
        handle.setopt(pycurl.HTTPHEADER, _JSON_HEADERS)
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(self.timeout_s * 1000)))

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
        status, data = self._post(url, json.dumps(body).encode())
        if status >= 400:
            text = data[:200].decode("utf-8", "replace")
            raise StacksNodeHttpError(f"{url}: HTTP {status}: {text}")
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise StacksNodeJsonParseError(f"{url}: body is not JSON") from exc
        if not isinstance(payload, dict):
            raise StacksNodeJsonParseError(f"{url}: body is not a JSON object")
        return payload

    def _post(self, url: str, body: bytes) -> tuple[int, bytes]:
        """POST once; a read-only call is idempotent, so a connection that fails (refused,
        or a keep-alive connection the node closed meanwhile) is tried once more at once."""
        handle = self._handles.get()
        for attempt in (1, 2):
            received = BytesIO()
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.POSTFIELDS, body)
            handle.setopt(pycurl.WRITEFUNCTION, received.write)
            try:
                handle.perform()
            except pycurl.error as exc:
                code, message = error_parts(exc)
                if attempt == 1 and code in _RETRIED_ERRORS:
                    continue
                raise StacksNodeHttpError(f"{url}: {message} (curl error {code})") from exc
            return int(handle.getinfo(pycurl.RESPONSE_CODE)), received.getvalue()
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._handles.close()


_JSON_HEADERS = ["Content-Type: application/json", "Accept: application/json"]
# Connection failures worth one immediate retry: refused, reset, or closed before the answer.
_RETRIED_ERRORS = frozenset(
    {pycurl.E_COULDNT_CONNECT, pycurl.E_GOT_NOTHING, pycurl.E_SEND_ERROR, pycurl.E_RECV_ERROR}
)


def unwrap(value: clarity.ClarityValue) -> clarity.ClarityValue:
    """Strip `(ok ...)` and `(some ...)` wrappers: SIP getters answer `(ok (some value))`."""
    while isinstance(value, clarity.ResponseOk | clarity.OptionalSome):
        value = value.value
    return value
