"""Usage and plans: what ``GET /v1/usage`` (and the admin's usage) reports matches what the
real nodes ran (frames, output seconds, CPU-seconds, bytes, credits); a plan's limits
refuse what is over them with a clear 4xx; the admin command line shows and changes
plans, credits and usage. After every test each tenant's balance is the sum of its
ledger (the autouse check)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

import framefarm
from framefarm import protocol
from framefarm.api import models
from support.api import assert_error, bearer, wait_job
from support.documents import simple_doc
from support.farm import Farm

_FARMS: list[Farm] = []


@pytest.fixture(autouse=True)
def ledger_balances(make_farm: Any) -> Iterator[None]:
    """After the test (before its farms close), every tenant's balance is the sum of its
    ledger and no ledger row left a balance below zero."""
    _FARMS.clear()
    yield
    for farm in _FARMS:
        for tenant in farm.svc.accounts.list_tenants():
            balance, total = farm.svc.usage.ledger_total(tenant.id)
            assert (balance or 0) == total, (tenant.name, balance, total)
            assert all(e.balance_after >= 0
                       for e in farm.svc.usage.ledger(tenant.id, limit=1000))
    _FARMS.clear()


def tenant(farm: Farm, name: str, credits: int = 0, **plan: Any) -> tuple[str, str]:
    """A tenant's key and id, with this plan and these credits."""
    if farm not in _FARMS:
        _FARMS.append(farm)
    key = farm.tenant(name)
    tenant_id = str(farm.client.get("/v1/me", headers=bearer(key)).json()["tenant_id"])
    if plan:
        response = farm.client.put(f"/v1/admin/tenants/{tenant_id}/plan", json=plan,
                                   headers=farm.admin)
        assert response.status_code == 200, response.text
    if credits:
        response = farm.client.post(f"/v1/admin/tenants/{tenant_id}/credits",
                                    json={"amount": credits}, headers=farm.admin)
        assert response.status_code == 201, response.text
    return key, tenant_id


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


# -- usage matches what ran ---------------------------------------------------------------------


def test_usage_reports_what_the_nodes_rendered(farm: Farm) -> None:
    key, tenant_id = tenant(farm, "acme", 1000, credits_per_second=4)
    other_key, other_id = tenant(farm, "other")
    first = farm.submit(key, {"document": simple_doc(1.0)})
    second = farm.submit(key, {"document": simple_doc(2.0)})
    theirs = farm.submit(other_key, {"document": simple_doc(1.0)})
    farm.start_nodes(2)
    done = [wait_job(farm.client, k, j["id"])
            for k, j in ((key, first), (key, second), (other_key, theirs))]
    assert [j["state"] for j in done] == ["succeeded"] * 3, done

    response = farm.client.get("/v1/usage", params={"from": today(), "to": today()},
                               headers=bearer(key))
    assert response.status_code == 200, response.text
    usage = models.Usage.model_validate(response.json())
    assert usage.balance == 1000 - 4 - 8 and usage.plan.credits_per_second == 4
    assert len(usage.days) == 1 and usage.days[0].day.isoformat() == today()
    day = usage.days[0]
    assert (day.jobs, day.frames, day.output_seconds) == (2, 90, 3.0), day
    assert day.bytes_stored == done[0]["export"]["size"] + done[1]["export"]["size"] > 0
    assert (day.credits_charged, day.credits_refunded) == (12, 0), day
    # The real node measured its CPU for every step it ran.
    assert day.cpu_seconds.render > 0 and day.cpu_seconds.assemble > 0, day.cpu_seconds
    assert day.cpu_seconds.audio >= 0 and day.cpu_seconds.snapshot == 0
    assert usage.totals.frames == 90 and usage.totals.jobs == 2

    # The client, typed with the API's model. Not closed: it shares the test client's
    # transport (the nodes' too), which closing it would close.
    client = framefarm.Client("http://testserver", key, transport=farm.client._transport)
    again = client.usage(dt.date.fromisoformat(today()), today())
    assert again.days == usage.days and again.balance == usage.balance

    # The admin sees every tenant, or one.
    everyone = farm.client.get("/v1/admin/usage", headers=farm.admin,
                               params={"from": today(), "to": today()})
    assert everyone.status_code == 200, everyone.text
    rows = {r["tenant_id"]: r for r in everyone.json()}
    assert set(rows) == {tenant_id, other_id}
    assert rows[other_id]["frames"] == 30 and rows[other_id]["credits_charged"] == 0
    assert rows[tenant_id] == response.json()["days"][0]
    one = farm.client.get("/v1/admin/usage", headers=farm.admin,
                          params={"tenant_id": other_id})
    assert [r["tenant_id"] for r in one.json()] == [other_id]
    assert_error(farm.client.get("/v1/admin/usage", headers=bearer(key)), 403)
    assert_error(farm.client.get("/v1/admin/usage", headers=farm.admin,
                                 params={"tenant_id": "ten_nope"}), 404)


def test_a_day_outside_the_range_is_not_reported(farm: Farm) -> None:
    key, _ = tenant(farm, "acme")
    farm.submit(key, {"document": simple_doc(1.0)})
    now = dt.datetime.now(dt.UTC).date()
    month_ago, yesterday = (now - dt.timedelta(days=30)), (now - dt.timedelta(days=1))
    found = farm.client.get("/v1/usage", params={"from": str(month_ago), "to": str(yesterday)},
                            headers=bearer(key)).json()
    assert found["days"] == [] and found["totals"]["jobs"] == 0, found
    queued = farm.client.get("/v1/usage", headers=bearer(key)).json()
    # Submitted today and not rendered yet: counted, nothing rendered or charged.
    assert queued["days"][0]["jobs"] == 1 and queued["days"][0]["frames"] == 0, queued


@pytest.mark.parametrize("params, where", [
    ({"from": "2026-13-01"}, "query.from"),
    ({"to": "yesterday"}, "query.to"),
    ({"from": ""}, "query.from"),
    ({"from": "2026-03-02", "to": "2026-03-01"}, "query.to"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "query.to"),
])
def test_bad_dates_are_refused_saying_which(farm: Farm, params: dict[str, str],
                                            where: str) -> None:
    key, _ = tenant(farm, "acme")
    error = assert_error(farm.client.get("/v1/usage", params=params, headers=bearer(key)),
                         422, "invalid_request")
    assert error["details"][0]["path"] == where, error
    assert_error(farm.client.get("/v1/admin/usage", params=params, headers=farm.admin), 422)


def test_a_node_that_reports_no_cpu_still_completes(farm: Farm) -> None:
    """An older node leaves cpu_seconds out of its reports: they are accepted."""
    key, _ = tenant(farm, "acme")
    job = farm.submit(key, {"document": simple_doc(1.0)})
    node = farm.agent("old")
    claimed = node._request("POST", "/internal/tasks/claim", patience=0).json()
    failed = node._request("POST", f"/internal/tasks/{claimed['task_id']}/fail",
                           body=protocol.FailRequest(lease_token=claimed["lease_token"],
                                                     error="an old node's failure"))
    assert failed.status_code == 200, failed.text
    assert wait_job(farm.client, key, job["id"], until=lambda j: True)["state"] != "failed"


# -- plan limits --------------------------------------------------------------------------------


def test_an_output_over_the_plans_resolution_is_refused(farm: Farm) -> None:
    key, _ = tenant(farm, "small", max_resolution="360p")
    assert farm.client.post("/v1/renders", json={"document": simple_doc(1.0)},
                            headers=bearer(key)).status_code == 202
    error = assert_error(farm.client.post(
        "/v1/renders", json={"document": simple_doc(1.0, size="720p")}, headers=bearer(key)),
        422, "resolution_over_plan")
    assert "1280x720" in error["message"] and "360p" in error["message"], error
    assert error["details"] == {"width": 1280, "height": 720, "max_resolution": "360p"}


def test_the_months_output_minutes_are_enforced(farm: Farm) -> None:
    """0.1 minutes (6 s) a month: 4 s fits, the next 4 s does not (queued jobs count at
    their estimate), and the answer names what is used and the limit."""
    key, _ = tenant(farm, "metered", output_minutes_per_month=0.1)
    farm.submit(key, {"document": simple_doc(4.0)})
    error = assert_error(farm.client.post("/v1/renders", json={"document": simple_doc(4.0)},
                                          headers=bearer(key)), 403, "quota_exceeded")
    assert "the plan allows 0.1" in error["message"] and "used 0.07" in error["message"]
    assert error["details"] == {"used_minutes": pytest.approx(4 / 60, abs=1e-3),
                                "needed_minutes": pytest.approx(4 / 60, abs=1e-3),
                                "limit_minutes": 0.1}
    assert farm.client.post("/v1/renders", json={"document": simple_doc(2.0)},
                            headers=bearer(key)).status_code == 202


def test_the_plans_concurrent_jobs_replace_the_tenants(farm: Farm) -> None:
    key = farm.tenant("busy", max_concurrent_jobs=5)
    tenant_id = farm.client.get("/v1/me", headers=bearer(key)).json()["tenant_id"]
    _FARMS.append(farm)
    farm.client.put(f"/v1/admin/tenants/{tenant_id}/plan", json={"max_concurrent_jobs": 1},
                    headers=farm.admin)
    farm.submit(key, {"document": simple_doc(1.0)})
    error = assert_error(farm.client.post("/v1/renders", json={"document": simple_doc(1.0)},
                                          headers=bearer(key)), 429, "too_many_jobs")
    assert "the limit is 1" in error["message"]


def test_an_upload_over_the_plans_storage_is_refused(farm: Farm) -> None:
    key, _ = tenant(farm, "tight", storage_bytes=1000)
    c, auth = farm.client, bearer(key)
    project = c.post("/v1/projects", json={"name": "p"}, headers=auth).json()["id"]
    route = f"/v1/projects/{project}/assets"
    assert c.post(route, files={"files": ("a.bin", b"a" * 600)}, headers=auth).status_code \
        == 201
    error = assert_error(c.post(route, files={"files": ("b.bin", b"b" * 600)}, headers=auth),
                         413, "storage_quota_exceeded")
    assert "b.bin (600 bytes)" in error["message"] and "allows 1000" in error["message"]
    assert error["details"] == {"name": "b.bin", "adding": 600, "used": 600, "limit": 1000}
    # Replacing an asset counts its new size instead of the old one.
    assert c.post(route, files={"files": ("a.bin", b"c" * 900)}, headers=auth).status_code \
        == 201
    assert [a["name"] for a in c.get(route, headers=auth).json()] == ["a.bin"]


def test_a_plan_body_is_checked(farm: Farm) -> None:
    _, tenant_id = tenant(farm, "acme")
    route = f"/v1/admin/tenants/{tenant_id}/plan"
    for bad in ({"max_resolution": "999p"}, {"credits_per_second": -1},
                {"tiers": {"720p": "cheap"}}, {"storage_bytes": 1.5}, {"unknown": 1}):
        assert_error(farm.client.put(route, json=bad, headers=farm.admin), 422)
    assert_error(farm.client.put("/v1/admin/tenants/ten_nope/plan", json={},
                                 headers=farm.admin), 404)
    listed = farm.client.get("/v1/admin/tenants", headers=farm.admin).json()
    assert {t["name"]: t["credit_balance"] for t in listed}["acme"] is None


# -- the admin command line ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_admin_cli_sets_plans_grants_credits_and_shows_usage(
        farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    from framefarm.cli import app

    monkeypatch.setenv("FRAMEFARM_DATABASE_URL", farm.settings.db_url)
    runner = CliRunner()
    key, tenant_id = tenant(farm, "acme")
    shown = runner.invoke(app, ["admin", "plan", tenant_id, "--credits-per-second", "5",
                                "--tier", "360p=2", "--output-minutes", "60"])
    assert shown.exit_code == 0, shown.output
    assert "credits_per_second 5.0" in shown.output and "'360p': 2.0" in shown.output
    assert "credit_balance -" in shown.output
    granted = runner.invoke(app, ["admin", "credits", tenant_id, "--add", "50",
                                  "--note", "welcome"])
    assert granted.exit_code == 0 and "grant +50: balance 50" in granted.output, granted.output
    job = farm.submit(key, {"document": simple_doc(1.0)})
    assert job["credits"]["reserved"] == 2  # the 360p tier
    farm.start_nodes(1)
    assert wait_job(farm.client, key, job["id"])["state"] == "succeeded"

    table = runner.invoke(app, ["admin", "usage", "--tenant", tenant_id, "--from", today(),
                                "--to", today()], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    line = next(row for row in table.output.splitlines() if tenant_id in row)
    cells = [cell.strip() for cell in line.strip("│ ").split("│")]
    assert cells[1:4] == [today(), "1", "30"] and cells[-1] == "2", cells
    listing = runner.invoke(app, ["admin", "tenants"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and tenant_id in listing.output, listing.output
    row = next(r for r in listing.output.splitlines() if tenant_id in r)
    assert "48" in row and "0.02 min" in row and "60 min" in row, row

    bad = runner.invoke(app, ["admin", "usage", "--from", "March"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output, bad.output
    refused = runner.invoke(app, ["admin", "credits", tenant_id, "--add", "-100"])
    assert refused.exit_code == 1 and "negative" in refused.output, refused.output
    unknown = runner.invoke(app, ["admin", "plan", "ten_nope"])
    assert unknown.exit_code == 1 and "no tenant" in unknown.output, unknown.output
    # The commands that were there before the move are all still there.
    names = set(typer_commands(app, "admin"))
    assert {"create-tenant", "create-key", "list-keys", "revoke-key", "plan", "credits",
            "usage", "tenants"} <= names


def typer_commands(app: Any, group: str) -> list[str]:
    import typer

    command: Any = typer.main.get_command(app)
    return list(command.commands[group].commands)
