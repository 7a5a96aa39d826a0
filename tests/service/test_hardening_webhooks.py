"""Webhooks, hardened: every malformed target is a 422 (never a 500), IPv6 forms that carry
a private IPv4 address are refused, failures show a class and not the remote's details, and
one tenant's stalled receiver does not hold up another tenant's calls."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from framefarm import webhooks
from framefarm.application import webhooks as outbox
from support.api import assert_error, bearer
from support.documents import simple_doc
from support.farm import Farm
from support.polling import wait_for
from support.receiver import Receiver

MALFORMED = [
    "http://example.com:99999/hook",  # port out of range
    "http://example.com:abc/hook",  # port not a number
    "http://example.com:0/hook",
    "http://example.com/hook\r\nX-Injected: 1",  # CRLF
    "http://exa mple.com/hook",  # whitespace
    "http://example.com/\x00",  # control character
    "http://[::1/hook",  # unclosed IPv6 literal
    "http://[not-an-address]/hook",
    "http:///hook",  # no host
    "http://user:pw@example.com/hook",  # user info (refused: see webhooks.py)
    "http://" + "a" * 64 + ".example.com/hook",  # a label over 63 characters
    "http://" + "abcdefghi." * 26 + "com/hook",  # a host over 253 characters
    "http://2130706433/hook",  # 127.0.0.1 in disguise
    "http://0x7f.1/hook",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://ex\u00e4mple.com/hook",  # not ASCII
]

EMBEDDED_PRIVATE = [
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "http://[::ffff:10.0.0.1]/hook",
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[2002:c0a8:101::1]/hook",  # 6to4 of 192.168.1.1
    "http://[fe80::1]/hook",
    "http://[::1]/hook",
]


def _refused_everywhere(farm: Farm, key: str, url: str) -> None:
    c = farm.client
    assert_error(c.post("/v1/webhooks", headers=bearer(key), json={"url": url}), 422)
    assert_error(c.post("/v1/renders", headers=bearer(key),
                        json={"document": simple_doc(1.0), "notify_url": url}), 422)


def test_malformed_targets_are_422_not_500(farm: Farm) -> None:
    key = farm.tenant("acme")
    for url in MALFORMED:
        _refused_everywhere(farm, key, url)


def test_ipv6_forms_that_embed_a_private_ipv4_address_are_refused(farm: Farm) -> None:
    key = farm.tenant("acme")
    for url in EMBEDDED_PRIVATE:
        _refused_everywhere(farm, key, url)


@pytest.mark.parametrize("url", ["http://[2606:4700::1111]/hook", "https://1.1.1.1:8443/h?x=1",
                                 "http://[64:ff9b::101:101]/hook"])
def test_public_literals_pass_the_check(url: str) -> None:
    target = webhooks.check_url(url, allow_private=False)
    assert target.scheme in ("http", "https")


def test_malformed_urls_raise_only_unsafe_target() -> None:
    """Whatever a tenant sends, the check raises UnsafeTarget (422), never ValueError."""
    for url in [*MALFORMED, *EMBEDDED_PRIVATE, "http://[", "http://:80", "://x", "",
                "http://a..b/", "https://[::1]:99999/"]:
        with pytest.raises(webhooks.UnsafeTarget):
            webhooks.check_url(url, allow_private=False)


# -- what a failed call shows -----------------------------------------------------------------


def _cancelled_job(farm: Farm, key: str) -> str:
    """A job cancelled before any node took it: one render.cancelled delivery per hook."""
    job = farm.submit(key, {"document": simple_doc(1.0)})
    response = farm.client.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key))
    assert response.status_code == 200, response.text
    return str(job["id"])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_failed_call_shows_a_class_not_the_remote_details(
        make_farm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "FIRST_RETRY_SECONDS", 3600.0)
    farm: Farm = make_farm(webhook_allow_private=True)
    c, key = farm.client, farm.tenant("acme")
    port = _closed_port()
    c.post("/v1/webhooks", headers=bearer(key),
           json={"url": f"http://127.0.0.1:{port}/hook", "events": ["render.cancelled"]})
    job_id = _cancelled_job(farm, key)
    delivery = wait_for(lambda: [d for d in c.get(
        f"/v1/renders/{job_id}/deliveries", headers=bearer(key)).json()
        if d["attempts"] >= 1] or None, timeout=20, what="the failed attempt")[0]
    assert delivery["last_status"] is None
    assert delivery["last_error"] == "connect failed", delivery


# -- one tenant's stalled receiver ------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


class Stalled:
    """A target that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        """Reset the waiting calls."""
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def stalled() -> Iterator[Stalled]:
    found = Stalled()
    yield found
    found.close()


def test_a_stalled_tenant_does_not_delay_another_tenants_calls(
        make_farm: Any, receiver: Receiver, stalled: Stalled) -> None:
    farm: Farm = make_farm(webhook_allow_private=True)
    c = farm.client
    slow, fast = farm.tenant("slow"), farm.tenant("fast")
    for key, url in ((slow, stalled.url), (fast, receiver.url)):
        response = c.post("/v1/webhooks", headers=bearer(key),
                          json={"url": url, "events": ["render.cancelled"]})
        assert response.status_code == 201, response.text
    for _ in range(6):
        _cancelled_job(farm, slow)
    try:
        # The stalled target holds a call before the other tenant's job finishes.
        wait_for(lambda: stalled.accepted or None, timeout=10, what="a stalled call")
        started = time.monotonic()
        _cancelled_job(farm, fast)
        wait_for(lambda: receiver.arrived or None, timeout=8, what="the other tenant's call")
        # The upkeep loop runs every 2 s here; before, this waited for 6 x 10 s of timeouts.
        assert receiver.arrived[0] - started < 6.0
        # At most two calls of one tenant in flight.
        assert len(stalled.accepted) <= outbox.PER_TENANT
    finally:
        stalled.close()
        farm.svc.webhooks.wait_idle(15) if hasattr(farm.svc.webhooks, "wait_idle") else None
