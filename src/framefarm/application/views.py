"""How records are shown to callers: JSON-ready dicts, the same for API answers, live
events and webhook bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from framefarm.application.renders import JobView
from framefarm.records import Export, Node


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def job(view: JobView, public_url: str) -> dict[str, Any]:
    row, summary = view.job, view.summary
    base = public_url.rstrip("/")
    return {
        "id": row.id,
        "kind": row.kind,
        "state": summary.state.value,
        "step": summary.step,
        "percent": summary.percent,
        "eta_seconds": round(summary.eta_seconds, 1) if summary.eta_seconds else None,
        "frames": {"done": summary.frames_done, "total": summary.frames_total},
        "priority": row.priority,
        "attempt": row.attempt,
        "retry_of": row.retry_of,
        "project_id": row.project_id,
        "options": row.options,
        "error": row.error,
        "failed_step": row.failed_step,
        "preview_url": f"{base}/v1/renders/{row.id}/preview" if row.preview_key else None,
        "export": export(view.export, public_url) if view.export else None,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
    }


def export(row: Export, public_url: str) -> dict[str, Any]:
    base = public_url.rstrip("/")
    return {
        "id": row.id,
        "job_id": row.job_id,
        "size": row.size,
        "duration": row.duration,
        "width": row.width,
        "height": row.height,
        "codec": row.codec,
        "format": row.format,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "file_url": f"{base}/v1/exports/{row.id}/file",
    }


def node(row: Node, status: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "status": status,
        "capabilities": row.capabilities,
        "current_task_id": row.current_task_id,
        "last_heartbeat": iso(row.last_heartbeat),
        "tasks_done": row.tasks_done,
        "tasks_failed": row.tasks_failed,
        "crashes": row.crashes,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
    }
