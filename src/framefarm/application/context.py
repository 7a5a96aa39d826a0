"""What every part of the application shares: settings, the database, the queue, storage,
the server's secrets and its counters."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from framefarm.application.metrics import Counters
from framefarm.application.queue import Queue
from framefarm.db.database import Database
from framefarm.settings import Settings
from framefarm.storage.local import Storage


@dataclasses.dataclass
class Context:
    settings: Settings
    db: Database
    queue: Queue
    storage: Storage
    secret_key: bytes
    enrolment_token: str
    counters: Counters

    @property
    def work_dir(self) -> Path:
        return self.settings.data_dir.resolve() / "work"

    def now(self) -> dt.datetime:
        return self.db.now()


def blob_key(sha256: str) -> str:
    """Where an asset's content lives in storage (content-addressed)."""
    return f"assets/{sha256}"


@dataclasses.dataclass(frozen=True)
class Download:
    """How to hand a stored object to a caller: a presigned URL to redirect to (S3 answers
    Range requests itself), else a local file to send."""

    url: str | None
    path: Path | None
    media_type: str | None = None
    filename: str | None = None


def download(ctx: Context, key: str, media_type: str | None = None,
             filename: str | None = None) -> Download:
    url = ctx.storage.presigned_get(key, ctx.settings.signed_url_seconds, media_type, filename)
    if url is not None:
        return Download(url, None, media_type, filename)
    return Download(None, ctx.storage.local_path(key), media_type, filename)
