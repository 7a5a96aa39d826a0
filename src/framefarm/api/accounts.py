"""Who is calling: ``GET /v1/me`` (any API key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from framefarm.api import models
from framefarm.api.deps import AppDep, TenantDep
from framefarm.api.errors import TENANT_RESPONSES

router = APIRouter(prefix="/v1", responses=TENANT_RESPONSES)


@router.get("/me", response_model=models.Me)
def me(caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """The tenant the API key belongs to, and whether the key is an admin key."""
    tenant = app.accounts.tenant(caller.tenant_id)
    return {"tenant_id": tenant.id, "tenant": tenant.name, "admin": caller.admin}
