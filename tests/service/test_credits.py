"""Credits: a render reserves its estimate when it is queued, is charged for what it made
when it finishes (succeeded, cancelled, failed at a node, after a lost node, after a
server restart), and the rest is refunded; a balance that cannot pay is refused with 402,
never overspent by concurrent submits. After every test each tenant's balance is the sum
of its ledger (the autouse check)."""

from __future__ import annotations

import concurrent.futures
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from framefarm import application, protocol
from framefarm.api.app import create_app
from framefarm.ffmpeg import runner
from framefarm.queue.errors import InsufficientCredits
from support.api import assert_error, bearer, wait_job
from support.documents import simple_doc
from support.farm import Farm
from support.media import write_fake_ffmpeg
from support.polling import wait_for

RATE = 10  # credits per output second in these tests' plans


_FARMS: list[Farm] = []  # the farms this test made tenants on (tenant_with_credits)


def check_ledgers(farm: Farm) -> None:
    """Every tenant's balance is the sum of its ledger, and none is negative, nor ever
    was (every ledger row's balance_after)."""
    for tenant in farm.svc.accounts.list_tenants():
        balance, total = farm.svc.usage.ledger_total(tenant.id)
        assert (balance or 0) == total, (tenant.name, balance, total)
        entries = farm.svc.usage.ledger(tenant.id, limit=1000)
        assert all(e.balance_after >= 0 for e in entries), entries


@pytest.fixture(autouse=True)
def ledger_balances(make_farm: Any) -> Iterator[None]:
    """After every test (before its farms close: this fixture is set up after
    make_farm), the ledgers of its farms add up."""
    _FARMS.clear()
    yield
    for farm in _FARMS:
        check_ledgers(farm)
    _FARMS.clear()


def tenant_with_credits(farm: Farm, name: str, credits: int,
                        **plan: Any) -> tuple[str, str]:
    """A tenant (its key and id) with ``credits`` and a plan at RATE credits a second."""
    if farm not in _FARMS:
        _FARMS.append(farm)
    key = farm.tenant(name)
    tenant_id = farm.client.get("/v1/me", headers=bearer(key)).json()["tenant_id"]
    response = farm.client.put(f"/v1/admin/tenants/{tenant_id}/plan", headers=farm.admin,
                               json={"credits_per_second": RATE, **plan})
    assert response.status_code == 200, response.text
    if credits:
        response = farm.client.post(f"/v1/admin/tenants/{tenant_id}/credits",
                                    headers=farm.admin, json={"amount": credits,
                                                              "note": "test grant"})
        assert response.status_code == 201, response.text
        assert response.json()["balance"] == credits
    return key, tenant_id


def balance(farm: Farm, key: str) -> int | None:
    response = farm.client.get("/v1/usage", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()["balance"]  # type: ignore[no-any-return]


def ledger(farm: Farm, tenant_id: str) -> list[dict[str, Any]]:
    response = farm.client.get(f"/v1/admin/tenants/{tenant_id}/ledger", headers=farm.admin)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()))  # oldest first


def job_rows(entries: list[dict[str, Any]], job_id: str) -> list[tuple[str, int]]:
    return [(e["kind"], e["amount"]) for e in entries if e["job_id"] == job_id]


# -- reserve and settle -------------------------------------------------------------------------


def test_a_render_reserves_its_estimate_and_is_charged_it_on_success(farm: Farm) -> None:
    key, tenant_id = tenant_with_credits(farm, "acme", 1000)
    job = farm.submit(key, {"document": simple_doc(2.0)})  # 60 frames at 30 fps
    assert job["credits"] == {"reserved": 2 * RATE, "charged": 0, "refunded": 0,
                              "settled": False, "credits_per_second": RATE}
    assert balance(farm, key) == 1000 - 2 * RATE
    farm.start_nodes(1)
    done = wait_job(farm.client, key, job["id"])
    assert done["state"] == "succeeded", done
    assert done["credits"] == {"reserved": 2 * RATE, "charged": 2 * RATE, "refunded": 0,
                               "settled": True, "credits_per_second": RATE}
    assert balance(farm, key) == 1000 - 2 * RATE
    entries = ledger(farm, tenant_id)
    assert [(e["kind"], e["amount"]) for e in entries] == [
        ("grant", 1000), ("reserve", -2 * RATE), ("settle", 0)]
    assert [e["balance_after"] for e in entries] == [1000, 980, 980]
    assert entries[0]["note"] == "test grant"


def test_the_price_tier_follows_the_output_size(farm: Farm) -> None:
    """360p output inside the 360p tier (3 credits a second), 720p inside the 1080p tier
    (7 a second); 1.5 s at 3/s is 4.5, rounded up to 5."""
    key, _ = tenant_with_credits(farm, "tiers", 100, tiers={"360p": 3, "1080p": 7})
    small = farm.submit(key, {"document": simple_doc(1.5)})
    large = farm.submit(key, {"document": simple_doc(1.0, size="720p")})
    assert small["credits"]["reserved"] == math.ceil(1.5 * 3)
    assert (small["credits"]["credits_per_second"], large["credits"]["credits_per_second"]) \
        == (3, 7)
    assert large["credits"]["reserved"] == 7
    assert balance(farm, key) == 100 - 5 - 7


def test_cancel_of_a_queued_render_refunds_everything(farm: Farm) -> None:
    key, tenant_id = tenant_with_credits(farm, "acme", 100)
    job = farm.submit(key, {"document": simple_doc(3.0)})
    assert balance(farm, key) == 100 - 3 * RATE
    response = farm.client.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key))
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["credits"] == {"reserved": 30, "charged": 0, "refunded": 30,
                                    "settled": True, "credits_per_second": RATE}
    assert balance(farm, key) == 100
    assert job_rows(ledger(farm, tenant_id), job["id"]) == [("reserve", -30), ("refund", 30)]
    # Cancelling again changes nothing (409, no second refund).
    assert_error(farm.client.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key)),
                 409)
    assert balance(farm, key) == 100


def _claim(agent: Any) -> dict[str, Any]:
    response = agent._request("POST", "/internal/tasks/claim", patience=0)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cancel_after_a_chunk_charges_the_chunk_and_refunds_the_rest(
        make_farm: Any) -> None:
    """Chunks and the audio mix; one node renders the first chunk (its report driven here
    by hand) while the other holds the audio, then the render is cancelled: charged for
    that chunk's frames, the rest refunded."""
    farm = make_farm(min_chunk_seconds=1.0)
    key, tenant_id = tenant_with_credits(farm, "acme", 500)
    first, second = farm.agent("first"), farm.agent("second")  # two online: more chunks
    job = farm.submit(key, {"document": simple_doc(3.0)})  # 90 frames, 30 credits
    assert _claim(second)["kind"] == "audio"  # claimed first; it never reports
    task = _claim(first)
    assert task["kind"] == "render" and task["idx"] == 1, task
    start, end = task["frames"]
    assert 0 < end - start < 90, task
    route, lease = f"/internal/tasks/{task['task_id']}", task["lease_token"]
    part = farm.tmp / "part.mp4"
    part.write_bytes(b"not really a video")
    uploaded = first._request("PUT", f"{route}/output", lease=lease, params={"ext": "mp4"},
                              upload=part)
    body = protocol.CompleteRequest(lease_token=lease, cpu_seconds=0.5,
                                    output_key=uploaded.json()["output_key"])
    assert first._request("POST", f"{route}/complete", body=body).status_code == 200
    cancelled = farm.client.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key))
    assert cancelled.status_code == 200, cancelled.text
    charged = math.ceil((end - start) * RATE / 30)
    assert cancelled.json()["credits"] == {"reserved": 30, "charged": charged,
                                           "refunded": 30 - charged, "settled": True,
                                           "credits_per_second": RATE}
    assert balance(farm, key) == 500 - charged
    assert job_rows(ledger(farm, tenant_id), job["id"]) == [("reserve", -30),
                                                            ("refund", 30 - charged)]
    usage = farm.client.get("/v1/usage", headers=bearer(key)).json()["totals"]
    assert usage["frames"] == end - start and usage["cpu_seconds"]["render"] == 0.5, usage


def test_a_render_that_fails_at_the_node_is_refunded(
        make_farm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's FFmpeg exits 1 (as in the fault tests' broken node) and a task may be
    tried once: the job fails at the node with nothing rendered, everything is refunded,
    and the node's CPU for the attempt is recorded."""
    farm = make_farm(max_attempts=1)
    key, tenant_id = tenant_with_credits(farm, "acme", 100)
    job = farm.submit(key, {"document": simple_doc(1.0)})
    assert job["credits"]["reserved"] == RATE
    broken = write_fake_ffmpeg(tmp_path / "broken-ffmpeg",
                               'echo "credits-test: encoder exploded" >&2\nexit 1')
    monkeypatch.setenv("FRAMEFARM_FFMPEG", str(broken))
    runner.ffmpeg_binary.cache_clear()  # the binary is looked up once per process
    try:
        farm.start_nodes(1)
        done = wait_job(farm.client, key, job["id"])
        farm.stop_nodes()
    finally:
        monkeypatch.undo()
        runner.ffmpeg_binary.cache_clear()
    assert done["state"] == "failed" and "exited with code 1" in done["error"], done
    assert done["credits"] == {"reserved": RATE, "charged": 0, "refunded": RATE,
                               "settled": True, "credits_per_second": RATE}
    assert balance(farm, key) == 100
    assert job_rows(ledger(farm, tenant_id), job["id"]) == [("reserve", -RATE),
                                                            ("refund", RATE)]
    totals = farm.client.get("/v1/usage", headers=bearer(key)).json()["totals"]
    assert totals["frames"] == 0 and totals["credits_charged"] == 0, totals
    assert totals["credits_refunded"] == RATE, totals


def test_a_lost_node_requeues_without_a_second_charge(make_farm: Any) -> None:
    """A node claims the only chunk and vanishes: its lease (1 s) expires, the chunk is
    requeued, a live node renders the job, and the job is reserved and settled once."""
    farm = make_farm(lease_seconds=1.0, min_chunk_seconds=60)
    key, tenant_id = tenant_with_credits(farm, "acme", 100)
    lost = farm.agent("lost")
    job = farm.submit(key, {"document": simple_doc(1.0)})
    assert _claim(lost)["kind"] in ("render", "audio")

    def requeued() -> bool:
        logs = farm.client.get(f"/v1/renders/{job['id']}/logs", headers=bearer(key)).json()
        return any("requeued: lease expired" in line["message"] for line in logs)

    wait_for(requeued, timeout=30, what="the lost node's lease to expire")
    assert balance(farm, key) == 100 - RATE  # still reserved, not charged again
    farm.start_nodes(1)
    done = wait_job(farm.client, key, job["id"])
    assert done["state"] == "succeeded", done
    assert done["credits"]["charged"] == RATE and done["credits"]["refunded"] == 0
    assert job_rows(ledger(farm, tenant_id), job["id"]) == [("reserve", -RATE),
                                                            ("settle", 0)]
    assert balance(farm, key) == 100 - RATE


def test_a_render_queued_before_a_restart_settles_after_it(farm: Farm) -> None:
    """The reservation is in the database: a new server over the same database (and data
    folder) runs the queued render and settles it once."""
    key, tenant_id = tenant_with_credits(farm, "acme", 100)
    job = farm.submit(key, {"document": simple_doc(2.0)})
    farm.close()  # the first server stops (the fixture's close after the test is a no-op)
    svc = application.build(farm.settings)
    app = create_app(farm.settings, svc)
    client = TestClient(app)
    client.__enter__()
    again = Farm(farm.backend, farm.settings, svc, app, client, farm.admin_key, farm.tmp)
    _FARMS[:] = [again]
    try:
        assert balance(again, key) == 100 - 2 * RATE
        again.start_nodes(1)
        done = wait_job(client, key, job["id"])
        assert done["state"] == "succeeded", done
        assert done["credits"]["charged"] == 2 * RATE
        assert job_rows(ledger(again, tenant_id), job["id"]) == [("reserve", -2 * RATE),
                                                                 ("settle", 0)]
        balance_now, total = svc.usage.ledger_total(tenant_id)
        assert balance_now == total == 100 - 2 * RATE
        check_ledgers(again)
        _FARMS.clear()
    finally:
        again.close()


# -- refusals -----------------------------------------------------------------------------------


def test_a_short_balance_is_refused_with_402_saying_what_is_needed(farm: Farm) -> None:
    key, tenant_id = tenant_with_credits(farm, "acme", 25)
    response = farm.client.post("/v1/renders", json={"document": simple_doc(3.0)},
                                headers=bearer(key))
    error = assert_error(response, 402, "insufficient_credits")
    assert "needs 30 credits" in error["message"] and "balance is 25" in error["message"]
    assert error["details"] == {"needed": 30, "balance": 25, "short": 5,
                                "credits_per_second": RATE}
    assert balance(farm, key) == 25
    assert farm.client.get("/v1/renders", headers=bearer(key)).json()["items"] == []
    assert [e["kind"] for e in ledger(farm, tenant_id)] == ["grant"]


def test_a_tenant_without_credits_is_not_metered(farm: Farm) -> None:
    key, tenant_id = tenant_with_credits(farm, "free", 0)
    job = farm.submit(key, {"document": simple_doc(1.0)})
    assert job["credits"]["reserved"] == 0 and balance(farm, key) is None
    assert ledger(farm, tenant_id) == []


def test_a_batch_short_of_credits_is_refused_as_a_whole(farm: Farm) -> None:
    """Two rows of 10 credits against 15: the batch and both its jobs are refused in one
    transaction; nothing is reserved."""
    key, tenant_id = tenant_with_credits(farm, "acme", 15)
    renders = farm.svc.renders
    items = []
    for row in (1, 2):
        prepared = renders.prepare(tenant_id, document=simple_doc(1.0), online_nodes=1)
        items.append((dict(prepared.columns, batch_row=row), prepared.plan))
    batch = {"id": "bat_credits0000001", "tenant_id": tenant_id, "template_id": "tpl_none",
             "project_id": None, "mode": "skip", "options": {}, "priority": 0,
             "rows_total": 2, "skipped": [], "idempotency_key": None, "notify_url": None}
    with pytest.raises(InsufficientCredits, match=r"needs 10 credits.*balance is 5"):
        farm.svc.ctx.queue.submit_batch(batch, items)
    assert balance(farm, key) == 15
    assert farm.client.get("/v1/renders", headers=bearer(key)).json()["items"] == []
    assert [e["kind"] for e in ledger(farm, tenant_id)] == ["grant"]


def test_concurrent_submits_never_overspend(farm: Farm) -> None:
    """Twelve submits of 10 credits at once against 30: exactly three are queued, the
    other nine get 402, and the balance ends at 0, never below."""
    key, tenant_id = tenant_with_credits(farm, "racer", 30)
    start = threading.Barrier(12)

    def submit(_: int) -> int:
        start.wait(timeout=30)
        return farm.client.post("/v1/renders", json={"document": simple_doc(1.0)},
                                headers=bearer(key)).status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(submit, range(12)))
    assert statuses == [202] * 3 + [402] * 9, statuses
    assert balance(farm, key) == 0
    entries = ledger(farm, tenant_id)
    assert [e["kind"] for e in entries] == ["grant"] + ["reserve"] * 3
    assert [e["balance_after"] for e in entries] == [30, 20, 10, 0]


def test_admin_credit_changes_are_checked(farm: Farm) -> None:
    key, tenant_id = tenant_with_credits(farm, "acme", 10)
    c, route = farm.client, f"/v1/admin/tenants/{tenant_id}/credits"
    assert_error(c.post(route, json={"amount": 0}, headers=farm.admin), 422)
    assert_error(c.post(route, json={"amount": "5"}, headers=farm.admin), 422)
    assert_error(c.post(route, json={"amount": -11}, headers=farm.admin), 409)
    taken = c.post(route, json={"amount": -4, "note": "correction"}, headers=farm.admin)
    assert taken.status_code == 201 and taken.json()["entry"]["kind"] == "adjust"
    assert balance(farm, key) == 6
    assert_error(c.post(route, json={"amount": 5}, headers=bearer(key)), 403)
    assert_error(c.post("/v1/admin/tenants/ten_nope/credits", json={"amount": 5},
                        headers=farm.admin), 404)
    assert_error(c.get("/v1/admin/tenants/ten_nope/ledger", headers=farm.admin), 404)
