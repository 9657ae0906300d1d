"""Server-Sent Events of the change log: one event per entry, and what a subscriber asked for.

An event is `id:` the entry's id and `data:` the entry as GET /changes serves it, encoded
once for all the subscribers it goes to. A heartbeat is a comment line, which clients ignore
but which keeps proxies from closing an idle connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

HEARTBEAT = b": heartbeat\n\n"


def event(entry: Mapping[str, Any]) -> bytes:
    """One entry as an event; its JSON has no line break, so it is one `data:` line."""
    return b"id: %d\ndata: %s\n\n" % (entry["id"], orjson.dumps(entry))


@dataclass(frozen=True)
class Filters:
    """The `contract` and `kind` filters of a subscriber; None lets every value through."""

    contracts: frozenset[str] | None = None
    kinds: frozenset[str] | None = None

    @classmethod
    def of(cls, contracts: Iterable[str] | None, kinds: Iterable[str] | None) -> Filters:
        return cls(frozenset(contracts) if contracts else None, frozenset(kinds) if kinds else None)

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return (self.contracts is None or entry["contract_id"] in self.contracts) and (
            self.kinds is None or entry["kind"] in self.kinds
        )


EVERYTHING = Filters()
