"""Request dependencies: the application, and who is calling (tenant key, admin key,
node); and how a stored object becomes a response.

The dependencies that need no thread are ``async``: FastAPI runs a sync dependency in the
thread pool, and under concurrent clients those trips cost more than the work itself. A
tenant's key is checked from the event loop, in one statement (db/direct.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from framefarm.api.errors import ApiError
from framefarm.application import Application
from framefarm.application.context import Download
from framefarm.records import Caller


async def application(request: Request) -> Application:
    app: Application = request.app.state.application
    return app


AppDep = Annotated[Application, Depends(application)]


# The security schemes of the OpenAPI description; they only read the header (a missing or
# malformed one is refused below, in the one error shape).
API_KEY = HTTPBearer(scheme_name="ApiKey", bearerFormat="ff_...", auto_error=False,
                     description="A tenant's API key (an admin key for /v1/admin).")
NODE_CREDENTIAL = HTTPBearer(scheme_name="NodeCredential", bearerFormat="<node id>:<secret>",
                             auto_error=False,
                             description="A render node's credential, from its registration.")
Credentials = HTTPAuthorizationCredentials | None


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <API key>'")
    return token.strip()


def unknown_key() -> ApiError:
    return ApiError(401, "unauthorized", "unknown or revoked API key")


async def tenant(request: Request, app: AppDep,
                 scheme: Annotated[Credentials, Security(API_KEY)] = None) -> Caller:
    found = await app.accounts.caller(bearer(request))
    if found is None:
        raise unknown_key()
    return found


TenantDep = Annotated[Caller, Depends(tenant)]


async def admin(caller: TenantDep) -> Caller:
    if not caller.admin:
        raise ApiError(403, "forbidden", "this needs an admin API key")
    return caller


AdminDep = Annotated[Caller, Depends(admin)]


def node(request: Request, app: AppDep,
         scheme: Annotated[Credentials, Security(NODE_CREDENTIAL)] = None) -> str:
    """A render node authenticates with 'Bearer <node id>:<secret>'."""
    node_id, _, secret = bearer(request).partition(":")
    if not secret or not app.farm.authenticate(node_id, secret):
        raise ApiError(401, "unauthorized", "unknown node or wrong node secret")
    return node_id


NodeDep = Annotated[str, Depends(node)]


def file_responses(*media_types: str, ranges: bool = False) -> dict[int | str, Any]:
    """The OpenAPI ``responses`` of a route that answers with :func:`send`."""
    found: dict[int | str, Any] = {
        200: {"description": "The file.", "content": {t: {} for t in media_types}},
        307: {"description": "A redirect to a presigned storage URL (S3 storage)."}}
    if ranges:
        found[206] = {"description": "The requested byte range.",
                      "content": {t: {} for t in media_types}}
    return found


def send(found: Download) -> Response:
    """A redirect to a presigned URL when storage has one, else the file (with Range)."""
    if found.url is not None:
        return RedirectResponse(found.url, status_code=307)
    assert found.path is not None
    return FileResponse(found.path, media_type=found.media_type, filename=found.filename)
