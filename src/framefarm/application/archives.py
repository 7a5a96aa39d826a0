"""A project's files uploaded as one archive (ZIP, or tar, plain or compressed): a code
template's source tree, mostly. Read member by member, never unpacked on disk.

Bounded and refused with the member's name: more than ``MAX_FILES`` files or
``MAX_BYTES`` unpacked, a name that escapes the project (absolute, ``..``) or that
:func:`asset_name` refuses, and links, devices and other special files. Folders a
project never needs (``node_modules``, ``.git``, build outputs) and hidden files
(``.gitignore``) are passed over, and one
folder holding everything (``card/package.json``...) is taken as the project's root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from typing import IO

from framefarm import errors
from framefarm.application.projects import InvalidAssetName, Upload, asset_name

MAX_FILES = 5000
MAX_BYTES = 500 * 1024**2  # unpacked, all members together
SKIPPED = {"node_modules", ".git", ".cache", "out", "build", "dist", "__MACOSX"}


class ArchiveError(errors.DocumentError):
    """An archive that cannot be unpacked into a project (the client's mistake: 422)."""


@dataclasses.dataclass(frozen=True)
class _Member:
    name: str
    size: int  # as the archive declares it (each read is counted too)
    open: Callable[[], IO[bytes] | None] | None  # None: not a regular file


class _Bounded(io.RawIOBase):
    """A member's stream, opened when first read, that refuses to give more than the
    archive's budget left."""

    def __init__(self, member: _Member, budget: list[int]) -> None:
        self.member, self.budget, self.name = member, budget, member.name
        self.inner: IO[bytes] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.inner is None:
            assert self.member.open is not None
            self.inner = self.member.open() or io.BytesIO()
        data = self.inner.read(len(buffer))
        self.budget[0] -= len(data)
        if self.budget[0] < 0:
            raise ArchiveError(f"the archive unpacks to more than {MAX_BYTES >> 20} MiB "
                               f"(at {self.name})")
        buffer[:len(data)] = data
        return len(data)


@contextlib.contextmanager
def uploads(stream: IO[bytes], *, folder: str | None = None) -> Iterator[list[Upload]]:
    """The archive's files as uploads (names checked, each stream bounded), open while
    the ``with`` block lasts."""
    with _members(stream) as members:
        files = [m for m in members if not _skipped(m.name)]
        if len(files) > MAX_FILES:
            raise ArchiveError(f"the archive holds {len(files)} files; at most {MAX_FILES}")
        special = [m.name for m in files if m.open is None]
        if special:
            raise ArchiveError(f"the archive holds links or special files, which a project "
                               f"cannot have: {', '.join(special[:10])}")
        if not files:
            raise ArchiveError("the archive holds no files")
        if sum(m.size for m in files) > MAX_BYTES:  # before anything is stored
            raise ArchiveError(f"the archive unpacks to more than {MAX_BYTES >> 20} MiB")
        root = _common_root([m.name for m in files])
        budget = [MAX_BYTES]
        found = []
        for member in files:
            assert member.open is not None
            name = member.name[len(root):] if root else member.name
            try:
                checked = asset_name(f"{folder}/{name}" if folder else name)
            except InvalidAssetName as exc:
                raise ArchiveError(f"in the archive: {exc}") from None
            found.append(Upload(checked, io.BufferedReader(_Bounded(member, budget))))
        yield found


@contextlib.contextmanager
def _members(stream: IO[bytes]) -> Iterator[list[_Member]]:
    head = stream.read(4)
    stream.seek(0)
    if head.startswith(b"PK"):
        try:
            archive = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as exc:
            raise ArchiveError(f"not a readable ZIP archive: {exc}") from None
        with archive:
            yield [_zip_member(archive, info) for info in archive.infolist()
                   if not info.is_dir()]
        return
    try:
        tar = tarfile.open(fileobj=stream, mode="r:*")  # noqa: SIM115 (closed just below)
    except tarfile.TarError:
        raise ArchiveError("not a ZIP or tar archive (.zip, .tar, .tar.gz, .tgz, "
                           ".tar.bz2, .tar.xz)") from None
    with tar:
        try:
            infos = [info for info in tar.getmembers() if not info.isdir()]
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(f"the tar archive is damaged: {exc}") from None
        yield [_Member(_clean(info.name), info.size,
                       functools.partial(tar.extractfile, info) if info.isreg() else None)
               for info in infos]


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    mode = info.external_attr >> 16
    regular = stat.S_IFMT(mode) in (0, stat.S_IFREG)  # no type bits: a plain file
    return _Member(_clean(info.filename), info.file_size,
                   functools.partial(archive.open, info) if regular else None)


def _clean(name: str) -> str:
    """The member's name as a relative path; absolute names and '..' are refused."""
    name = name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
        raise ArchiveError(f"the archive's member {name!r} points outside the project")
    return "/".join(parts)


def _skipped(name: str) -> bool:
    """Folders a project never needs, and hidden files (.gitignore, .DS_Store...)."""
    return any(part in SKIPPED for part in name.split("/")[:-1]) or \
        posixpath.basename(name).startswith(".")


def _common_root(names: list[str]) -> str:
    """``card/`` when every file is inside one folder ``card`` (an archive made of a
    project's folder), else nothing."""
    firsts = {name.split("/", 1)[0] for name in names}
    if len(firsts) == 1 and all("/" in name for name in names):
        return f"{firsts.pop()}/"
    return ""
