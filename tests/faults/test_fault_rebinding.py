"""DNS rebinding: a webhook host that resolves to a public address while it is checked and
to 127.0.0.1 a moment later must never be called on loopback. A tiny DNS server on
127.0.0.1 (pure Python, UDP, A records) answers a public address its first ``public``
times and 127.0.0.1 after that; a receiver on loopback must hear nothing, unless
FRAMEFARM_WEBHOOK_ALLOW_PRIVATE says loopback targets are fine."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from framefarm.application import webhooks as outbox
from support.api import bearer
from support.documents import simple_doc
from support.farm import Farm, clear_framefarm_env
from support.polling import wait_for
from support.receiver import Receiver

HOST = "hooks.rebind.test"
PUBLIC = "93.184.215.14"  # any globally routable address; nothing here answers on it


class RebindingDns:
    """Answers A queries for any name: PUBLIC for the first ``public`` queries, then
    127.0.0.1. Records every answer."""

    def __init__(self, public: int) -> None:
        self.public = public
        self.answers: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            with self.lock:
                address = PUBLIC if len(self.answers) < self.public else "127.0.0.1"
                self.answers.append(address)
            ident = query[:2]
            question = query[12:]  # qname, qtype, qclass
            header = ident + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            answer = struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(address)
            self.sock.sendto(header + question + answer, peer)

    def resolve(self, host: str, port: int) -> list[str]:
        """A stub resolver that asks this server (the injectable ``Resolver``)."""
        query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
        query += b"".join(bytes([len(label)]) + label.encode() for label in host.split("."))
        query += b"\x00" + struct.pack(">HH", 1, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            sock.sendto(query, ("127.0.0.1", self.port))
            reply = sock.recv(512)
        count = struct.unpack(">H", reply[6:8])[0]
        offset = len(query)  # the header and the question, echoed
        found = []
        for _ in range(count):
            kind, _, _, length = struct.unpack(">HHIH", reply[offset + 2:offset + 12])
            data = reply[offset + 12:offset + 12 + length]
            if kind == 1:
                found.append(socket.inet_ntoa(data))
            offset += 12 + length
        if not found:
            raise OSError(f"{host}: no address")
        return found

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "FIRST_RETRY_SECONDS", 0.2)
    monkeypatch.setattr(outbox, "CONNECT_SECONDS", 1.0, raising=False)


def system_dns_through(monkeypatch: pytest.MonkeyPatch, dns: RebindingDns) -> None:
    """The operating system's resolver, as every library calls it, answers HOST from the
    test's DNS server (other names as before)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                     (address, int(port or 0))) for address in dns.resolve(host, port)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _cancelled_job(farm: Farm, key: str, url: str) -> str:
    c = farm.client
    response = c.post("/v1/webhooks", headers=bearer(key),
                      json={"url": url, "events": ["render.cancelled"]})
    assert response.status_code == 201, response.text
    job = farm.submit(key, {"document": simple_doc(1.0)})  # no nodes: stays queued
    assert c.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key)).status_code == 200
    return str(job["id"])


def _deliveries(farm: Farm, key: str, job_id: str) -> list[dict[str, Any]]:
    response = farm.client.get(f"/v1/renders/{job_id}/deliveries", headers=bearer(key))
    assert response.status_code == 200, response.text
    return list(response.json())


def _assert_never_delivered(farm: Farm, dns: RebindingDns, receiver: Receiver) -> None:
    key = farm.tenant("acme")
    job_id = _cancelled_job(farm, key, f"http://{HOST}:{receiver.port}/hook")
    # Two attempts: the first resolved public (twice, before: for the check and for the
    # connect), the second after the name turned to loopback.
    wait_for(lambda: receiver.calls or (_deliveries(farm, key, job_id)[0]["attempts"] >= 2
                                        and len(dns.answers) >= 3) or None,
             timeout=30, what="two attempts, the name rebound to loopback")
    assert receiver.calls == [], "a webhook was delivered to loopback"
    delivery = _deliveries(farm, key, job_id)[0]
    assert delivery["state"] != "delivered" and delivery["last_status"] is None
    assert "127.0.0.1" not in (delivery["last_error"] or ""), delivery
    assert PUBLIC not in (delivery["last_error"] or ""), delivery


def test_rebinding_through_the_system_resolver_never_reaches_loopback(
        farm: Farm, receiver: Receiver, fast_retries: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    dns = RebindingDns(public=2)  # the subscription check, then one more
    try:
        system_dns_through(monkeypatch, dns)
        _assert_never_delivered(farm, dns, receiver)
    finally:
        dns.close()


def test_rebinding_through_an_injected_resolver_never_reaches_loopback(
        farm: Farm, receiver: Receiver, fast_retries: None) -> None:
    dns = RebindingDns(public=2)
    try:
        farm.svc.webhooks.resolve = dns.resolve
        _assert_never_delivered(farm, dns, receiver)
    finally:
        dns.close()


def test_with_private_targets_allowed_the_same_name_is_delivered_to(
        tmp_path: Path, receiver: Receiver, fast_retries: None,
        make_private_farm: Callable[[], Farm]) -> None:
    """The control: the DNS server and receiver above do reach loopback when allowed, with
    the name in the Host header."""
    dns = RebindingDns(public=0)
    try:
        farm = make_private_farm()
        farm.svc.webhooks.resolve = dns.resolve
        key = farm.tenant("acme")
        job_id = _cancelled_job(farm, key, f"http://{HOST}:{receiver.port}/hook")
        wait_for(lambda: _deliveries(farm, key, job_id)[0]["state"] == "delivered" or None,
                 timeout=20, what="the delivery")
        assert receiver.hosts == [f"{HOST}:{receiver.port}"]
    finally:
        dns.close()


@pytest.fixture
def make_private_farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        Callable[[], Farm]]:
    clear_framefarm_env(monkeypatch)
    made: list[Farm] = []

    def make() -> Farm:
        made.append(Farm.open("sqlite", tmp_path / "private", lease_seconds=10.0,
                              heartbeat_seconds=0.2, public_url="http://testserver",
                              webhook_allow_private=True))
        return made[-1]

    yield make
    for farm in made:
        farm.close()
