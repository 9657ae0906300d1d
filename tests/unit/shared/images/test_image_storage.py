"""Image storage backends: a local directory (atomic writes, no way out of it) and an
S3-compatible bucket (moto's in-process S3: no network)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.config import ConfigError, Settings
from shared.images.storage import (
    IMAGE_CACHE_CONTROL,
    InvalidImageKey,
    LocalStorage,
    S3Storage,
    build_storage,
    check_key,
    public_url,
)

KEY = "SP2X0TZ59D5SZ8ACQ6YMCHHNR2ZN51Z32E2CJ173.my-nft/42.png"
PNG_BYTES = b"\x89PNG\r\n\x1a\nnot really"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="token-images")
        yield client


def test_local_store_writes_files_atomically_and_replaces_them(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "images")
    storage.put(KEY, PNG_BYTES)
    storage.put(KEY, b"second version")
    path = storage.find(KEY)
    assert path == tmp_path / "images" / KEY
    assert path.read_bytes() == b"second version"
    assert os.listdir(path.parent) == ["42.png"]  # no temporary file left behind


def test_a_failed_local_write_leaves_neither_a_file_nor_a_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path)

    def failing_replace(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        storage.put(KEY, PNG_BYTES)
    assert storage.find(KEY) is None
    assert list((tmp_path / KEY).parent.iterdir()) == []


@pytest.mark.parametrize(
    "key",
    [
        "../secret.png",
        "a/../../secret.png",
        "/etc/passwd",
        "a//b.png",
        ".hidden/x.png",
        "a/.tmp123.tmp",
        "a/b.png/",
        "",
        "a\\..\\b.png",
        "a/b c.png",
        "a/%2e%2e/b.png",
        "x" * 2000,
    ],
)
def test_keys_that_could_leave_the_store_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidImageKey):
        check_key(key)
    with pytest.raises(InvalidImageKey):
        LocalStorage(tmp_path).put(key, PNG_BYTES)
    assert LocalStorage(tmp_path).find(key) is None


def test_a_symlink_out_of_the_local_store_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "1.png").write_bytes(b"private")
    root = tmp_path / "images"
    root.mkdir()
    (root / "link").symlink_to(outside)
    storage = LocalStorage(root)
    assert storage.find("link/1.png") is None
    with pytest.raises(InvalidImageKey):
        storage.put("link/2.png", PNG_BYTES)


def test_public_urls_use_the_cdn_base_path_or_the_api_route(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert public_url(storage, KEY, None) == f"/metadata/v1/images/{KEY}"
    assert public_url(storage, KEY, "https://cdn.example/img/") == f"https://cdn.example/img/{KEY}"
    assert public_url(storage, KEY, "https://cdn.example/img") == f"https://cdn.example/img/{KEY}"


def test_s3_store_uploads_a_png_under_the_prefix(s3: Any) -> None:
    storage = S3Storage("token-images", "cache", client=s3)
    storage.put(KEY, PNG_BYTES)
    stored = s3.get_object(Bucket="token-images", Key=f"cache/{KEY}")
    assert stored["Body"].read() == PNG_BYTES
    assert stored["ContentType"] == "image/png"
    assert stored["CacheControl"] == IMAGE_CACHE_CONTROL
    assert storage.url(KEY) == f"https://token-images.s3.amazonaws.com/cache/{KEY}"
    with pytest.raises(InvalidImageKey):
        storage.put("../escape.png", PNG_BYTES)


def test_s3_store_built_from_settings_talks_to_its_endpoint(s3: Any) -> None:
    settings = replace(
        Settings(),
        image_cache_storage="s3",
        image_cache_s3_bucket="token-images",
        image_cache_s3_prefix="images/",
        image_cache_s3_endpoint_url="https://minio.internal:9000",
    )
    storage = build_storage(settings)
    assert isinstance(storage, S3Storage)
    assert storage.client.meta.endpoint_url == "https://minio.internal:9000"
    assert storage.url(KEY) == f"https://minio.internal:9000/token-images/images/{KEY}"
    assert public_url(storage, KEY, "https://cdn.example/") == f"https://cdn.example/{KEY}"


def test_s3_store_built_from_settings_uploads(s3: Any) -> None:
    settings = replace(Settings(), image_cache_storage="s3", image_cache_s3_bucket="token-images")
    build_storage(settings).put(KEY, PNG_BYTES)
    assert s3.get_object(Bucket="token-images", Key=KEY)["Body"].read() == PNG_BYTES


def test_s3_store_needs_a_bucket() -> None:
    with pytest.raises(ConfigError, match="IMAGE_CACHE_S3_BUCKET"):
        build_storage(replace(Settings(), image_cache_storage="s3"))


def test_local_store_is_the_default(tmp_path: Path) -> None:
    storage = build_storage(replace(Settings(), image_cache_local_dir=str(tmp_path)))
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path.resolve()
