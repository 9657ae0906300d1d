"""An image cached records `image_cached` with the URLs the API now serves, in the transaction
that stores them (docs/change-feed.md#kinds)."""

from __future__ import annotations

from integration.images.images_support import add_image_token, png, run_due
from support.changes import logged
from support.http_server import Reply, ScriptedServer

from shared.images.processing import ImageCacher
from shared.models import JobStatus


def test_a_cached_image_records_image_cached(
    cacher: ImageCacher, sessions, host: ScriptedServer
) -> None:
    url = host.route("/1.png", Reply(200, png(600, 400), {"Content-Type": "image/png"}))
    missing = host.route("/2.png", Reply(404, b"gone"))
    token = add_image_token(sessions, {None: url, "fr": missing})
    outcomes = run_due(cacher)
    assert sorted(o.status for o in outcomes if o) == [JobStatus.DONE, JobStatus.PENDING]
    (cached,) = logged(sessions)
    assert cached.key == ("image_cached", token.principal, 1)
    key = f"/metadata/v1/images/{token.principal}/1"
    assert cached.details == {
        "locale": None,
        "cached_image": f"{key}.png",
        "cached_thumbnail_image": f"{key}-thumb.png",
    }
