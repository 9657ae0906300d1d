"""`GET /changes`: the change feed, in pages of entries after a consumer's last id
(docs/change-feed.md#the-feed)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from api.caching import json_answer, to_response
from api.db import get_raw_reads
from api.schemas.changes import (
    PRUNED,
    ChangesPageSchema,
    ChangesPrunedSchema,
    ChangesQuerySchema,
    pruned_body,
)
from shared.reads.changes import ChangesPruned, read_changes

_BAD_REQUEST: dict[str, Any] = {"error_status_code": 400}


def register(blp: Blueprint) -> None:
    @blp.route("/changes")
    @blp.arguments(ChangesQuerySchema(), location="query", **_BAD_REQUEST)
    @blp.response(200, ChangesPageSchema, description="Entries after `after`, in id order")
    @blp.alt_response(410, schema=ChangesPrunedSchema, description=PRUNED)
    @blp.doc(
        operationId="getChanges",
        summary="Changes",
        description="What changed in the index (tokens added, metadata stored, owners, "
        "supplies, re-orgs), in commit order: page with `after` set to `next_after`.",
    )
    def get_changes(args: dict[str, Any]) -> Response:
        page = read_changes(
            get_raw_reads(), args["after"], args["limit"], args.get("contract"), args.get("kind")
        )
        if isinstance(page, ChangesPruned):
            return to_response(json_answer(pruned_body(page), 410))
        return to_response(json_answer({"results": page.results, "next_after": page.next_after}))
