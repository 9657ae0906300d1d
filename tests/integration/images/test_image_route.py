"""The API serves a local image cache's PNGs under /metadata/v1/images/, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from integration.images.images_support import png

from api.app import create_app
from api.db import close_db
from shared.config import Settings
from shared.images.storage import LocalStorage

KEY = "SP2X0TZ59D5SZ8ACQ6YMCHHNR2ZN51Z32E2CJ173.my-nft/7.png"


def serving(settings: Settings) -> Iterator[FlaskClient]:
    app: Flask = create_app(settings)
    yield app.test_client()
    close_db(app)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def client(image_settings: Settings, image_dir: Path) -> Iterator[FlaskClient]:
    yield from serving(replace(image_settings, image_cache_local_dir=str(image_dir)))


def test_a_cached_png_is_served_with_safe_and_long_lived_headers(
    client: FlaskClient, image_dir: Path
) -> None:
    body = png(30, 20)
    LocalStorage(image_dir).put(KEY, body)
    for prefix in ("/metadata/v1", "/metadata"):
        with client.get(f"{prefix}/images/{KEY}") as response:
            assert response.status_code == 200
            assert response.get_data() == body
            assert response.headers["Content-Type"] == "image/png"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "public, max-age=86400"
            etag = response.headers["ETag"]
    revalidation = {"If-None-Match": etag}
    with client.get(f"/metadata/v1/images/{KEY}", headers=revalidation) as again:
        assert again.status_code == 304
        assert again.get_data() == b""


@pytest.mark.parametrize(
    "path",
    [
        f"/metadata/v1/images/{KEY.replace('7.png', '8.png')}",  # not cached
        "/metadata/v1/images/../../../etc/passwd",
        "/metadata/v1/images/..%2f..%2fsecret.png",
        "/metadata/v1/images/%2e%2e/secret.png",
        "/metadata/v1/images/a/.partial.png.tmp",
        "/metadata/v1/images/",
    ],
)
def test_anything_but_a_cached_file_is_a_404(
    client: FlaskClient, image_dir: Path, tmp_path: Path, path: str
) -> None:
    (tmp_path / "secret.png").write_bytes(b"not for the public")
    (image_dir / "a").mkdir(parents=True)
    (image_dir / "a" / ".partial.png.tmp").write_bytes(b"half written")
    with client.get(path) as response:
        assert response.status_code == 404
        assert response.is_json
        assert b"not for the public" not in response.get_data()


def test_nothing_is_served_when_images_are_stored_in_a_bucket(
    image_settings: Settings, image_dir: Path
) -> None:
    LocalStorage(image_dir).put(KEY, png(4, 4))
    settings = replace(
        image_settings,
        image_cache_local_dir=str(image_dir),
        image_cache_storage="s3",
        image_cache_s3_bucket="token-images",
    )
    for client in serving(settings):
        with client.get(f"/metadata/v1/images/{KEY}") as response:
            assert response.status_code == 404


def test_the_image_route_is_not_in_the_openapi_document(client: FlaskClient) -> None:
    document = client.get("/metadata/v1/openapi.json").get_json()
    assert not [path for path in document["paths"] if "images" in path]
    assert [tag["name"] for tag in document["tags"]] == [
        "Tokens",
        "Marketplace",
        "Changes",
        "Status",
    ]
