"""Why an image could not be cached. Never a token error: the metadata stays.

See docs/reference-differences.md#image-failures.
"""

from __future__ import annotations

from shared.errors import InvalidReason


class ImageError(Exception):
    """An image that could not be cached; `permanent` ones are not worth fetching again."""

    reason: InvalidReason = InvalidReason.IMAGE_PARSE_FAILED
    permanent: bool = False


class ImageParseError(ImageError):
    """Corrupt or truncated bytes (a gateway may have cut the transfer: retried)."""


class ImageUnsupportedError(ImageError):
    """Not a PNG, JPEG, GIF or WebP image (SVG included), or a `data:` URI of another type."""

    permanent = True


class ImageTooLargeError(ImageError):
    """More bytes than IMAGE_CACHE_MAX_BYTE_SIZE or more pixels than IMAGE_CACHE_MAX_PIXELS."""

    reason = InvalidReason.IMAGE_SIZE_EXCEEDED
    permanent = True


class ImageTimeoutError(ImageError):
    reason = InvalidReason.IMAGE_TIMEOUT


class ImageHttpError(ImageError):
    reason = InvalidReason.IMAGE_HTTP_ERROR
