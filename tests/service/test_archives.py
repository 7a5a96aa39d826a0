"""A project's files uploaded as one archive (a code template's source tree): ZIP and
tar.gz unpacked into assets under their paths, one enclosing folder taken as the root,
node_modules passed over; links, escapes, too many files, too many bytes and what is not
an archive refused with the member's name, storing nothing."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from framefarm.application import archives
from support.api import assert_error, bearer
from support.farm import Farm

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"
FILES = {"package.json": b'{"name": "card"}', "package-lock.json": b"{}",
         "src/index.ts": b"registerRoot(Root);", "src/Card.tsx": b"export const Card = 1;",
         "public/badge.png": b"\x89PNG not really"}


def make_zip(members: dict[str, bytes], *, prefix: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(prefix + name, data)
    return out.getvalue()


def make_tar(members: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def project(farm: Farm, key: str) -> str:
    response = farm.client.post("/v1/projects", json={"name": "code"}, headers=bearer(key))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def send(farm: Farm, key: str, project_id: str, archive: bytes,
         name: str = "card.zip") -> httpx.Response:
    return farm.client.post(f"/v1/projects/{project_id}/archive", headers=bearer(key),
                            files={"archive": (name, archive, "application/octet-stream")})


def names(farm: Farm, key: str, project_id: str) -> dict[str, bytes]:
    listed = farm.client.get(f"/v1/projects/{project_id}/assets", headers=bearer(key)).json()
    return {a["name"]: farm.client.get(f"/v1/projects/{project_id}/assets/{a['name']}",
                                       headers=bearer(key)).content for a in listed}


def test_a_zip_of_a_project_folder_becomes_its_files(farm: Farm) -> None:
    key = farm.tenant("code")
    pid = project(farm, key)
    members = {**FILES, "node_modules/remotion/index.js": b"skipped", ".DS_Store": b"x"}
    response = send(farm, key, pid, make_zip(members, prefix="card/"))
    assert response.status_code == 201, response.text
    assert names(farm, key, pid) == FILES  # 'card/' is the root; node_modules passed over


def test_a_tar_gz_unpacks_too_and_the_real_example_round_trips(farm: Farm) -> None:
    key = farm.tenant("code")
    pid = project(farm, key)
    real = {str(n): (EXAMPLE / n).read_bytes() for n in
            sorted(p.relative_to(EXAMPLE) for p in EXAMPLE.rglob("*")
                   if p.is_file() and "node_modules" not in p.parts)}
    response = send(farm, key, pid, make_tar(real), name="card.tar.gz")
    assert response.status_code == 201, response.text
    assert names(farm, key, pid) == {n: d for n, d in real.items() if not n.startswith(".")}


@pytest.mark.parametrize(("archive", "words"), [
    (lambda: make_tar(FILES, links={"src/secret.ts": "/etc/passwd"}),
     ["links or special files", "src/secret.ts"]),
    (lambda: make_zip({**FILES, "../escape.ts": b"x"}), ["../escape.ts", "outside"]),
    (lambda: make_tar({**FILES, "/etc/cron.d/x": b"x"}), ["/etc/cron.d/x", "outside"]),
    (lambda: make_zip({"a/b/c/d/e/f.ts": b"x"}), ["too deep"]),
    (lambda: b"this is not an archive at all", ["not a ZIP or tar archive"]),
    (lambda: make_zip({}), ["no files"]),
], ids=["symlink", "dotdot", "absolute", "deep", "not-an-archive", "empty"])
def test_unusable_archives_are_refused_storing_nothing(farm: Farm, archive, words) -> None:
    key = farm.tenant("code")
    pid = project(farm, key)
    body = assert_error(send(farm, key, pid, archive()), 422)
    text = body["message"] + " ".join(body.get("details") or [])
    for word in words:
        assert word in text, body
    assert names(farm, key, pid) == {}


def test_too_many_files_or_bytes_are_refused_before_anything_is_stored(
        farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    key = farm.tenant("code")
    pid = project(farm, key)
    monkeypatch.setattr(archives, "MAX_FILES", 3)
    body = assert_error(send(farm, key, pid, make_zip(FILES)), 422)
    assert "5 files; at most 3" in body["message"]
    monkeypatch.setattr(archives, "MAX_FILES", 5000)
    monkeypatch.setattr(archives, "MAX_BYTES", 40)
    body = assert_error(send(farm, key, pid, make_zip(FILES)), 422)
    assert "unpacks to more than" in body["message"]
    assert names(farm, key, pid) == {}
