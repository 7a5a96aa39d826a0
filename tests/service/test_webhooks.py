"""Webhooks: signed, retried, visible, and never sent inside the network unless allowed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from framefarm import webhooks
from framefarm.application import webhooks as outbox
from support.api import assert_error, bearer, wait_job
from support.documents import simple_doc
from support.farm import Farm
from support.polling import wait_for
from support.receiver import Receiver


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setattr(outbox, "FIRST_RETRY_SECONDS", 0.2)  # seconds, not minutes
    found = Receiver(failures=1)
    yield found
    found.close()


@pytest.mark.ffmpeg
def test_notify_url_is_called_signed_and_retried(make_farm: Any, receiver: Receiver) -> None:
    farm: Farm = make_farm(webhook_allow_private=True)
    c, key = farm.client, farm.tenant("acme")
    farm.start_nodes(1)
    job = farm.submit(key, {"document": simple_doc(1.0), "notify_url": receiver.url})
    assert wait_job(c, key, job["id"])["state"] == "succeeded"
    wait_for(lambda: len(receiver.calls) >= 2 or None, timeout=20, what="the retried call")

    headers, body = receiver.calls[-1]
    secret = c.get("/v1/webhooks", headers=bearer(key)).json()["notify_url_secret"]
    assert webhooks.verify(secret, body, headers["Framefarm-Signature"])
    assert not webhooks.verify(secret, body + b" ", headers["Framefarm-Signature"])
    payload = json.loads(body)
    assert payload["event"] == headers["Framefarm-Event"] == "render.succeeded"
    assert payload["job"]["id"] == job["id"] and payload["job"]["export"] is not None
    assert "/download?expires=" in payload["download_url"]

    deliveries = wait_for(lambda: [d for d in c.get(
        f"/v1/renders/{job['id']}/deliveries", headers=bearer(key)).json()
        if d["state"] == "delivered"] or None, timeout=10, what="the delivered state")
    assert deliveries[0]["attempts"] == 2 and deliveries[0]["last_status"] == 200


@pytest.mark.ffmpeg
def test_tenant_webhooks_hear_cancellations(make_farm: Any, receiver: Receiver) -> None:
    farm: Farm = make_farm(webhook_allow_private=True)
    c, key = farm.client, farm.tenant("acme")
    hook = c.post("/v1/webhooks", headers=bearer(key),
                  json={"url": receiver.url, "events": ["render.cancelled"]}).json()
    job = farm.submit(key, {"document": simple_doc(1.0)})  # no nodes: stays queued
    assert c.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key)).status_code == 200
    wait_for(lambda: len(receiver.calls) >= 2 or None, timeout=20, what="the webhook")
    headers, body = receiver.calls[-1]
    assert json.loads(body)["event"] == "render.cancelled"
    assert webhooks.verify(hook["secret"], body, headers["Framefarm-Signature"])


def test_private_targets_are_refused_by_default(make_farm: Any) -> None:
    farm: Farm = make_farm()
    c, key = farm.client, farm.tenant("acme")
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "ftp://example.com/x"):
        assert_error(c.post("/v1/webhooks", headers=bearer(key), json={"url": url}), 422)
        response = c.post("/v1/renders", headers=bearer(key),
                          json={"document": simple_doc(1.0), "notify_url": url})
        assert_error(response, 422)
