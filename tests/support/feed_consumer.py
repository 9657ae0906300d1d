"""A consumer of `GET /changes` (docs/change-feed.md#consumers): it keeps the latest item of
every token it is told of by reading that token again (`POST /tokens/batch`, 100 at most a
request), and forgets the tokens the API no longer has. The in-process pipeline test drives it
with Flask's test client, the end-to-end test over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask

PREFIX = "/metadata/v1"
BATCH = 100  # what POST /tokens/batch takes at most
Key = tuple[str, str | None]
# (path, query) -> (status, body) and (path, body) -> (status, body)
Get = Callable[[str, Mapping[str, Any]], tuple[int, Any]]
Post = Callable[[str, Any], tuple[int, Any]]


@dataclass(frozen=True)
class Seen:
    """One entry as the consumer received it."""

    id: int
    kind: str
    key: Key
    details: dict[str, Any]


class Consumer:
    """Follows the feed in pages of `limit`; keeps the latest item of every token it was told
    of in `items`, and every entry it received in `seen`, in the order received."""

    def __init__(self, get: Get, post: Post, *, limit: int = 100) -> None:
        self.get = get
        self.post = post
        self.limit = limit
        self.after = 0
        self.items: dict[Key, dict[str, Any]] = {}
        self.seen: list[Seen] = []

    @classmethod
    def in_process(cls, app: Flask, *, limit: int = 100) -> Consumer:
        client = app.test_client()

        def get(path: str, query: Mapping[str, Any]) -> tuple[int, Any]:
            response = client.get(PREFIX + path, query_string=dict(query))
            return response.status_code, response.json

        def post(path: str, body: Any) -> tuple[int, Any]:
            response = client.post(PREFIX + path, json=body)
            return response.status_code, response.json

        return cls(get, post, limit=limit)

    @classmethod
    def over_http(cls, http: requests.Session, base: str, *, limit: int = 100) -> Consumer:
        """`base` the API's root, e.g. http://127.0.0.1:3000 (one session per thread)."""

        def get(path: str, query: Mapping[str, Any]) -> tuple[int, Any]:
            response = http.get(base + PREFIX + path, params=dict(query), timeout=30)
            return response.status_code, response.json()

        def post(path: str, body: Any) -> tuple[int, Any]:
            response = http.post(base + PREFIX + path, json=body, timeout=30)
            return response.status_code, response.json()

        return cls(get, post, limit=limit)

    @property
    def kinds(self) -> list[str]:
        return [entry.kind for entry in self.seen]

    def catch_up(self) -> None:
        """Read pages until one ends at the latest id."""
        while True:
            status, page = self.get("/changes", {"after": self.after, "limit": self.limit})
            assert status == 200, page
            self.apply(page["results"])
            if page["next_after"] == self.after:
                return
            self.after = page["next_after"]

    def apply(self, entries: list[dict[str, Any]]) -> None:
        self.seen += [
            Seen(e["id"], e["kind"], (e["contract_id"], e["token_id"]), e["details"])
            for e in entries
        ]
        keys = list(dict.fromkeys((e["contract_id"], e["token_id"]) for e in entries))
        tokens = [key for key in keys if key[1] is not None]
        for start in range(0, len(tokens), BATCH):
            self.read_again(tokens[start : start + BATCH])

    def read_again(self, tokens: list[Key]) -> None:
        body = {"tokens": [{"contract_id": c, "token_id": t} for c, t in tokens]}
        status, answer = self.post("/tokens/batch", body)
        assert status == 200, answer
        for key, item in zip(tokens, answer["results"], strict=True):
            if "error" in item and "token_type" not in item:
                self.items.pop(key, None)  # gone (a re-org)
            else:
                self.items[key] = item
