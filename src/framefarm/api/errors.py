"""One error shape for every response: ``{"error": {"code", "message", "details"}}``.

4xx for the caller's mistakes, 500 with no details for ours; never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from framefarm import errors, webhooks
from framefarm.api.models import ErrorBody
from framefarm.application.farm import Refused, WrongToken
from framefarm.application.projects import InvalidAssetName
from framefarm.document import templates
from framefarm.queue import errors as service
from framefarm.storage.local import StorageError, TooLarge

log = logging.getLogger("framefarm.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


_MEANINGS = {
    400: "The request could not be read (e.g. a body that is not valid multipart).",
    401: "No credential, or an unknown or revoked one.",
    402: "The tenant's credits do not cover the render (details: needed, balance).",
    403: "The credential may not do this (an admin key is needed), the link expired, or "
         "the plan's monthly output minutes are used up.",
    404: "No such resource (another tenant's rows answer 404 too).",
    409: "The resource's state does not allow this (or a stale lease).",
    413: "The request body is over its limit.",
    422: "The request is invalid: its fields, its document, or JSON nested too deep.",
    429: "Too many queued and running jobs for this tenant.",
    503: "Storage is unavailable.",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of these error statuses, each in the one error shape."""
    return {status: {"model": ErrorBody, "description": _MEANINGS[status]}
            for status in statuses}


# What a router's routes may answer besides their own success (APIRouter(responses=...)).
TENANT_RESPONSES = responses(400, 401, 402, 403, 404, 409, 413, 422, 429, 503)
ADMIN_RESPONSES = responses(400, 401, 403, 404, 409, 413, 422, 503)
NODE_RESPONSES = responses(400, 401, 404, 409, 413, 422, 503)


def body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _json(status: int, code: str, message: str, details: Any = None,
          headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body(code, message, details), status_code=status, headers=headers)


_SERVICE_ERRORS: dict[type[service.ServiceError], tuple[int, str]] = {
    service.NotFound: (404, "not_found"),
    service.Conflict: (409, "conflict"),
    service.IllegalTransition: (409, "conflict"),
    service.StaleLease: (409, "stale_lease"),
    service.TooManyJobs: (429, "too_many_jobs"),
    service.InsufficientCredits: (402, "insufficient_credits"),
    service.QuotaExceeded: (403, "quota_exceeded"),
    service.StorageFull: (413, "storage_quota_exceeded"),
    service.OverPlanResolution: (422, "resolution_over_plan"),
    service.FeatureOff: (403, "not_in_plan"),
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed(request: Request) -> list[str]:
    """The methods some route of the request's path answers (asked of the app's router,
    whatever routers it includes)."""
    routes = request.app.router.routes
    return [method for method in _METHODS
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                   for route in routes)]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # Keep the exception's headers (a 401's WWW-Authenticate); a 405 names every
        # method of the path, not only those of the one route that matched first.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(request) or [headers.get("Allow", "")])
        return _json(exc.status_code, code, str(exc.detail), headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"path": templates.json_path(tuple(e["loc"])), "message": e["msg"]}
                   for e in exc.errors()]
        first = details[0] if details else {"path": "", "message": "invalid"}
        return _json(422, "invalid_request", f"{first['path']}: {first['message']}", details)

    @app.exception_handler(errors.DocumentError)
    async def _document(_: Request, exc: errors.DocumentError) -> JSONResponse:
        return _json(422, "invalid_document", exc.args[0], exc.problems)

    @app.exception_handler(service.ServiceError)
    async def _service(_: Request, exc: service.ServiceError) -> JSONResponse:
        status, code = _SERVICE_ERRORS.get(type(exc), (409, "conflict"))
        return _json(status, code, str(exc), exc.details)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return _json(422, exc.code, str(exc))

    @app.exception_handler(WrongToken)
    async def _token(_: Request, exc: WrongToken) -> JSONResponse:
        return _json(401, "unauthorized", str(exc))

    @app.exception_handler(InvalidAssetName)
    async def _asset_name(_: Request, exc: InvalidAssetName) -> JSONResponse:
        return _json(422, "invalid_asset_name", str(exc))

    @app.exception_handler(webhooks.UnsafeTarget)
    async def _unsafe(_: Request, exc: webhooks.UnsafeTarget) -> JSONResponse:
        return _json(422, "unsafe_url", str(exc))

    @app.exception_handler(TooLarge)
    async def _large(_: Request, exc: TooLarge) -> JSONResponse:
        return _json(413, "too_large", str(exc))

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        log.error("storage error: %s", exc)
        return _json(503, "storage_unavailable", str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _json(500, "internal", "internal error; the server log has the details")
