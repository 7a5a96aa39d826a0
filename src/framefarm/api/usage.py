"""Usage, plans and credits: a tenant's own usage (``GET /v1/usage``), and the admin's
usage of every tenant, plans, credit grants and ledgers (``/v1/admin/...``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from framefarm.api import models
from framefarm.api.deps import AdminDep, AppDep, TenantDep
from framefarm.api.errors import ADMIN_RESPONSES, TENANT_RESPONSES, ApiError
from framefarm.application import Application, usage

router = APIRouter(prefix="/v1", tags=["usage"], responses=TENANT_RESPONSES)
admin_router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ADMIN_RESPONSES)

From = Annotated[dt.date | None, Query(alias="from", description="first day, YYYY-MM-DD "
                                       "(default: the first of this month)")]
To = Annotated[dt.date | None, Query(alias="to", description="last day, YYYY-MM-DD, "
                                     "included (default: today); at most 366 days after "
                                     "from")]


def _range(app: Application, first: dt.date | None,
           last: dt.date | None) -> tuple[dt.date, dt.date]:
    try:
        return usage.parse_range(first, last, today=app.usage.today())
    except ValueError as exc:  # a range the schema cannot state: to before from, too long
        raise ApiError(422, "invalid_request", str(exc),
                       [{"path": "query.to", "message": str(exc)}]) from None


@router.get("/usage", response_model=models.Usage)
def my_usage(caller: TenantDep, app: AppDep, first: From = None,
             last: To = None) -> dict[str, Any]:
    """The tenant's usage per UTC day of submission (output seconds, frames, jobs, node
    CPU-seconds by step, bytes of exports, credits), its totals, balance and plan."""
    start, end = _range(app, first, last)
    return usage.report_view(app.usage.report(caller.tenant_id, start, end))


@admin_router.get("/usage", response_model=list[models.UsageDay])
def all_usage(_: AdminDep, app: AppDep, first: From = None, last: To = None,
              tenant_id: Annotated[str | None, Query()] = None) -> list[dict[str, Any]]:
    """Every tenant's usage per UTC day (or one tenant's), by tenant then day."""
    start, end = _range(app, first, last)
    return [usage.day_view(d) for d in app.usage.all_days(start, end, tenant_id)]


@admin_router.put("/tenants/{tenant_id}/plan", response_model=models.Plan)
def put_plan(tenant_id: str, body: models.PlanIn, _: AdminDep, app: AppDep) -> dict[str, Any]:
    """Replace the tenant's plan (its limits and prices)."""
    plan = usage.Plan(**body.model_dump())
    return app.usage.set_plan(tenant_id, plan).as_json()


@admin_router.post("/tenants/{tenant_id}/credits", status_code=201)
def add_credits(tenant_id: str, body: models.CreditsIn, _: AdminDep,
                app: AppDep) -> dict[str, Any]:
    """Grant credits (amount > 0) or take some back (amount < 0): one ledger row. The
    first grant turns credit metering on for the tenant."""
    if body.amount == 0:
        raise ApiError(422, "invalid_request", "amount: give a non-zero number of credits",
                       [{"path": "amount", "message": "must not be 0"}])
    entry = app.usage.add_credits(tenant_id, body.amount, body.note)
    return {"tenant_id": tenant_id, "balance": entry.balance_after,
            "entry": usage.entry_view(entry)}


@admin_router.get("/tenants/{tenant_id}/ledger", response_model=list[models.LedgerEntry])
def get_ledger(tenant_id: str, _: AdminDep, app: AppDep,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               before: Annotated[int | None, Query(ge=1, description="the id of the last "
                                                   "entry of the previous page")] = None,
               ) -> list[dict[str, Any]]:
    """The tenant's ledger, newest first: every change of its credit balance."""
    return [usage.entry_view(e)
            for e in app.usage.ledger(tenant_id, limit=limit, before=before)]
