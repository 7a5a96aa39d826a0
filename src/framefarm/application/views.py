"""How records are shown to callers: JSON-ready dicts, the same for API answers, live
events and webhook bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from framefarm.application.projects import template_variables
from framefarm.application.renders import JobView, Page
from framefarm.records import Asset, Export, Node, Project, Template


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
