"""Service settings (``framefarm serve``, ``framefarm worker``): environment variables
with the prefix ``FRAMEFARM_``. Created by the commands, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAMEFARM_", frozen=True)

    data_dir: Path = Field(Path("framefarm-data"), description="SQLite, storage and work files")
    database_url: str | None = Field(
        None, description="sqlite:///path or postgresql+psycopg://...; default: SQLite in "
        "the data dir")
    storage_root: Path | None = Field(None, description="local storage; default: "
                                      "<data dir>/storage")
    storage_backend: Literal["local", "s3"] = Field("local", description="where files live")
    s3_bucket: str = Field("framefarm", description="S3 bucket (created if missing)")
    s3_endpoint_url: str | None = Field(None, description="e.g. http://minio:9000; default AWS")
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = Field("", description="key prefix inside the bucket")
    s3_public_endpoint_url: str | None = Field(
        None, description="the S3 endpoint as nodes and browsers reach it, for presigned URLs "
        "(default: s3_endpoint_url)")
    s3_part_mb: int = Field(64, ge=5, le=5120, description="nodes upload files larger than "
                            "this in parts of this size (multipart)")
    public_url: str = Field("http://127.0.0.1:8700", description="base URL of signed links")
    secret_key: str | None = Field(
        None, description="signs download links; default: generated once into the data dir")
    enrolment_token: str | None = Field(
        None, description="lets render nodes register; default: generated into the data dir")
    cors_origins: list[str] = Field(default_factory=list)
    metrics_token: str | None = Field(
        None, description="when set, /metrics needs 'Authorization: Bearer <token>'; when "
        "unset it is open: keep it off public networks")

    lease_seconds: float = Field(30.0, gt=0, description="a task's lease without heartbeat")
    heartbeat_seconds: float = Field(5.0, gt=0, description="how often nodes heartbeat")
    max_attempts: int = Field(3, ge=1, description="reported failures before a task fails")
    retry_backoff_seconds: float = Field(2.0, ge=0, description="first retry delay, doubling")
    node_block_failures: int = Field(2, ge=1, description="failures of one job that block a "
                                     "node from it")
    max_concurrent_jobs: int = Field(50, ge=1, description="queued+running jobs per tenant")
    min_chunk_seconds: float = Field(2.0, gt=0, description="shortest chunk worth a task")
    unserved_engines: Literal["refuse", "wait"] = Field(
        "refuse", description="a render whose engine (remotion) no registered node has: "
        "refused at submit (refuse), or queued until such a node registers (wait)")
    max_upload_bytes: int = Field(512 * 1024**2, description="per uploaded file")
    max_upload_files: int = Field(
        20, ge=1, description="one upload request's body may hold this many files' worth: "
        "max_upload_bytes * max_upload_files (+1 MiB for the form); each file is still "
        "bounded by max_upload_bytes")
    export_days: float = Field(7.0, gt=0, description="exports are deleted after this")
    signed_url_seconds: int = Field(900, gt=0, description="lifetime of a download link")
    batch_max_rows: int = Field(10_000, ge=1, description="rows in one batch")
    batch_max_bytes: int = Field(
        20 * 1024**2, ge=1024, description="a batch's CSV upload, counted while it streams")
    log_json: bool = Field(False, description="log one JSON object per line")
    webhook_allow_private: bool = Field(
        False, description="allow webhooks to loopback/private addresses (tests, LANs)")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'framefarm.db').resolve()}"

    @property
    def storage_dir(self) -> Path:
        return (self.storage_root or self.data_dir / "storage").resolve()
