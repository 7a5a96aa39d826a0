"""One storage suite, run against local storage and against S3 (moto's S3 server on
loopback, a real HTTP endpoint speaking the S3 protocol)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from framefarm.storage.local import LocalStorage, Storage, StorageError, TooLarge
from framefarm.storage.s3 import S3Storage


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Storage(f"bucket-{tmp_path.name.lower().replace('_', '-')[-40:]}",
                     cache_dir=tmp_path / "cache", endpoint_url=endpoint,
                     access_key_id="test", secret_access_key="test", create_bucket=True)


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
