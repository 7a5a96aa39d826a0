"""The HTTP API as a test sees it: bearer headers, the one error shape, and waiting for a
job to finish (on any httpx client: a TestClient or a client of a real server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from support.polling import wait_for

FINISHED = ("succeeded", "failed", "cancelled")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, the expected status, and no stack trace."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    for marker in ("Traceback", 'File "', "site-packages", ".py\", line"):
        assert marker not in response.text, response.text
    return error


def finished(job: dict[str, Any]) -> bool:
    """Finished, and a succeeded render has its export: the service commits 'succeeded'
    a moment before it creates the export (test_a_succeeded_render_has_its_export)."""
    if job["state"] == "succeeded" and job["kind"] == "render":
        return job["export"] is not None
    return job["state"] in FINISHED


def wait_job(client: httpx.Client, key: str, job_id: str, *, timeout: float = 60.0,
             until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Poll GET /v1/renders/{id} until it finishes (or ``until`` holds)."""
    done = until or finished
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        response = client.get(f"/v1/renders/{job_id}", headers=bearer(key))
        assert response.status_code == 200, response.text
        last.update(response.json())
        return last if done(last) else None

    try:
        return wait_for(check, timeout=timeout, interval=0.1, what=f"job {job_id}")
    except AssertionError:
        logs = client.get(f"/v1/renders/{job_id}/logs", headers=bearer(key))
        raise AssertionError(f"job {job_id} did not get there: {last}\nlogs: "
                             f"{logs.text[-3000:]}") from None
