"""Request dependencies: the service, and who is calling (tenant key, admin key, node)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import Depends, Request

from framefarm.api.errors import ApiError
from framefarm.api.metrics import Metrics
from framefarm.api.service import Service


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


ServiceDep = Annotated[Service, Depends(service)]


@dataclasses.dataclass(frozen=True)
class Caller:
    tenant_id: str
    admin: bool


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <API key>'")
    return token.strip()


def tenant(request: Request, svc: ServiceDep) -> Caller:
    found = svc.store.authenticate(_bearer(request))
    if found is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    return Caller(*found)


TenantDep = Annotated[Caller, Depends(tenant)]


def admin(caller: TenantDep) -> Caller:
    if not caller.admin:
        raise ApiError(403, "forbidden", "this needs an admin API key")
    return caller


AdminDep = Annotated[Caller, Depends(admin)]


def node(request: Request, svc: ServiceDep) -> str:
    """A render node authenticates with 'Bearer <node id>:<secret>'."""
    node_id, _, secret = _bearer(request).partition(":")
    if not secret or not svc.store.authenticate_node(node_id, secret):
        raise ApiError(401, "unauthorized", "unknown node or wrong node secret")
    return node_id


NodeDep = Annotated[str, Depends(node)]


def metrics(request: Request) -> Metrics:
    found: Metrics = request.app.state.metrics
    return found


MetricsDep = Annotated[Metrics, Depends(metrics)]
