"""How records are shown to callers: JSON-ready dicts, the same for API answers, live
events and webhook bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from framefarm.application.batches import BatchView
from framefarm.application.projects import template_variables
from framefarm.application.renders import JobView, Page
from framefarm.records import Asset, Export, JobUsage, Node, Project, Template


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
        "credits": credits(view.usage),
    }


def credits(row: JobUsage | None) -> dict[str, Any] | None:
    """A job's credits: reserved when queued; charged and refunded once it finished
    (``settled``). None for jobs queued before usage was recorded."""
    if row is None:
        return None
    return {"reserved": row.credits_reserved, "charged": row.credits_charged,
            "refunded": row.credits_refunded, "settled": row.settled_at is not None,
            "credits_per_second": row.credits_per_second}


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


def page(found: Page, public_url: str) -> dict[str, Any]:
    """A page of jobs: ``next`` (the ``before`` of the next page) is None when there is
    none, and ``has_more`` says whether there is."""
    return {"items": [job(v, public_url) for v in found.items], "next": found.next,
            "has_more": found.has_more}


def project(row: Project) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "created_at": iso(row.created_at)}


def project_detail(row: Project, assets: list[Asset]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "document": row.document,
            "assets": [a.name for a in assets], "updated_at": iso(row.updated_at)}


def asset(row: Asset) -> dict[str, Any]:
    return {"name": row.name, "sha256": row.sha256, "size": row.size,
            "created_at": iso(row.created_at)}


def template(row: Template) -> dict[str, Any]:
    scenes = row.document.get("scenes") or []
    return {"id": row.id, "name": row.name, "project_id": row.project_id,
            "variables": template_variables(row.document), "scenes": len(scenes),
            "document": row.document}


def template_summary(row: Template) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "variables": template_variables(row.document)}


def batch(view: BatchView) -> dict[str, Any]:
    """A batch: its rows (given, queued, skipped), the counts of its row jobs by state,
    its state and its progress."""
    row, found = view.batch, view.counts.states
    return {
        "id": row.id,
        "template_id": row.template_id,
        "project_id": row.project_id,
        "state": view.state,
        "mode": row.mode,
        "options": row.options,
        "priority": row.priority,
        "rows_total": row.rows_total,
        "rows_queued": view.rows_queued,
        "rows_skipped": len(row.skipped),
        "skipped": row.skipped,
        "counts": {s: found.get(s, 0)
                   for s in ("queued", "running", "succeeded", "failed", "cancelled")},
        "percent": view.percent,
        "frames": {"done": view.counts.frames_done, "total": view.counts.frames_total},
        "created_at": iso(row.created_at),
        "cancelled_at": iso(row.cancelled_at),
        "finished_at": iso(view.counts.last_finished) if view.finished else None,
    }


BATCH_PROGRESS = ("id", "state", "counts", "percent", "frames", "rows_queued")


def batch_progress(view: BatchView) -> dict[str, Any]:
    """What a batch's live events carry: its state, counts and progress."""
    found = batch(view)
    return {k: found[k] for k in BATCH_PROGRESS}
