"""S3-compatible storage (AWS S3, MinIO, ...) behind the same protocol as local storage.

Nodes never get credentials: the API hands them presigned URLs to fetch inputs and to
upload outputs. Uploads from the API use boto3's managed transfer, which switches to
multipart upload for large files; an object appears only when its upload completes, so a
half-written export is never visible.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from framefarm.storage.local import StorageError, TooLarge, check_key

_CHUNK = 1024 * 1024


class S3Storage:
    def __init__(self, bucket: str, *, cache_dir: Path, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, prefix: str = "",
                 create_bucket: bool = False) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.cache_dir = cache_dir.resolve()
        self.client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            config=Config(signature_version="s3v4", retries={"max_attempts": 3},
                          s3={"addressing_style": "path"}))
        if create_bucket:
            try:
                self.client.head_bucket(Bucket=bucket)
            except ClientError:
                self.client.create_bucket(Bucket=bucket)

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _fail(self, what: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"cannot {what} {key}: {exc}")

    def put_file(self, key: str, source: Path) -> int:
        try:
            self.client.upload_file(str(source), self.bucket, self._key(key))
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._fail("write", key, exc) from exc
        return source.stat().st_size

    def put_stream(self, key: str, stream: IO[bytes], max_bytes: int) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.cache_dir, prefix=".upload-") as spool:
            while block := stream.read(_CHUNK):
                size += len(block)
                if size > max_bytes:
                    raise TooLarge(f"larger than the limit of {max_bytes} bytes")
                digest.update(block)
                spool.write(block)
            spool.flush()
            self.put_file(key, Path(spool.name))
        return size, digest.hexdigest()

    def local_path(self, key: str) -> Path:
        """A local copy (downloaded once into the cache; objects are never rewritten in
        place, except previews, which are fetched every time)."""
        target = self.cache_dir / "objects" / check_key(key)
        if target.is_file() and not key.startswith("previews/"):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        try:
            self.client.download_file(self.bucket, self._key(key), str(tmp))
        except ClientError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"no object {key}") from exc
        except (BotoCoreError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise self._fail("read", key, exc) from exc
        tmp.replace(target)
        return target

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError:
            return False
        except BotoCoreError as exc:
            raise self._fail("read", key, exc) from exc
        return True

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"no object {key}") from exc
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("delete", key, exc) from exc
        (self.cache_dir / "objects" / check_key(key)).unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> None:
        try:
            self.client.copy_object(Bucket=self.bucket, Key=self._key(new),
                                    CopySource={"Bucket": self.bucket, "Key": self._key(old)})
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("copy", old, exc) from exc
        self.delete(old)

    def check_writable(self) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key("health/probe"), Body=b"ok")
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("write", "health/probe", exc) from exc
        self.delete("health/probe")

    def presigned_get(self, key: str, seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=seconds)
        return url

    def presigned_put(self, key: str, seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=seconds)
        return url
