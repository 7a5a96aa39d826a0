"""Admin API (admin keys): render nodes, the queue, tenants and keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from framefarm.api.deps import AdminDep, AppDep
from framefarm.api.errors import ADMIN_RESPONSES
from framefarm.api.models import WHOLE
from framefarm.application import Application, views
from framefarm.application.accounts import ApiKey
from framefarm.records import Node

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ADMIN_RESPONSES)


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=200)
    admin: bool = False
    max_concurrent_jobs: Annotated[Annotated[int, Field(ge=1, le=100_000)], WHOLE] | None = None


def _node(app: Application, node: Node) -> dict[str, Any]:
    return views.node(node, app.farm.status(node))


@router.get("/nodes")
def list_nodes(_: AdminDep, app: AppDep) -> list[dict[str, Any]]:
    return [_node(app, row) for row in app.farm.nodes()]


@router.get("/nodes/{node_id}")
def get_node(node_id: str, _: AdminDep, app: AppDep) -> dict[str, Any]:
    return _node(app, app.farm.node(node_id))


@router.post("/nodes/{node_id}/drain")
def drain(node_id: str, _: AdminDep, app: AppDep) -> dict[str, Any]:
    """Finish the current task, claim no more."""
    return _node(app, app.farm.set_draining(node_id, True))


@router.post("/nodes/{node_id}/undrain")
def undrain(node_id: str, _: AdminDep, app: AppDep) -> dict[str, Any]:
    return _node(app, app.farm.set_draining(node_id, False))


@router.post("/nodes/{node_id}/release")
def release(node_id: str, _: AdminDep, app: AppDep) -> dict[str, Any]:
    """Requeue the node's running task now (for a stuck node)."""
    return {"requeued": app.farm.release(node_id)}


@router.get("/nodes/{node_id}/health")
def node_health(node_id: str, _: AdminDep, app: AppDep, limit: int = 200) -> dict[str, Any]:
    """The node's recent heartbeat samples: load, memory in use, task and frame."""
    node, samples = app.farm.health(node_id, min(max(limit, 1), 2000))
    return {"node": _node(app, node),
            "samples": [{"at": views.iso(s.at), "load": s.load, "memory_used": s.memory_used,
                         "task_id": s.task_id, "frames_done": s.frames_done}
                        for s in samples]}


@router.get("/nodes/{node_id}/crashes")
def node_crashes(node_id: str, _: AdminDep, app: AppDep) -> list[dict[str, Any]]:
    """Failures the node reported (with the tail of the error) and leases it let expire."""
    return [{"at": views.iso(c.at), "kind": c.kind, "task_id": c.task_id,
             "job_id": c.job_id, "error": c.error}
            for c in app.farm.crashes(node_id)]


@router.delete("/nodes/{node_id}", status_code=204)
def forget_node(node_id: str, _: AdminDep, app: AppDep) -> Response:
    """Requeue the node's work and remove it; it has to register again."""
    app.farm.forget(node_id)
    return Response(status_code=204)


@router.get("/queue")
def queue_overview(_: AdminDep, app: AppDep) -> dict[str, Any]:
    return {"tasks": app.farm.queue_overview()}


@router.get("/queue/tenants")
def queue_by_tenant(_: AdminDep, app: AppDep) -> list[dict[str, Any]]:
    """Each tenant's unfinished (queued or running) renders and its limit (null: the
    server's default)."""
    return [{"tenant_id": tenant_id, "name": name, "unfinished": count,
             "max_concurrent_jobs": limit}
            for tenant_id, name, count, limit in app.farm.unfinished_by_tenant()]


@router.get("/tenants")
def list_tenants(_: AdminDep, app: AppDep) -> list[dict[str, Any]]:
    return [{"id": r.id, "name": r.name, "max_concurrent_jobs": r.max_concurrent_jobs,
             "created_at": views.iso(r.created_at), "plan": r.plan,
             "credit_balance": r.credit_balance} for r in app.accounts.list_tenants()]


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantIn, _: AdminDep, app: AppDep) -> dict[str, Any]:
    """A new tenant; its API key is shown only in this answer."""
    tenant_id, key_id, key = app.accounts.create_tenant_with_key(
        body.name, admin=body.admin, max_concurrent_jobs=body.max_concurrent_jobs)
    return {"id": tenant_id, "name": body.name, "api_key": key, "api_key_id": key_id}


@router.post("/tenants/{tenant_id}/keys", status_code=201)
def create_key(tenant_id: str, _: AdminDep, app: AppDep) -> dict[str, Any]:
    """Another key for the tenant, shown only in this answer; ``api_key_id`` revokes it."""
    key_id, key = app.accounts.add_key(tenant_id)
    return {"tenant_id": tenant_id, "api_key": key, "api_key_id": key_id}


def _key(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "tenant_id": key.tenant_id, "admin": key.admin,
            "created_at": views.iso(key.created_at),
            "revoked_at": views.iso(key.revoked_at) if key.revoked_at else None}


@router.get("/tenants/{tenant_id}/keys")
def list_keys(tenant_id: str, _: AdminDep, app: AppDep) -> list[dict[str, Any]]:
    """The tenant's API keys, revoked ones too: ids and times, never the keys."""
    return [_key(key) for key in app.accounts.keys(tenant_id)]


@router.post("/keys/{key_id}/revoke")
def revoke_key(key_id: str, _: AdminDep, app: AppDep) -> dict[str, Any]:
    """Revoke an API key: every request with it is refused (401) from now on."""
    return _key(app.accounts.revoke_key(key_id))
