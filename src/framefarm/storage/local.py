"""Storage: a small protocol for assets, chunk parts and exports, and its local-directory
implementation (the default of ``framefarm serve``).

Keys are ours (``assets/<sha256>``, ``jobs/<job>/part0003.mp4``, ``exports/<job>.mp4``),
never user input, but are checked anyway. Writes are atomic: a temporary name in the same
folder, then a rename, so a half-written file is never visible under its key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, Protocol

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$")
_CHUNK = 1024 * 1024


class StorageError(Exception):
    """Storage refused an operation (missing key, disk full, permissions)."""


class TooLarge(StorageError):
    """An upload is larger than allowed."""


class InvalidUpload(StorageError):
    """A multipart upload cannot be completed as described (wrong parts, unknown id)."""


@dataclass(frozen=True)
class MultipartUpload:
    """Where a node sends a large file: part i (from 0) is bytes
    [i * part_size, (i + 1) * part_size) of it, PUT to ``urls[i]``."""

    upload_id: str
    part_size: int
    urls: list[str]


class StoredObject(NamedTuple):
    """One object as a listing shows it: its key, its size and when it was last written
    (aware UTC, the storage's own clock)."""

    key: str
    size: int
    modified: dt.datetime


class Storage(Protocol):
    def put_file(self, key: str, source: Path) -> int: ...

    def put_stream(self, key: str, stream: IO[bytes], max_bytes: int) -> tuple[int, str]:
        """Store a stream; returns (size, sha256). TooLarge past ``max_bytes``."""

    def local_path(self, key: str) -> Path:
        """A readable local file with the object's bytes."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> None: ...

    def rename(self, old: str, new: str) -> None: ...

    def copy(self, old: str, new: str) -> None:
        """A second object with the same content, copied where it is stored."""

    def check_writable(self) -> None: ...

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix`` (e.g. ``"jobs/"``), in no set
        order; objects still being written are not listed."""

    def presigned_get(self, key: str, seconds: int, media_type: str | None = None,
                      filename: str | None = None) -> str | None:
        """A URL anyone can GET the object from for ``seconds``, if the backend has them;
        answered with this Content-Type and as an attachment named ``filename``."""

    def presigned_put(self, key: str, seconds: int) -> str | None:
        """A URL a node can PUT the object to, if the backend has them."""

    def presigned_multipart(self, key: str, size: int,
                            seconds: int) -> MultipartUpload | None:
        """A multipart upload of ``size`` bytes with one presigned URL per part, if the
        backend has them and the file is large enough to need one."""

    def complete_multipart(self, key: str, upload_id: str, etags: list[str],
                           size: int) -> None:
        """Join the uploaded parts (their ETags in order) into the object, which must then
        hold ``size`` bytes. Until this, nothing is visible under ``key``."""


def copy_bounded(stream: IO[bytes], out: IO[bytes], max_bytes: int) -> tuple[int, str]:
    """Copy ``stream`` to ``out`` as it arrives, refusing it as soon as it passes
    ``max_bytes``; returns its size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    while block := stream.read(_CHUNK):
        size += len(block)
        if size > max_bytes:
            raise TooLarge(f"larger than the limit of {max_bytes} bytes")
        digest.update(block)
        out.write(block)
    return size, digest.hexdigest()


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextmanager
    def _atomic(self, key: str) -> Iterator[IO[bytes]]:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot write {key}: {exc.strerror}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, source: Path) -> int:
        with self._atomic(key) as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, _CHUNK)
        return self.size(key)

    def put_stream(self, key: str, stream: IO[bytes], max_bytes: int) -> tuple[int, str]:
        with self._atomic(key) as out:
            return copy_bounded(stream, out, max_bytes)

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"no object {key}")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self.local_path(key).stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> None:
        target = self._path(new)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(old), target)

    def copy(self, old: str, new: str) -> None:
        with self._atomic(new) as out, self.local_path(old).open("rb") as src:
            shutil.copyfileobj(src, out, _CHUNK)

    def check_writable(self) -> None:
        with self._atomic("health/probe") as out:
            out.write(b"ok")
        self.delete("health/probe")

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        # Walk the folder the prefix names (or the one it ends in), then filter by prefix.
        folder = self.root.joinpath(*prefix.split("/")[:-1])
        if not folder.is_dir():
            return
        for base, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):  # a write in progress (see _atomic)
                    continue
                path = Path(base) / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted meanwhile
                    continue
                yield StoredObject(key, stat.st_size,
                                   dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC))

    def presigned_get(self, key: str, seconds: int, media_type: str | None = None,
                      filename: str | None = None) -> str | None:
        return None  # served by the API itself

    def presigned_put(self, key: str, seconds: int) -> str | None:
        return None

    def presigned_multipart(self, key: str, size: int,
                            seconds: int) -> MultipartUpload | None:
        return None  # nodes stream large files to the API instead

    def complete_multipart(self, key: str, upload_id: str, etags: list[str],
                           size: int) -> None:
        raise InvalidUpload("local storage has no multipart uploads")
