"""A task's output file: described for the completion report, streamed to storage."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx

from framefarm import errors, media
from framefarm.protocol import MediaInfo
from framefarm.worker.retry import TryAgain


def describe(path: Path, ext: str) -> MediaInfo:
    """The export as the API records it, probed here so the API need not download it."""
    try:
        info = media.probe(path)
    except errors.AssetError as exc:  # our own output: a render fault, not the document's
        raise errors.RenderError(f"the assembled output cannot be read: {exc}") from exc
    video = info.video
    return MediaInfo(size=path.stat().st_size,
                     duration=video.duration if video else info.duration,
                     width=video.width if video else 0, height=video.height if video else 0,
                     codec=video.codec if video else "", format=ext)


def chunks(handle: io.BufferedReader, size: int = 1024 * 1024,
           limit: int | None = None) -> Iterator[bytes]:
    left = limit
    while left is None or left > 0:
        block = handle.read(size if left is None else min(size, left))
        if not block:
            break
        if left is not None:
            left -= len(block)
        yield block


def put(url: str, path: Path, offset: int, length: int) -> str:
    """PUT ``length`` bytes of ``path`` from ``offset`` to a presigned URL, streamed (a
    part can be gigabytes); returns the ETag storage gives it."""
    with path.open("rb") as handle, httpx.Client(timeout=600.0) as client:
        handle.seek(offset)
        response = client.put(url, content=chunks(handle, limit=length),
                              headers={"Content-Length": str(length)})
    if response.status_code >= 500:
        raise TryAgain(f"storage answered {response.status_code}")
    response.raise_for_status()
    return str(response.headers.get("ETag", ""))
