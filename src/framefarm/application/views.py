"""How rows are shown to API callers (JSON-ready dicts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import RowMapping

from framefarm.api.service import Service


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def job(svc: Service, row: RowMapping) -> dict[str, Any]:
    summary = svc.store.summary(row)
    export = svc.store.export_for_job(row["id"])
    base = svc.settings.public_url.rstrip("/")
    return {
        "id": row["id"],
        "kind": row["kind"],
        "state": summary.state.value,
        "step": summary.step,
        "percent": summary.percent,
        "eta_seconds": round(summary.eta_seconds, 1) if summary.eta_seconds else None,
        "frames": {"done": summary.frames_done, "total": summary.frames_total},
        "priority": row["priority"],
        "attempt": row["attempt"],
        "retry_of": row["retry_of"],
        "project_id": row["project_id"],
        "options": row["options"],
        "error": row["error"],
        "failed_step": row["failed_step"],
        "preview_url": f"{base}/v1/renders/{row['id']}/preview" if row["preview_key"] else None,
        "export": export_view(svc, export) if export else None,
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
    }


def export_view(svc: Service, row: RowMapping) -> dict[str, Any]:
    base = svc.settings.public_url.rstrip("/")
    return {
        "id": row["id"],
        "job_id": row["job_id"],
        "size": row["size"],
        "duration": row["duration"],
        "width": row["width"],
        "height": row["height"],
        "codec": row["codec"],
        "format": row["format"],
        "created_at": iso(row["created_at"]),
        "expires_at": iso(row["expires_at"]),
        "file_url": f"{base}/v1/exports/{row['id']}/file",
    }


def node(svc: Service, row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": svc.store.node_status(row),
        "capabilities": row["capabilities"],
        "current_task_id": row["current_task_id"],
        "last_heartbeat": iso(row["last_heartbeat"]),
        "tasks_done": row["tasks_done"],
        "tasks_failed": row["tasks_failed"],
        "crashes": row["crashes"],
        "last_error": row["last_error"],
        "created_at": iso(row["created_at"]),
    }
