"""Decoding untrusted image bytes: real PNG, JPEG, GIF and WebP made with Pillow here, and the
hostile kinds (bombs, truncated files, SVG with a script, HTML served as an image)."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from shared.images.errors import ImageParseError, ImageTooLargeError, ImageUnsupportedError
from shared.images.render import render_image

LIMIT = 50_000_000


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int) -> Image.Image:
    """Incompressible pixels, so that cutting the file cuts into the image data."""
    pixels = random.Random(7).randbytes(width * height * 3)  # noqa: S311 - test data
    return Image.frombytes("RGB", (width, height), pixels)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny file whose header claims `width` x `height` RGB pixels: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def test_png_is_stored_as_png_and_a_narrow_one_is_never_enlarged() -> None:
    source = encoded(Image.new("RGBA", (120, 80), (10, 200, 30, 128)), "PNG")
    rendered = render_image(source, max_pixels=LIMIT, thumbnail_width=300)
    original, thumbnail = decoded(rendered.original), decoded(rendered.thumbnail)
    assert (original.format, original.size, original.mode) == ("PNG", (120, 80), "RGBA")
    assert thumbnail.size == (120, 80)  # 300 wide was asked: never enlarged
    assert original.getpixel((5, 5)) == (10, 200, 30, 128)


def test_jpeg_becomes_png_with_a_thumbnail_of_the_configured_width() -> None:
    source = encoded(Image.new("RGB", (600, 400), (200, 40, 40)), "JPEG", quality=95)
    rendered = render_image(source, max_pixels=LIMIT, thumbnail_width=300)
    original, thumbnail = decoded(rendered.original), decoded(rendered.thumbnail)
    assert (original.format, original.size) == ("PNG", (600, 400))
    assert (thumbnail.format, thumbnail.size) == ("PNG", (300, 200))
    assert (rendered.thumbnail_width, rendered.thumbnail_height) == (300, 200)
    red, green, blue = thumbnail.getpixel((150, 100))
    assert (red > 180, green < 70, blue < 70) == (True, True, True)


def test_animated_gif_keeps_only_its_first_frame() -> None:
    frames = [Image.new("RGB", (400, 200), color) for color in ((255, 0, 0), (0, 0, 255))]
    source = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(source)).n_frames == 2
    rendered = render_image(source, max_pixels=LIMIT, thumbnail_width=300)
    original = decoded(rendered.original)
    assert getattr(original, "n_frames", 1) == 1
    assert original.convert("RGB").getpixel((10, 10)) == (255, 0, 0)
    assert decoded(rendered.thumbnail).size == (300, 150)


def test_animated_webp_keeps_its_first_frame() -> None:
    frames = [Image.new("RGB", (64, 32), color) for color in ((0, 255, 0), (255, 0, 0))]
    source = encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    rendered = render_image(source, max_pixels=LIMIT, thumbnail_width=300)
    original = decoded(rendered.original)
    assert original.size == (64, 32)
    assert original.convert("RGB").getpixel((5, 5)) == (0, 255, 0)


def test_transparent_palette_image_keeps_its_transparency() -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([255, 255, 255, 0, 0, 0])
    source = encoded(image, "PNG", transparency=0)
    original = decoded(render_image(source, max_pixels=LIMIT, thumbnail_width=300).original)
    assert original.mode == "RGBA"
    assert original.getpixel((1, 1))[3] == 0


def test_exif_orientation_is_applied_before_the_orientation_is_lost() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    source = encoded(Image.new("RGB", (60, 20), (0, 0, 0)), "JPEG", exif=exif)
    rendered = render_image(source, max_pixels=LIMIT, thumbnail_width=300)
    assert decoded(rendered.original).size == (20, 60)


def test_bomb_declaring_huge_dimensions_is_refused_before_any_pixel_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def decoding(*_args: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoding)
    bomb = png_declaring(100_000, 100_000)
    assert len(bomb) < 200
    with pytest.raises(ImageTooLargeError):
        render_image(bomb, max_pixels=LIMIT, thumbnail_width=300)


LOGGED_ONLY = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


@pytest.mark.parametrize(
    "side",
    [
        pytest.param(40, id="just-over-raised"),  # Pillow warns; pytest makes it an error
        pytest.param(40, id="just-over-logged", marks=LOGGED_ONLY),  # as in production
        pytest.param(100, id="far-over"),  # Pillow's own DecompressionBombError
    ],
)
def test_an_image_over_the_pixel_limit_is_refused(side: int) -> None:
    source = encoded(Image.new("RGB", (side, side)), "PNG")
    with pytest.raises(ImageTooLargeError):
        render_image(source, max_pixels=1000, thumbnail_width=300)
    assert render_image(source, max_pixels=side * side, thumbnail_width=300).width == side


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF"])
def test_truncated_file_fails_instead_of_being_half_decoded(fmt: str) -> None:
    image = noise(200, 200)
    whole = encoded(image if fmt != "GIF" else image.convert("P"), fmt)
    render_image(whole, max_pixels=LIMIT, thumbnail_width=300)  # the whole file is fine
    with pytest.raises(ImageParseError):
        render_image(whole[: len(whole) // 2], max_pixels=LIMIT, thumbnail_width=300)


def test_svg_with_a_script_is_refused_and_nothing_is_rendered() -> None:
    svg = (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>"
    )
    with pytest.raises(ImageUnsupportedError, match="SVG"):
        render_image(svg, max_pixels=LIMIT, thumbnail_width=300)


def test_an_html_page_served_as_an_image_is_refused() -> None:
    page = b"<!DOCTYPE html><html><body>Just a moment... (bot check)</body></html>"
    with pytest.raises(ImageUnsupportedError, match="not an image"):
        render_image(page, max_pixels=LIMIT, thumbnail_width=300)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_formats_other_than_png_jpeg_gif_and_webp_are_never_decoded(fmt: str) -> None:
    source = encoded(Image.new("RGB", (16, 16)), fmt)
    with pytest.raises(ImageUnsupportedError):
        render_image(source, max_pixels=LIMIT, thumbnail_width=300)


def test_random_bytes_are_not_an_image() -> None:
    with pytest.raises(ImageUnsupportedError):
        render_image(b"\x00\x01binary junk" * 50, max_pixels=LIMIT, thumbnail_width=300)


def test_corrupt_header_or_pixel_data_of_a_supported_format_is_a_parse_error() -> None:
    signature, ihdr = b"\x89PNG\r\n\x1a\n", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    with pytest.raises(ImageParseError, match="header"):
        render_image(signature + png_chunk(b"IHDR", ihdr[:5]), max_pixels=LIMIT, thumbnail_width=9)
    garbage = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"not zlib") + png_chunk(b"IEND", b"")
    with pytest.raises(ImageParseError, match="corrupt"):
        render_image(signature + garbage, max_pixels=LIMIT, thumbnail_width=9)
