"""The change feed's page: entries after a consumer's last id, in id order
(docs/change-feed.md#the-feed).

One statement answers: the pruning horizon, the latest id and the page. Without a contract
filter the page is a range of the primary key from `after`; with one, a range of
(contract_principal, id) per contract, merged. Entries are committed in id order
(docs/change-feed.md#ordering), so an id once seen has no earlier id still to come.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from shared.reads.tokens import RowSource
from shared.sql_params import array_of, joined

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CONTRACTS = 100

_ENTRY_COLUMNS = """c.id, c.at, CAST(c.kind AS text) AS kind, c.contract_principal,
                    CAST(c.token_number AS text) AS token_number, c.block_height, c.details"""
# Compared as the enum: its statistics let the planner keep an index scan.
_KINDS = f"""(CAST(%(kinds)s AS text) IS NULL
              OR c.kind = ANY(CAST({array_of("%(kinds)s", "text")} AS change_kind[])))"""
# The horizon and the latest id come back even when no entry follows `after` (LEFT JOIN on
# one row). Scalar subqueries rather than a join with `changes_horizon`, which has no
# statistics: its default estimate made 1,000-entry pages look costly enough to JIT-compile
# (100 ms).
_HEAD = """
    SELECT (SELECT pruned_through FROM changes_horizon) AS pruned_through,
           (SELECT max(id) FROM changes) AS latest_id, e.*
      FROM (VALUES (1)) AS one (x)
"""
_ALL_SQL = f"""{_HEAD}
      LEFT JOIN LATERAL (
          SELECT {_ENTRY_COLUMNS} FROM changes c
           WHERE c.id > %(after)s AND {_KINDS}
           ORDER BY c.id LIMIT %(limit)s) e ON true
     ORDER BY e.id
"""  # noqa: S608 - composed of constant SQL, values are bound
# Each contract's entries are one range of (contract_principal, id) INCLUDE (kind), read
# from the index alone, at most `limit` long; the first `limit` ids of them all are then
# read from the table.
_BY_CONTRACT_SQL = f"""{_HEAD}
      LEFT JOIN LATERAL (
          SELECT {_ENTRY_COLUMNS}
            FROM (SELECT i.id FROM unnest({array_of("%(contracts)s", "text")}) AS p(principal)
                  CROSS JOIN LATERAL (
                      SELECT c.id FROM changes c
                       WHERE c.contract_principal = p.principal AND c.id > %(after)s AND {_KINDS}
                       ORDER BY c.contract_principal, c.id LIMIT %(limit)s) i
                   ORDER BY i.id LIMIT %(limit)s) i
            JOIN changes c ON c.id = i.id) e ON true
     ORDER BY e.id
"""  # noqa: S608 - composed of constant SQL, values are bound
# The highest id ever written: where a consumer starting "from now" starts. The horizon
# counts too, for a log whose every entry was pruned.
LATEST_ID_SQL = """
    SELECT GREATEST((SELECT max(id) FROM changes),
                    (SELECT pruned_through FROM changes_horizon), 0) AS latest_id
"""


@dataclass(frozen=True)
class ChangesPage:
    results: list[dict[str, Any]]
    next_after: int


@dataclass(frozen=True)
class ChangesPruned:
    """`after` is behind the retention window: entries after it may be gone."""

    pruned_through: int
    latest_id: int


class SessionRows:
    """A RowSource on a SQLAlchemy session's connection (in its transaction): webhook
    deliveries read the feed's page with the same statement as `GET /changes`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def one(self, sql: str, params: Mapping[str, Any]) -> Any:
        return self._session.connection().exec_driver_sql(sql, dict(params)).first()

    def all(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        return list(self._session.connection().exec_driver_sql(sql, dict(params)).all())


def read_changes(
    source: RowSource,
    after: int,
    limit: int,
    contracts: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> ChangesPage | ChangesPruned:
    """Up to `limit` entries with ids above `after`, of these contracts and kinds if given.

    `next_after` is the last result's id on a full page. On a shorter one every entry up to
    the latest id was looked at, so it is the latest id: a filtered consumer moves past
    entries it does not want instead of reading them again (and falling behind the horizon).
    """
    sql, params = changes_statement(after, limit, contracts, kinds)
    return changes_answer(source.all(sql, params), after, limit)


def changes_statement(
    after: int,
    limit: int,
    contracts: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The page's one statement and its parameters, for a caller that runs it itself (the
    live stream runs it on an asynchronous connection)."""
    params = {
        "after": after,
        "limit": limit,
        "contracts": joined(dict.fromkeys(contracts)) if contracts else None,
        "kinds": joined(dict.fromkeys(kinds)) if kinds else None,
    }
    return (_BY_CONTRACT_SQL if contracts else _ALL_SQL), params


def changes_answer(rows: Sequence[Any], after: int, limit: int) -> ChangesPage | ChangesPruned:
    """The page (or the 410's facts) from the rows of `changes_statement`."""
    horizon, latest = int(rows[0].pruned_through), int(rows[0].latest_id or 0)
    if after < horizon:
        return ChangesPruned(horizon, latest)
    results = [change_entry(row) for row in rows if row.id is not None]
    if len(results) == limit:
        return ChangesPage(results, results[-1]["id"])
    return ChangesPage(results, max(after, latest))


def change_entry(row: Any) -> dict[str, Any]:
    """An entry as the feed, the stream and webhook deliveries encode it
    (docs/change-feed.md#entry)."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "kind": row.kind,
        "contract_id": row.contract_principal,
        "token_id": row.token_number,
        "block_height": row.block_height,
        "details": row.details,
    }
