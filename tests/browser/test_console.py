"""History (live) and the admin console."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from support.browser import screenshot, sign_in
from support.server import Server

pytestmark = pytest.mark.ffmpeg


def test_history_updates_live(page: Any, studio_server: Server,
                              example_template: dict[str, Any]) -> None:
    sign_in(page, studio_server.key)
    page.locator("#top").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    page.evaluate("""() => {
        window.sameDocument = true;
        // Every percentage any row shows, as it changes.
        window.seen = [];
        // Rows added (with the percent they start with) and rows updated in place.
        new MutationObserver((changes) => {
            for (const c of changes) {
                const rows = c.type === "childList"
                    ? [...c.addedNodes].filter((n) => n.dataset && n.dataset.id)
                    : [c.target];
                for (const row of rows) window.seen.push([row.dataset.id, row.dataset.percent]);
            }
        }).observe(document.getElementById("history-list"),
                   {subtree: true, childList: true, attributes: true,
                    attributeFilter: ["data-percent"]});
    }""")
    # A render submitted elsewhere (the API, another tab) appears and runs to the end.
    made = studio_server.post(f"/v1/templates/{example_template['id']}/renders", json={
        "data": {"name": "Live", "seconds": 40},  # long enough to be seen running
        "options": {"quality": "draft", "size": "360p"}})
    assert made.status_code == 202, made.text
    job_id = made.json()["id"]
    row = page.locator(f".job[data-id='{job_id}']")
    expect(row).to_be_visible(timeout=15_000)
    expect(page.locator(".job").first).to_have_attribute("data-id", job_id)  # newest first
    expect(row).to_have_attribute("data-state", "succeeded", timeout=120_000)
    expect(row).to_have_attribute("data-percent", "100")
    expect(row.locator(".state")).to_have_text("Done")
    expect(row.get_by_role("button", name="Download")).to_be_visible()
    assert page.evaluate("() => window.sameDocument") is True  # never reloaded
    shown = [float(p) for i, p in page.evaluate("() => window.seen") if i == job_id]
    assert any(0 < p < 100 for p in shown), f"no progress between 0 and 100 shown: {shown}"
    assert row.get_attribute("data-transport") == "websocket"
    screenshot(page, "history")

    # The export's actions: extend, copy link, and the log.
    before = studio_server.job(job_id)["export"]["expires_at"]
    shown = row.locator(".meta").inner_text()
    row.get_by_role("button", name="Keep 7 more days").click()
    expect(row.locator(".meta")).not_to_have_text(shown)
    assert studio_server.job(job_id)["export"]["expires_at"] > before
    row.get_by_role("button", name="Copy link").click()
    expect(row.get_by_role("button", name="Copy link")).to_have_attribute(
        "data-link", re.compile(r"/download\?.*sig="), timeout=30_000)  # a round trip
    row.get_by_role("button", name="Log").click()
    expect(row.locator(".logs li").first).to_be_visible()

    # Filters: by state (on the server) and by project.
    page.get_by_label("State").select_option("failed")
    expect(page.locator(f".job[data-id='{job_id}']")).to_have_count(0)
    for state in page.locator(".job").evaluate_all("rows => rows.map(r => r.dataset.state)"):
        assert state == "failed"
    page.get_by_label("State").select_option("")
    page.get_by_label("Project").select_option(label="Example")
    expect(page.locator(f".job[data-id='{job_id}']")).to_be_visible()

    # A running render is cancelled from its row, which then offers Retry.
    long = studio_server.post(f"/v1/templates/{example_template['id']}/renders", json={
        "data": {"name": "Long", "seconds": 30},
        "options": {"quality": "draft", "size": "360p"}}).json()["id"]
    running = page.locator(f".job[data-id='{long}']")
    expect(running).to_have_attribute("data-state", "running", timeout=30_000)
    running.get_by_role("button", name="Cancel").click()
    expect(running).to_have_attribute("data-state", "cancelled")
    expect(running.get_by_role("button", name="Retry")).to_be_visible()
    assert studio_server.job(long)["state"] == "cancelled"

    # Deleting the video leaves the render in the history, without its actions.
    row.get_by_role("button", name="Delete video").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(row.get_by_role("button", name="Download")).to_have_count(0)
    assert studio_server.job(job_id)["export"] is None


def test_the_admin_console_lists_nodes_and_drains_one(page: Any,
                                                      studio_server: Server) -> None:
    sign_in(page, studio_server.key)
    page.locator("#top").get_by_role("link", name="Admin").click()
    table = page.locator("#nodes-table")
    for name in ("local-0", "local-1"):
        expect(table.get_by_role("rowheader", name=name)).to_be_visible()
    row = table.locator("tr", has=page.get_by_role("rowheader", name="local-1"))
    expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", re.compile("online|busy"))
    expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\d+$"))  # cores
    screenshot(page, "admin-nodes")
    try:
        row.get_by_role("button", name="Drain local-1").click()
        expect(row.locator("[data-status]")).to_have_text("draining")
        assert studio_server.nodes()["local-1"]["status"] == "draining"
        expect(row.get_by_role("button", name="Undrain local-1")).to_be_visible()
        # Its health over the kept heartbeats, and its crashes.
        row.get_by_role("button", name="local-1", exact=True).click()
        detail = page.locator("#node-detail")
        expect(detail.get_by_role("heading", name="local-1")).to_be_visible()
        expect(detail.locator("svg.chart polyline.load")).to_have_count(1)
        expect(detail.locator("svg.chart polyline.memory")).to_have_count(1)
        expect(detail).to_contain_text("Crashes")
        row.get_by_role("button", name="Undrain local-1").click()
        expect(row.locator("[data-status]")).not_to_have_text("draining")
    finally:
        studio_server.set_draining("local-1", False)

    page.get_by_role("link", name="Queue").click()
    expect(page.locator("#queue-tenants")).to_contain_text("admin")
    page.get_by_role("link", name="Tenants and keys").click()
    page.get_by_label("Name of a new tenant").fill("Northwind")
    page.get_by_role("button", name="Create tenant").click()
    key = page.locator("#revealed-key")
    expect(key).to_have_value(re.compile("^ff_"))
    new_key = key.input_value()
    assert studio_server.http.get("/v1/projects", headers={
        "Authorization": f"Bearer {new_key}"}).status_code == 200
    tenant = page.locator(".tenant", has=page.get_by_role("heading", name="Northwind"))
    tenant.get_by_role("button", name=re.compile("^Revoke key")).click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(tenant.locator(".state.failed")).to_contain_text("revoked")
    assert studio_server.http.get("/v1/projects", headers={
        "Authorization": f"Bearer {new_key}"}).status_code == 401
    screenshot(page, "admin-tenants")
