"""One storage suite, run against local storage and against S3 (moto's S3 server on
loopback, a real HTTP endpoint speaking the S3 protocol)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from framefarm.storage.local import (
    InvalidUpload,
    LocalStorage,
    Storage,
    StorageError,
    TooLarge,
)
from framefarm.storage.s3 import S3Storage

MIB = 1024**2


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    return s3_storage(request.getfixturevalue("s3_endpoint"), tmp_path)


def s3_storage(endpoint: str, tmp_path: Path, **options: Any) -> S3Storage:
    """A fresh bucket per test; parts of S3's smallest size, so multipart is cheap to test."""
    return S3Storage(f"bucket-{tmp_path.name.lower().replace('_', '-')[-40:]}",
                     cache_dir=tmp_path / "cache", endpoint_url=endpoint,
                     access_key_id="test", secret_access_key="test", create_bucket=True,
                     part_size=5 * MIB, **options)


def test_put_stream_reports_size_and_sha(storage: Storage) -> None:
    body = b"frame" * 1000
    size, sha = storage.put_stream("assets/x", io.BytesIO(body), max_bytes=10_000)
    assert (size, sha) == (len(body), hashlib.sha256(body).hexdigest())
    assert storage.exists("assets/x")
    assert storage.size("assets/x") == len(body)
    assert storage.local_path("assets/x").read_bytes() == body


def test_put_stream_over_the_limit_stores_nothing(storage: Storage) -> None:
    with pytest.raises(TooLarge):
        storage.put_stream("assets/big", io.BytesIO(b"x" * 2000), max_bytes=1000)
    assert not storage.exists("assets/big")


def test_put_file_delete_and_missing(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "part.mp4"
    source.write_bytes(b"\x00\x01" * 4096)
    assert storage.put_file("jobs/j/part0000.mp4", source) == 8192
    assert storage.local_path("jobs/j/part0000.mp4").read_bytes() == source.read_bytes()
    storage.delete("jobs/j/part0000.mp4")
    assert not storage.exists("jobs/j/part0000.mp4")
    with pytest.raises(StorageError):
        storage.local_path("jobs/j/part0000.mp4")
    storage.delete("jobs/j/never-there")  # deleting nothing is fine


def test_rename_moves_the_object(storage: Storage) -> None:
    storage.put_stream("uploads/1", io.BytesIO(b"abc"), max_bytes=10)
    storage.rename("uploads/1", "assets/abc")
    assert not storage.exists("uploads/1")
    assert storage.local_path("assets/abc").read_bytes() == b"abc"


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/../b", "", ".hidden"])
def test_hostile_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put_stream(key, io.BytesIO(b"x"), max_bytes=10)


def test_check_writable(storage: Storage) -> None:
    storage.check_writable()
    assert not storage.exists("health/probe")


def test_presigned_urls(storage: Storage) -> None:
    """S3 hands out URLs a node can use without credentials; local storage has none (the
    API serves and receives the files itself)."""
    put = storage.presigned_put("jobs/j/out.mp4", 60)
    get = storage.presigned_get("jobs/j/out.mp4", 60)
    if isinstance(storage, LocalStorage):
        assert put is None and get is None
        return
    assert put is not None and get is not None
    assert httpx.put(put, content=b"rendered").status_code == 200
    assert storage.exists("jobs/j/out.mp4")
    response = httpx.get(get, headers={"Range": "bytes=0-3"})
    assert response.status_code == 206 and response.content == b"rend"
    assert "X-Amz-Signature=" in get and "X-Amz-Expires=60" in get


def _put_parts(urls: list[str], body: bytes, part_size: int) -> list[str]:
    etags = []
    for i, url in enumerate(urls):
        response = httpx.put(url, content=body[i * part_size:(i + 1) * part_size])
        assert response.status_code == 200, response.text
        etags.append(response.headers["ETag"])
    return etags


def test_multipart_upload_by_presigned_parts(storage: Storage) -> None:
    """A large file goes up in parts, each to its own URL, without credentials; nothing is
    visible under the key until the parts are joined. Local storage has no such thing (a
    node streams the file to the API)."""
    body = os.urandom(11 * MIB + 123)
    upload = storage.presigned_multipart("jobs/j/big.mp4", len(body), 60)
    if isinstance(storage, LocalStorage):
        assert upload is None
        with pytest.raises(InvalidUpload):
            storage.complete_multipart("jobs/j/big.mp4", "x", ["e"], 1)
        return
    assert upload is not None
    assert upload.part_size == 5 * MIB and len(upload.urls) == 3
    assert all("X-Amz-Signature=" in url and "uploadId=" in url for url in upload.urls)
    etags = _put_parts(upload.urls, body, upload.part_size)
    assert not storage.exists("jobs/j/big.mp4")
    storage.complete_multipart("jobs/j/big.mp4", upload.upload_id, etags, len(body))
    assert storage.local_path("jobs/j/big.mp4").read_bytes() == body


def test_small_files_get_one_put_not_multipart(storage: Storage) -> None:
    assert storage.presigned_multipart("jobs/j/small.mp4", 5 * MIB, 60) is None


def test_a_bad_multipart_completion_leaves_nothing(s3_endpoint: str, tmp_path: Path) -> None:
    """Wrong ETags, or parts that do not add up to the size the node declared, are refused
    and leave no object."""
    storage = s3_storage(s3_endpoint, tmp_path)
    body = os.urandom(6 * MIB)
    upload = storage.presigned_multipart("jobs/j/bad.mp4", len(body), 60)
    assert upload is not None and len(upload.urls) == 2
    etags = _put_parts(upload.urls, body, upload.part_size)
    with pytest.raises(InvalidUpload, match="InvalidPart"):
        storage.complete_multipart("jobs/j/bad.mp4", upload.upload_id,
                                   [etags[0], '"0123456789abcdef0123456789abcdef"'], len(body))
    assert not storage.exists("jobs/j/bad.mp4")
    with pytest.raises(InvalidUpload, match="not 7340032"):
        storage.complete_multipart("jobs/j/bad.mp4", upload.upload_id, etags, 7 * MIB)
    assert not storage.exists("jobs/j/bad.mp4")


def test_huge_files_get_larger_parts(s3_endpoint: str, tmp_path: Path) -> None:
    """S3 allows 10,000 parts: past that the parts grow (no bytes are sent here)."""
    storage = s3_storage(s3_endpoint, tmp_path)
    upload = storage.presigned_multipart("jobs/j/huge.mp4", 60 * 1024**3, 60)
    assert upload is not None
    assert len(upload.urls) <= 10_000
    assert upload.part_size * len(upload.urls) >= 60 * 1024**3


def test_presigned_urls_name_the_public_endpoint(s3_endpoint: str, tmp_path: Path) -> None:
    """Nodes and browsers may reach storage by another name than the API does."""
    storage = s3_storage(s3_endpoint, tmp_path, public_endpoint_url="http://files.example:9000")
    get = storage.presigned_get("exports/x.mp4", 60)
    upload = storage.presigned_multipart("jobs/j/big.mp4", 6 * MIB, 60)
    assert get is not None and get.startswith("http://files.example:9000/")
    assert upload is not None and all(u.startswith("http://files.example:9000/")
                                      for u in upload.urls)


def test_a_new_bucket_clears_abandoned_uploads(s3_endpoint: str, tmp_path: Path) -> None:
    storage = s3_storage(s3_endpoint, tmp_path)
    rules = storage.client.get_bucket_lifecycle_configuration(Bucket=storage.bucket)["Rules"]
    assert [(r["Status"], r["AbortIncompleteMultipartUpload"]) for r in rules] == [
        ("Enabled", {"DaysAfterInitiation": 1})]
