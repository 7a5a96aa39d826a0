"""The client against ``framefarm serve`` on S3 storage (moto's S3 server on loopback):
asset and video downloads are redirects to presigned URLs, followed without the API key."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import framefarm
from support.documents import small_output
from support.media import write_photo
from support.server import Server

pytestmark = pytest.mark.ffmpeg


class Recording(httpx.HTTPTransport):
    """The real transport, noting every request's origin and whether it carried a key."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, bool]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((f"{request.url.host}:{request.url.port}",
                          "authorization" in request.headers))
        return super().handle_request(request)


def test_downloads_from_s3_follow_presigned_urls_without_the_key(
        servers: Callable[..., Server], s3_endpoint: str, tmp_path: Path) -> None:
    server = servers(tmp_path / "data", workers=1, storage_backend="s3",
                     s3_endpoint_url=s3_endpoint, s3_bucket=f"c-{secrets.token_hex(6)}",
                     s3_access_key_id="test", s3_secret_access_key="test",
                     heartbeat_seconds=0.2).start()
    transport = Recording()
    photo = write_photo(tmp_path / "photo.jpg", "#3050c0")
    with framefarm.Client(server.url, server.key, transport=transport) as client:
        project = client.create_project("s3")
        client.upload(project.id, {"media/photo.jpg": photo})
        copy = client.download_asset(project.id, "media/photo.jpg", tmp_path / "copy.jpg")
        job = client.submit({"output": small_output(), "scenes": [
            {"duration": 0.5, "layers": [{"type": "image", "src": "media/photo.jpg"}]}]},
            project_id=project.id)
        done = client.wait(job.id, timeout=120)
        assert done.state == "succeeded" and done.export is not None, done
        video = client.download(done, tmp_path / "out.mp4")
    assert copy.read_bytes() == photo.read_bytes()
    assert video.stat().st_size == done.export.size and video.read_bytes()[4:8] == b"ftyp"
    api = f"127.0.0.1:{server.port}"
    storage = {origin for origin, _ in transport.seen if origin != api}
    assert storage == {s3_endpoint.removeprefix("http://")}, transport.seen
    assert all(keyed == (origin == api) for origin, keyed in transport.seen), transport.seen
