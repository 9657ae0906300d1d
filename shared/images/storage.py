"""Where cached images go: a local directory the API serves, or an S3-compatible bucket.

Keys look like `<principal>/<token_number>.png`; they are built by us, but the API also reads
keys from URLs, so every key is checked before it touches a path or an object name.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from shared.config import ConfigError, Settings

# Where the API serves a local store's files (api/resources/images.py).
LOCAL_URL_PREFIX = "/metadata/v1/images/"
# A token's image may change on a refresh under the same key: clients revalidate daily.
IMAGE_MAX_AGE_S = 86400
IMAGE_CACHE_CONTROL = f"public, max-age={IMAGE_MAX_AGE_S}"
PNG = "image/png"
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_MAX_KEY_LENGTH = 1024


class InvalidImageKey(ValueError):
    """A key that could escape the store (`..`, absolute, hidden files) or is malformed."""


def check_key(key: str) -> str:
    """The key itself if it is a plain relative path of safe segments."""
    if len(key) > _MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidImageKey(f"invalid image key {key[:100]!r}")
    return key


class ImageStorage(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store a PNG under `key`, replacing any previous one."""

    def url(self, key: str) -> str:
        """Where the stored PNG can be fetched when no IMAGE_CACHE_CDN_BASE_PATH is set."""


class LocalStorage:
    """Files under one directory; a write never leaves a half-written file in place."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Hidden temporary name: never a valid key, so the API cannot serve it half-written.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def path(self, key: str) -> Path:
        """The file a key names; refuses keys that resolve outside the root (symlinks too)."""
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidImageKey(f"image key {key[:100]!r} leaves the image directory")
        return path

    def find(self, key: str) -> Path | None:
        """The stored file of a key, or None (missing or invalid key)."""
        try:
            path = self.path(key)
        except InvalidImageKey:
            return None
        return path if path.is_file() else None

    def url(self, key: str) -> str:
        return LOCAL_URL_PREFIX + check_key(key)


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, MinIO, R2, GCS interoperability ...)."""

    def __init__(
        self,
        bucket: str,
        prefix: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = _with_slash(prefix) if prefix else ""
        self.endpoint_url = endpoint_url
        if client is None:
            import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints

            # Credentials and region come from boto3's usual chain (env, profile, role).
            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.client = client

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=data,
            ContentType=PNG,
            CacheControl=IMAGE_CACHE_CONTROL,
        )

    def url(self, key: str) -> str:
        if self.endpoint_url:
            return f"{_with_slash(self.endpoint_url)}{self.bucket}/{self.object_key(key)}"
        return f"https://{self.bucket}.s3.amazonaws.com/{self.object_key(key)}"


def build_storage(settings: Settings) -> ImageStorage:
    """The store IMAGE_CACHE_STORAGE names."""
    if settings.image_cache_storage == "s3":
        if not settings.image_cache_s3_bucket:
            raise ConfigError("IMAGE_CACHE_S3_BUCKET must be set when IMAGE_CACHE_STORAGE=s3")
        return S3Storage(
            settings.image_cache_s3_bucket,
            settings.image_cache_s3_prefix,
            settings.image_cache_s3_endpoint_url,
        )
    return LocalStorage(settings.image_cache_local_dir)


def public_url(storage: ImageStorage, key: str, cdn_base_path: str | None) -> str:
    """IMAGE_CACHE_CDN_BASE_PATH + key when set (it maps to the store's root), else the
    store's own URL."""
    if cdn_base_path:
        return _with_slash(cdn_base_path) + check_key(key)
    return storage.url(key)


def _with_slash(text: str) -> str:
    return text if text.endswith("/") else text + "/"
