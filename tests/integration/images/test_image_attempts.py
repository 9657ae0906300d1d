"""Image downloads in the token's fetch history (docs/fetch-history.md): an image that caches
is `ok` with its answer, a corrupt one a `parse_error` with the image reason, and a retry says
so."""

from __future__ import annotations

from integration.images.images_support import add_image_token, png, run_due
from sqlalchemy import text, update
from support.http_server import Reply, ScriptedServer

from shared.db import session_scope
from shared.models import ImageJob, Job


def attempts(sessions, token_id: int) -> list[dict[str, object]]:
    with session_scope(sessions) as s:
        rows = s.execute(
            text("SELECT * FROM fetch_attempts WHERE token_id = :t ORDER BY id DESC"),
            {"t": token_id},
        )
        return [dict(r._mapping) for r in rows]


def test_an_image_download_is_an_attempt_with_the_token_jobs_trigger(
    cacher, sessions, host: ScriptedServer
) -> None:
    image = png()
    url = host.route("/ok.png", Reply(200, image, {"Content-Type": "image/png"}))
    token = add_image_token(sessions, {None: url})
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.token_id == token.token_id).values(trigger="mint"))
    run_due(cacher)
    [attempt] = attempts(sessions, token.token_id)
    assert (attempt["kind"], attempt["outcome"], attempt["trigger"]) == ("image", "ok", "mint")
    assert (attempt["url"], attempt["http_status"], attempt["bytes"]) == (url, 200, len(image))


def test_a_corrupt_image_is_a_parse_error_and_its_retry_says_so(
    cacher, sessions, host: ScriptedServer
) -> None:
    whole = png(300, 300)
    url = host.route("/bad.png", Reply(200, whole[: len(whole) // 2]))
    token = add_image_token(sessions, {None: url})
    run_due(cacher)
    with session_scope(sessions) as s:  # its back-off over
        s.execute(update(ImageJob).values(retry_after=None))
    run_due(cacher)
    newest, first = attempts(sessions, token.token_id)
    assert (first["outcome"], first["reason_code"], first["trigger"]) == (
        "parse_error",
        106,
        "import",
    )
    assert (newest["outcome"], newest["trigger"]) == ("parse_error", "retry")
