"""Exports: the finished videos, their signed download links and their auto-delete date."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import time

from framefarm import formats
from framefarm.application.context import Context, Download, download
from framefarm.application.sweeper import Sweeper
from framefarm.records import Export
from framefarm.repos import exports


@dataclasses.dataclass
class Exports:
    ctx: Context
    sweeper: Sweeper = dataclasses.field(init=False)
    """Deletes the storage objects nothing references (superseded parts, unused blobs, old
    snapshot cache entries and previews): ``sweeper.sweep()``."""

    def __post_init__(self) -> None:
        self.sweeper = Sweeper(self.ctx)

    def all(self, tenant_id: str) -> list[Export]:
        with self.ctx.db.read() as conn:
            return exports.list_for(conn, tenant_id)

    def get(self, tenant_id: str | None, export_id: str) -> Export:
        with self.ctx.db.read() as conn:
            return exports.get(conn, export_id, tenant_id)

    def delete(self, tenant_id: str | None, export_id: str) -> Export:
        with self.ctx.db.tx() as conn:
            row = exports.get(conn, export_id, tenant_id)
            exports.delete(conn, export_id)
        self.ctx.storage.delete(row.storage_key)
        return row

    def extend(self, tenant_id: str, export_id: str, days: float) -> Export:
        with self.ctx.db.tx() as conn:
            row = exports.get(conn, export_id, tenant_id)
            exports.set_expiry(conn, export_id, max(row.expires_at, self.ctx.now())
                               + dt.timedelta(days=days))
            return exports.get(conn, export_id, tenant_id)

    def file(self, row: Export) -> Download:
        media = formats.FORMATS[row.format].media_type if row.format in formats.FORMATS \
            else "application/octet-stream"
        return download(self.ctx, row.storage_key, media, f"{row.job_id}.{row.format}")

    def sweep(self) -> int:
        """Delete exports past their auto-delete date, with their files (the storage
        sweeper, :attr:`sweeper`, deletes the rest of what nothing references)."""
        with self.ctx.db.read() as conn:
            due = exports.expired(conn, self.ctx.now())
        for row in due:
            self.delete(None, row.id)
        return len(due)

    # -- signed links -------------------------------------------------------------------------

    def sign(self, export_id: str, expires: int) -> str:
        message = f"{export_id}:{expires}".encode()
        return hmac.new(self.ctx.secret_key, message, hashlib.sha256).hexdigest()

    def signed_url(self, export_id: str, now: float | None = None) -> tuple[str, int]:
        """A short-lived download link that needs no API key (for a browser or a customer)."""
        expires = int((now or time.time()) + self.ctx.settings.signed_url_seconds)
        sig = self.sign(export_id, expires)
        base = self.ctx.settings.public_url.rstrip("/")
        return f"{base}/v1/exports/{export_id}/download?expires={expires}&sig={sig}", expires

    def check_signature(self, export_id: str, expires: int, sig: str,
                        now: float | None = None) -> bool:
        if expires < (now or time.time()):
            return False
        # Bytes, so a signature that is not ASCII is a wrong signature, not a TypeError.
        return hmac.compare_digest(self.sign(export_id, expires).encode(), sig.encode())
