"""Builders and runners for the image cache tests."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_metadata, add_token

from shared.db import session_scope
from shared.images.jobs import ImageOutcome, queue_due_image_jobs, schedule_image_jobs
from shared.images.processing import ImageCacher
from shared.models import ImageJob, Metadata


def png(width: int = 600, height: int = 400, color: tuple[int, int, int] = (0, 128, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims `width` x `height` pixels: a bomb."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class ImageToken:
    principal: str
    token_id: int
    metadata_ids: dict[str | None, int]  # by locale

    @property
    def metadata_id(self) -> int:
        return next(iter(self.metadata_ids.values()))


def add_image_token(
    sessions: sessionmaker[Session],
    images: dict[str | None, str | None],
    schedule: bool = True,
) -> ImageToken:
    """A processed NFT with one metadata row per locale (the first is the default)."""
    with session_scope(sessions) as s:
        contract = add_contract(s)
        token = add_token(s, contract)
        ids = {}
        for index, (locale, image) in enumerate(images.items()):
            ids[locale] = add_metadata(
                s, token, name=f"Token {locale}", locale=locale, default=index == 0, image=image
            )
        if schedule:
            schedule_image_jobs(s, token.id)
        return ImageToken(contract.principal, token.id, ids)


def image_job(sessions: sessionmaker[Session], metadata_id: int) -> ImageJob:
    with session_scope(sessions) as s:
        return s.scalars(select(ImageJob).where(ImageJob.metadata_id == metadata_id)).one()


def metadata_row(sessions: sessionmaker[Session], metadata_id: int) -> Metadata:
    with session_scope(sessions) as s:
        return s.scalars(select(Metadata).where(Metadata.id == metadata_id)).one()


def run_due(cacher: ImageCacher) -> list[ImageOutcome | None]:
    """What dispatch_jobs and the image task do together, in-process."""
    with session_scope(cacher.sessions) as s:
        due = queue_due_image_jobs(s, 100)
    return [cacher.run(job_id) for job_id in due]
