"""S3-compatible storage (AWS S3, MinIO, ...) behind the same protocol as local storage.

Nodes never get credentials: the API hands them presigned URLs to fetch inputs and to
upload outputs. Uploads from the API use boto3's managed transfer, which switches to
multipart upload for large files; an object appears only when its upload completes, so a
half-written export is never visible. Nodes upload large outputs the same way, part by part
to presigned URLs; a bucket this class creates gets a lifecycle rule that clears uploads a
node abandoned.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from framefarm.storage.local import (
    InvalidUpload,
    MultipartUpload,
    StorageError,
    StoredObject,
    check_key,
    copy_bounded,
)

_MIN_PART = 5 * 1024**2  # S3's smallest part (but the last)
_MAX_PARTS = 10_000  # S3's most parts in one upload


class S3Storage:
    def __init__(self, bucket: str, *, cache_dir: Path, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, prefix: str = "",
                 create_bucket: bool = False, public_endpoint_url: str | None = None,
                 part_size: int = 64 * 1024**2) -> None:
        if part_size < _MIN_PART:
            raise ValueError(f"part_size must be at least {_MIN_PART} bytes")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.cache_dir = cache_dir.resolve()
        self.part_size = part_size
        options: dict[str, Any] = {
            "region_name": region or "us-east-1", "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": Config(signature_version="s3v4", retries={"max_attempts": 3},
                             s3={"addressing_style": "path"})}
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, **options)
        # Presigned URLs name the host nodes and browsers reach, which may not be the one
        # the API uses (compose: http://minio:9000 inside, http://localhost:9000 outside).
        self.signer: Any = (boto3.client("s3", endpoint_url=public_endpoint_url, **options)
                            if public_endpoint_url else self.client)
        if create_bucket:
            try:
                self.client.head_bucket(Bucket=bucket)
            except ClientError:
                self.client.create_bucket(Bucket=bucket)
                self._set_lifecycle()

    def _set_lifecycle(self) -> None:
        """Abandoned multipart uploads (a node died mid-upload) are removed after a day.
        (Expired exports are deleted by the API's sweeper, which also updates the
        database.)"""
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket, LifecycleConfiguration={"Rules": [{
                "ID": "framefarm-abandoned-uploads", "Status": "Enabled",
                "Filter": {"Prefix": self.prefix},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})

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
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.cache_dir, prefix=".upload-") as spool:
            size, sha = copy_bounded(stream, spool, max_bytes)
            spool.flush()
            self.put_file(key, Path(spool.name))
        return size, sha

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
        self.copy(old, new)
        self.delete(old)

    def copy(self, old: str, new: str) -> None:
        # Server-side: the object never passes through this process.
        try:
            self.client.copy_object(Bucket=self.bucket, Key=self._key(new),
                                    CopySource={"Bucket": self.bucket, "Key": self._key(old)})
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("copy", old, exc) from exc

    def check_writable(self) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key("health/probe"), Body=b"ok")
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("write", "health/probe", exc) from exc
        self.delete("health/probe")

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        # Completed objects only: parts of an unfinished multipart upload are not listed.
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    modified = item["LastModified"]
                    if modified.tzinfo is None:
                        modified = modified.replace(tzinfo=dt.UTC)
                    yield StoredObject(str(item["Key"])[len(self.prefix):], int(item["Size"]),
                                       modified.astimezone(dt.UTC))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("list", prefix or "the bucket", exc) from exc

    def presigned_get(self, key: str, seconds: int, media_type: str | None = None,
                      filename: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        # Objects are stored without metadata (nodes PUT raw bytes): say what they are.
        if media_type:
            params["ResponseContentType"] = media_type
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = self.signer.generate_presigned_url("get_object", Params=params,
                                                      ExpiresIn=seconds)
        return url

    def presigned_put(self, key: str, seconds: int) -> str:
        url: str = self.signer.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=seconds)
        return url

    def presigned_multipart(self, key: str, size: int,
                            seconds: int) -> MultipartUpload | None:
        if size <= self.part_size:
            return None  # one PUT
        part_size = max(self.part_size, math.ceil(size / _MAX_PARTS))
        try:
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._key(key))["UploadId"]
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("start an upload of", key, exc) from exc
        urls = [self.signer.generate_presigned_url(
            "upload_part", Params={"Bucket": self.bucket, "Key": self._key(key),
                                   "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=seconds) for number in range(1, math.ceil(size / part_size) + 1)]
        return MultipartUpload(upload_id=upload_id, part_size=part_size, urls=urls)

    def complete_multipart(self, key: str, upload_id: str, etags: list[str],
                           size: int) -> None:
        parts = [{"ETag": etag, "PartNumber": number} for number, etag in enumerate(etags, 1)]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id,
                MultipartUpload={"Parts": parts})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload"):
                raise InvalidUpload(f"cannot complete the upload of {key}: {code}") from exc
            raise self._fail("complete the upload of", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("complete the upload of", key, exc) from exc
        stored = self.size(key)
        if stored != size:
            self.delete(key)
            raise InvalidUpload(f"the upload of {key} holds {stored} bytes, not {size}")
