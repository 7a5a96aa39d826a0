"""A Python client of the render service's HTTP API.

    import framefarm

    with framefarm.Client("http://127.0.0.1:8700", "ff_...") as client:
        project = client.create_project("launch")
        client.upload(project.id, {"media/photo.jpg": Path("media/photo.jpg")})
        job = client.submit(document=doc, project_id=project.id)
        job = client.wait(job.id, on_progress=lambda p: print(p.step, p.percent))
        client.download(job, Path("launch.mp4"))

Synchronous, on httpx. Answers are the API's own pydantic models
(:mod:`framefarm.api.models`, which imports no web framework). Every refusal of the API is
raised as an :class:`ApiError` carrying its ``status``, ``code``, ``message`` and
``details``, as a subclass by status:

    ClientError                  the client failed
     ├── ApiError                the API refused: .status, .code, .message, .details
     │    ├── Unauthorized       401: no key, or an unknown or revoked one
     │    ├── Forbidden          403: the key may not do this
     │    ├── NotFound           404: no such resource (another tenant's ids too)
     │    ├── Conflict           409: the resource's state does not allow it
     │    ├── TooLarge           413: a body or an upload over its limit
     │    ├── Invalid            422: the request or its document is invalid
     │    ├── TooManyJobs        429: too many queued and running jobs
     │    └── ServerError        5xx: the server failed (its log has the details)
     ├── ServerUnreachable       the server could not be reached or stopped answering
     └── WaitTimeout             a render did not finish within the time given to wait

Progress follows the render's Server-Sent Events (``GET /v1/renders/{id}/events``), and
polls ``GET /v1/renders/{id}/progress`` when the stream cannot be had (a proxy that
buffers it, a dropped connection).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

import httpx
import pydantic

from framefarm.api import models

__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "ServerError",
    "ServerUnreachable",
    "TooLarge",
    "TooManyJobs",
    "Unauthorized",
    "WaitTimeout",
]

M = TypeVar("M", bound=pydantic.BaseModel)
ProgressCallback = Callable[[models.JobProgress], None]
Follow = Literal["events", "poll"]


# -- errors -----------------------------------------------------------------------------------


class ClientError(Exception):
    """The client failed."""


class ApiError(ClientError):
    """The API refused the request."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class Unauthorized(ApiError):
    """401: no API key, or an unknown or revoked one."""


class Forbidden(ApiError):
    """403: the key may not do this (an admin key is needed), or a link expired."""


class NotFound(ApiError):
    """404: no such resource (another tenant's ids answer 404 too)."""


class Conflict(ApiError):
    """409: the resource's state does not allow this."""


class TooLarge(ApiError):
    """413: a body or an upload over its limit."""


class Invalid(ApiError):
    """422: the request, its document, its data or its assets are invalid; ``details``
    lists each problem (for a document, with its JSON path)."""


class TooManyJobs(ApiError):
    """429: too many queued and running jobs for this tenant."""


class ServerError(ApiError):
    """5xx: the server failed; its log has the details."""


class ServerUnreachable(ClientError):
    """The server could not be reached, or stopped answering."""


class WaitTimeout(ClientError):
    """The render did not finish within the time given to wait."""


_BY_STATUS: dict[int, type[ApiError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound,
                                         409: Conflict, 413: TooLarge, 422: Invalid,
                                         429: TooManyJobs}


def _error(response: httpx.Response) -> ApiError:
    """The API's error answer as an exception (any answer: a proxy's HTML page too)."""
    try:
        found = models.ErrorBody.model_validate_json(response.content).error
        code, message, details = found.code, found.message, found.details
    except (pydantic.ValidationError, ValueError):
        code, message, details = "http_error", response.text[:500] or response.reason_phrase, None
    cls = ServerError if response.status_code >= 500 else _BY_STATUS.get(response.status_code,
                                                                          ApiError)
    return cls(response.status_code, code, message, details)


# -- the client -------------------------------------------------------------------------------


class Client:
    """The render service at ``url``, as the tenant of API key ``key``.

    ``timeout`` bounds each request (not a whole render: :meth:`wait` has its own);
    ``transport`` is httpx's, for tests or proxies. Use it in a ``with`` block, or
    :meth:`close` it.
    """

    def __init__(self, url: str, key: str, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        # httpx drops the Authorization header on a redirect to another origin (a presigned
        # storage URL), which must not get it.
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {key}"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{method} {self.url}{path}: {exc}") from exc
        if response.is_error:
            raise _error(response)
        return response

    def _get(self, model: type[M], path: str, **params: Any) -> M:
        return _parse(model, self._request("GET", path, params=_params(params)))

    def _list(self, model: type[M], path: str, **params: Any) -> list[M]:
        response = self._request("GET", path, params=_params(params))
        return _parse(pydantic.RootModel[list[model]], response).root  # type: ignore[valid-type]

    def _send(self, model: type[M], method: str, path: str, body: Any = None) -> M:
        return _parse(model, self._request(method, path, json=body))

    # -- who am I ----------------------------------------------------------------------------

    def me(self) -> models.Me:
        return self._get(models.Me, "/v1/me")

    def usage(self, from_: dt.date | str | None = None,
              to: dt.date | str | None = None) -> models.Usage:
        """The tenant's usage per UTC day from ``from_`` to ``to`` (both included; the
        server's default: this month so far), with its credit balance and plan."""
        params = {"from": str(from_) if from_ is not None else None,
                  "to": str(to) if to is not None else None}
        return self._get(models.Usage, "/v1/usage", **params)

    # -- projects and assets -----------------------------------------------------------------

    def create_project(self, name: str) -> models.Project:
        body = models.ProjectIn(name=name)
        return self._send(models.Project, "POST", "/v1/projects", body.model_dump())

    def projects(self) -> list[models.Project]:
        return self._list(models.Project, "/v1/projects")

    def project(self, project_id: str) -> models.ProjectDetail:
        return self._get(models.ProjectDetail, f"/v1/projects/{project_id}")

    def rename_project(self, project_id: str, name: str) -> models.Project:
        body = models.ProjectIn(name=name)
        return self._send(models.Project, "PATCH", f"/v1/projects/{project_id}",
                          body.model_dump())

    def delete_project(self, project_id: str) -> None:
        """Delete the project, its assets and templates (Conflict while a render of it is
        queued or running)."""
        self._request("DELETE", f"/v1/projects/{project_id}")

    def put_document(self, project_id: str, document: Mapping[str, Any]) -> None:
        self._request("PUT", f"/v1/projects/{project_id}/document", json=dict(document))

    def upload(self, project_id: str, files: Mapping[str, Path] | Sequence[Path], *,
               folder: str | None = None) -> list[models.UploadedAsset]:
        """Upload files, one request each, streamed from disk (never read whole into
        memory). ``files``: asset name -> local path (names may hold folders, e.g.
        ``media/photo.jpg``), or paths, named by their file names (inside ``folder``)."""
        named = files.items() if isinstance(files, Mapping) else ((p.name, p) for p in files)
        stored: list[models.UploadedAsset] = []
        for name, path in named:
            with Path(path).open("rb") as stream:
                stored += self._upload_one(project_id, name, stream, folder)
        return stored

    def _upload_one(self, project_id: str, name: str, stream: BinaryIO,
                    folder: str | None) -> list[models.UploadedAsset]:
        response = self._request(
            "POST", f"/v1/projects/{project_id}/assets",
            files={"files": (name, stream, "application/octet-stream")},
            data={"folder": folder} if folder else None)
        return _parse(_Uploaded, response).root

    def assets(self, project_id: str) -> list[models.Asset]:
        return self._list(models.Asset, f"/v1/projects/{project_id}/assets")

    def download_asset(self, project_id: str, name: str, target: Path) -> Path:
        """The asset's bytes into ``target`` (atomically)."""
        return self._download(f"/v1/projects/{project_id}/assets/{name}", target, None)

    def delete_asset(self, project_id: str, name: str) -> None:
        self._request("DELETE", f"/v1/projects/{project_id}/assets/{name}")

    # -- templates ---------------------------------------------------------------------------

    def create_template(self, name: str, document: Mapping[str, Any], *,
                        project_id: str | None = None) -> models.TemplateSummary:
        body = models.TemplateIn(name=name, document=dict(document), project_id=project_id)
        return self._send(models.TemplateSummary, "POST", "/v1/templates", body.model_dump())

    def templates(self) -> list[models.TemplateSummary]:
        return self._list(models.TemplateSummary, "/v1/templates")

    def template(self, template_id: str) -> models.Template:
        return self._get(models.Template, f"/v1/templates/{template_id}")

    def update_template(self, template_id: str, *, name: str | None = None,
                        document: Mapping[str, Any] | None = None) -> models.Template:
        body = models.TemplateUpdate(name=name,
                                     document=dict(document) if document is not None else None)
        return self._send(models.Template, "PUT", f"/v1/templates/{template_id}",
                          body.model_dump(exclude_none=True))

    def delete_template(self, template_id: str) -> None:
        self._request("DELETE", f"/v1/templates/{template_id}")

    def render_template(self, template_id: str, data: Mapping[str, Any] | None = None, *,
                        options: models.RenderOptions | Mapping[str, Any] | None = None,
                        priority: int = 0, notify_url: str | None = None,
                        idempotency_key: str | None = None) -> models.Job:
        body = models.TemplateRenderIn(data=dict(data or {}), options=_options(options),
                                       priority=priority, notify_url=notify_url,
                                       idempotency_key=idempotency_key)
        return self._send(models.Job, "POST", f"/v1/templates/{template_id}/renders",
                          body.model_dump(exclude_none=True))

    # -- renders -----------------------------------------------------------------------------

    def submit(self, document: Mapping[str, Any] | None = None, *,
               project_id: str | None = None, template_id: str | None = None,
               data: Mapping[str, Any] | None = None,
               options: models.RenderOptions | Mapping[str, Any] | None = None,
               priority: int = 0, notify_url: str | None = None,
               idempotency_key: str | None = None) -> models.Job:
        """Queue a render of an inline document, a project's document, or a template with
        data (an inline document uses ``project_id``'s assets). The server checks it with
        its assets first: an invalid one raises :class:`Invalid`."""
        body = models.RenderIn(document=dict(document) if document is not None else None,
                               project_id=project_id, template_id=template_id,
                               data=dict(data) if data is not None else None,
                               options=_options(options), priority=priority,
                               notify_url=notify_url, idempotency_key=idempotency_key)
        return self._send(models.Job, "POST", "/v1/renders", body.model_dump(exclude_none=True))

    def render(self, job_id: str) -> models.Job:
        return self._get(models.Job, f"/v1/renders/{job_id}")

    def progress(self, job_id: str) -> models.JobProgress:
        return self._get(models.JobProgress, f"/v1/renders/{job_id}/progress")

    def renders(self, *, state: models.JobStateName | None = None, limit: int = 50,
                before: str | None = None,
                project_id: str | None = None) -> models.JobPage:
        """One page, newest first (``page.next`` is the ``before`` of the next one); only
        the project's with ``project_id``."""
        path = f"/v1/projects/{project_id}/renders" if project_id else "/v1/renders"
        return self._get(models.JobPage, path, state=state, limit=limit, before=before)

    def all_renders(self, *, state: models.JobStateName | None = None,
                    project_id: str | None = None,
                    page_size: int = 200) -> Iterator[models.Job]:
        """Every render, newest first, page after page."""
        before: str | None = None
        while True:
            page = self.renders(state=state, limit=page_size, before=before,
                                project_id=project_id)
            yield from page.items
            if not page.has_more or page.next is None:
                return
            before = page.next

    def cancel(self, job_id: str) -> models.Job:
        return self._send(models.Job, "POST", f"/v1/renders/{job_id}/cancel")

    def retry(self, job_id: str) -> models.Job:
        return self._send(models.Job, "POST", f"/v1/renders/{job_id}/retry")

    def logs(self, job_id: str, level: str | None = None) -> list[models.LogLine]:
        return self._list(models.LogLine, f"/v1/renders/{job_id}/logs", level=level)

    def wait(self, job_id: str, *, on_progress: ProgressCallback | None = None,
             timeout: float | None = None, follow: Follow = "events",
             poll_seconds: float = 0.5) -> models.Job:
        """Wait until the render finishes and return it (whatever its final state; a
        succeeded render with its export). ``on_progress`` is called with each change of
        state, step or progress. ``follow="events"`` reads the live event stream and polls
        when it cannot; ``"poll"`` only polls."""
        deadline = None if timeout is None else time.monotonic() + timeout
        current = self.progress(job_id)  # NotFound now, not inside a stream
        if on_progress is not None:
            on_progress(current)
        if current.state not in models.FINISHED and follow == "events":
            seen = [current]  # what the stream showed last, should it be lost
            try:
                current = self._follow_events(job_id, seen, on_progress, deadline)
            except _StreamLost:
                current = seen[-1]
        while current.state not in models.FINISHED:
            _sleep(poll_seconds, deadline, job_id)
            found = self.progress(job_id)
            if found != current and on_progress is not None:
                on_progress(found)
            current = found
        return self._finished(job_id, deadline, poll_seconds)

    def _follow_events(self, job_id: str, seen: list[models.JobProgress],
                       on_progress: ProgressCallback | None,
                       deadline: float | None) -> models.JobProgress:
        """Follow the event stream until ``done``, appending what it shows to ``seen``;
        :class:`_StreamLost` when it cannot be had or ends early (the caller polls then)."""
        current = seen[-1]
        state = current.model_dump()
        # The server writes a comment every 15 s of quiet: a read waiting much longer than
        # that is a stream some proxy holds back.
        timeout = httpx.Timeout(self._http.timeout.connect, read=45.0)
        try:
            with self._http.stream("GET", f"/v1/renders/{job_id}/events",
                                   timeout=timeout) as response:
                if response.is_error or not response.headers.get(
                        "content-type", "").startswith("text/event-stream"):
                    raise _StreamLost
                for event in _server_sent_events(response.iter_lines()):
                    if deadline is not None and time.monotonic() > deadline:
                        raise WaitTimeout(f"render {job_id} still {current.state} after the "
                                          "time given to wait")
                    kind = event.get("event")
                    if kind == "state":
                        state.update(state=event["state"], step=event["step"])
                    elif kind == "progress":
                        state.update(percent=event["percent"], frames=event["frames"],
                                     eta_seconds=event.get("eta_seconds"))
                    elif kind == "done":
                        state.update(state=event["state"])
                    else:
                        continue
                    found = models.JobProgress.model_validate(state)
                    if found != current and on_progress is not None:
                        on_progress(found)
                    current = found
                    seen.append(current)
                    if kind == "done":
                        return current
        except (httpx.TransportError, ValueError, KeyError, pydantic.ValidationError):
            raise _StreamLost from None
        raise _StreamLost

    def _finished(self, job_id: str, deadline: float | None, poll_seconds: float) -> models.Job:
        """The finished render; a succeeded render is shown once its export is (the
        export row is written with the state, but a stream may run a moment ahead), or
        without it after a few tries (its export was deleted since)."""
        for _ in range(_EXPORT_TRIES):
            job = self.render(job_id)
            if not (job.state == "succeeded" and job.kind == "render" and job.export is None):
                break
            _sleep(poll_seconds, deadline, job_id)
        return job

    # -- exports -----------------------------------------------------------------------------

    def exports(self, *, project_id: str | None = None) -> list[models.Export]:
        path = f"/v1/projects/{project_id}/exports" if project_id else "/v1/exports"
        return self._list(models.Export, path)

    def export(self, export_id: str) -> models.Export:
        return self._get(models.Export, f"/v1/exports/{export_id}")

    def extend_export(self, export_id: str, days: float) -> models.Export:
        body = models.ExtendIn(days=days)
        return self._send(models.Export, "POST", f"/v1/exports/{export_id}/extend",
                          body.model_dump())

    def export_link(self, export_id: str) -> models.Link:
        """A short-lived download link that needs no API key."""
        return self._send(models.Link, "POST", f"/v1/exports/{export_id}/link")

    def delete_export(self, export_id: str) -> None:
        self._request("DELETE", f"/v1/exports/{export_id}")

    def download(self, export: models.Job | models.Export | str, target: Path) -> Path:
        """The video into ``target``: written beside it under a temporary name and renamed
        into place once complete, so ``target`` is never a partial file. Its size is
        checked against the export's."""
        if isinstance(export, models.Job):
            if export.export is None:
                raise ClientError(f"render {export.id} has no export (it is {export.state})")
            export = export.export
        if isinstance(export, str):
            export = self.export(export)
        return self._download(f"/v1/exports/{export.id}/file", target, export.size)

    def _download(self, path: str, target: Path, size: int | None) -> Path:
        target = Path(target)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                             dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                try:
                    with self._http.stream("GET", path, follow_redirects=True) as response:
                        if response.is_error:
                            response.read()
                            raise _error(response)
                        for chunk in response.iter_bytes(1 << 20):
                            out.write(chunk)
                except httpx.TransportError as exc:
                    raise ServerUnreachable(f"GET {self.url}{path}: {exc}") from exc
                out.flush()
                os.fsync(out.fileno())
                written = out.tell()
            if size is not None and written != size:
                raise ClientError(f"{path}: got {written} bytes, expected {size}")
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return target


    # -- batches -----------------------------------------------------------------------------

    def create_batch(self, template_id: str, rows: Sequence[Mapping[str, Any]] | None = None,
                     *, csv: Path | bytes | None = None, mode: Literal["skip", "refuse"] = "skip",
                     options: models.RenderOptions | Mapping[str, Any] | None = None,
                     priority: int = 0, notify_url: str | None = None,
                     idempotency_key: str | None = None) -> models.Batch:
        """Render the template once per row: ``rows`` (objects of variable -> value) or a
        CSV file (a path, streamed from disk, or its bytes) whose header names the
        variables. Bad rows are skipped and listed in ``skipped`` (``mode="skip"``) or
        refuse the batch (``"refuse"``: :class:`Invalid`, ``details`` lists every one)."""
        if (rows is None) == (csv is None):
            raise ValueError("give rows or csv")
        path = f"/v1/templates/{template_id}/batches"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        chosen = _options(options)
        if rows is not None:
            body = models.BatchIn(rows=[dict(r) for r in rows], mode=mode, options=chosen,
                                  priority=priority, notify_url=notify_url)
            return _parse(models.Batch, self._request(
                "POST", path, json=body.model_dump(exclude_none=True), headers=headers))
        query = {"mode": mode, "priority": priority, "notify_url": notify_url,
                 **chosen.model_dump(exclude_none=True)}
        headers["Content-Type"] = "text/csv"
        content: bytes | Iterator[bytes] = csv if isinstance(csv, bytes) else _chunks(Path(
            str(csv)))
        return _parse(models.Batch, self._request("POST", path, content=content,
                                                  params=_params(query), headers=headers))

    def batch(self, batch_id: str) -> models.Batch:
        return self._get(models.Batch, f"/v1/batches/{batch_id}")

    def batches(self, *, limit: int = 50, before: str | None = None) -> models.BatchPage:
        """One page of batches, newest first (``page.next`` is the ``before`` of the next)."""
        return self._get(models.BatchPage, "/v1/batches", limit=limit, before=before)

    def batch_jobs(self, batch_id: str, *, limit: int = 50,
                   after: int = 0) -> models.BatchJobPage:
        """One page of the rows' current jobs, by row (``page.next`` is the next ``after``)."""
        return self._get(models.BatchJobPage, f"/v1/batches/{batch_id}/jobs", limit=limit,
                         after=after)

    def cancel_batch(self, batch_id: str) -> models.Batch:
        return self._send(models.Batch, "POST", f"/v1/batches/{batch_id}/cancel")

    def retry_batch(self, batch_id: str) -> models.Batch:
        """A new attempt of every row that failed or was cancelled."""
        return self._send(models.Batch, "POST", f"/v1/batches/{batch_id}/retry")

    def batch_manifest(self, batch_id: str) -> models.Manifest:
        """Every row: its job, state, error and a signed download link."""
        return self._get(models.Manifest, f"/v1/batches/{batch_id}/manifest", format="json")

    def download_batch_archive(self, batch_id: str, target: Path) -> Path:
        """The ZIP of the batch's videos and manifest.csv into ``target`` (atomically)."""
        return self._download(f"/v1/batches/{batch_id}/archive", target, None)

    def wait_batch(self, batch_id: str, *,
                   on_progress: Callable[[models.BatchProgress], None] | None = None,
                   timeout: float | None = None, poll_seconds: float = 1.0) -> models.Batch:
        """Wait until no row of the batch is left to finish and return it. Follows the
        batch's live events (``on_progress`` gets each); polls when the stream cannot be
        had."""
        deadline = None if timeout is None else time.monotonic() + timeout
        current = self.batch(batch_id)  # NotFound now, not inside a stream
        if not current.finished:
            with contextlib.suppress(_StreamLost):  # then polled
                self._follow_batch(batch_id, on_progress, deadline)
        current = self.batch(batch_id)
        while not current.finished:
            _sleep(poll_seconds, deadline, batch_id)
            current = self.batch(batch_id)
            if on_progress is not None:
                on_progress(models.BatchProgress.model_validate(current.model_dump()))
        return current

    def _follow_batch(self, batch_id: str,
                      on_progress: Callable[[models.BatchProgress], None] | None,
                      deadline: float | None) -> None:
        timeout = httpx.Timeout(self._http.timeout.connect, read=45.0)
        try:
            with self._http.stream("GET", f"/v1/batches/{batch_id}/events",
                                   timeout=timeout) as response:
                if response.is_error or not response.headers.get(
                        "content-type", "").startswith("text/event-stream"):
                    raise _StreamLost
                for event in _server_sent_events(response.iter_lines()):
                    if deadline is not None and time.monotonic() > deadline:
                        raise WaitTimeout(f"batch {batch_id} not finished within the time "
                                          "given to wait")
                    if event.get("event") not in ("progress", "done"):
                        continue
                    found = models.BatchProgress.model_validate(event)
                    if on_progress is not None and event["event"] == "progress":
                        on_progress(found)
                    if event["event"] == "done":
                        return
        except (httpx.TransportError, ValueError, KeyError, pydantic.ValidationError):
            raise _StreamLost from None
        raise _StreamLost


# -- helpers ----------------------------------------------------------------------------------


class _StreamLost(Exception):
    """The event stream could not be had, or ended before ``done``."""


_Uploaded = pydantic.RootModel[list[models.UploadedAsset]]
_EXPORT_TRIES = 10


def _parse(model: type[M], response: httpx.Response) -> M:
    """The answer as ``model``; an answer of another shape is the client's failure (a
    proxy's page, a server of another version), not a pydantic error."""
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise ClientError(f"{response.request.method} {response.request.url.path}: an answer "
                          f"the client does not understand ({exc.error_count()} problem(s): "
                          f"{exc.errors()[0]['msg']})") from None


def _params(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _options(given: models.RenderOptions | Mapping[str, Any] | None) -> models.RenderOptions:
    if given is None:
        return models.RenderOptions()
    if isinstance(given, models.RenderOptions):
        return given
    return models.RenderOptions.model_validate(dict(given))


def _sleep(seconds: float, deadline: float | None, job_id: str) -> None:
    if deadline is not None and time.monotonic() + seconds > deadline:
        raise WaitTimeout(f"render {job_id} did not finish within the time given to wait")
    time.sleep(seconds)


def _server_sent_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON data of each event of a text/event-stream, and ``{}`` for each keep-alive
    comment (so a quiet stream still lets its reader look at the clock)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield json.loads("\n".join(data))
                data.clear()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith(":"):
            yield {}
        # "event:" repeats the JSON's "event".


def _chunks(path: Path, size: int = 1 << 16) -> Iterator[bytes]:
    """A file's bytes a piece at a time (an upload streamed from disk)."""
    with path.open("rb") as stream:
        while chunk := stream.read(size):
            yield chunk
