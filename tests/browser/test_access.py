"""Signing in and out, what a tenant key may see, the page's security headers, and text a
user typed shown as text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from support.browser import sign_in
from support.server import Server

pytestmark = pytest.mark.ffmpeg


def test_signing_in_keeps_the_key_out_of_urls_storage_and_logs(
        page: Any, studio_server: Server) -> None:
    page.goto("/")
    page.get_by_label("API key").fill("ff_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("unknown or has been revoked")
    assert page.evaluate("() => sessionStorage.length") == 0

    sign_in(page, studio_server.key)
    expect(page.get_by_role("heading", name="Templates")).to_be_visible()
    assert studio_server.key not in page.url
    # In this tab's sessionStorage only: no cookie, nothing in localStorage.
    assert page.context.cookies() == []
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => Object.values(sessionStorage)") == [studio_server.key]
    # The page made API calls (with the key in a header), none with it in the URL; the
    # watcher asserts that at the end. The server printed the key once, at its first start.
    assert any("/v1/" in url for url in page.watch.requests)
    assert studio_server.proc is not None
    assert studio_server.proc.text().count(studio_server.key) == 1


def test_signing_out_clears_the_session(page: Any, studio_server: Server) -> None:
    sign_in(page, studio_server.key)
    page.goto("/#/projects")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert "#/" not in page.url
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto("/#/history")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#top")).to_be_hidden()


def test_every_studio_response_has_a_strict_content_security_policy(
        studio_server: Server) -> None:
    for path in ("/", "/studio/js/app.js", "/studio/studio.css", "/studio/icon.svg"):
        response = httpx.get(studio_server.url + path, timeout=10)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    # Revalidated cheaply: the same file answers 304 to its ETag, with the same headers.
    first = httpx.get(studio_server.url + "/studio/js/app.js", timeout=10)
    again = httpx.get(studio_server.url + "/studio/js/app.js", timeout=10,
                      headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and "unsafe" not in again.headers["content-security-policy"]
    page = httpx.get(studio_server.url + "/", timeout=10).text
    assert "<script>" not in page and "style=" not in page  # nothing inline to allow
    for path in ("/studio/../pyproject.toml", "/studio/js/../../__init__.py", "/studio/"):
        assert httpx.get(studio_server.url + path, timeout=10).status_code == 404, path


def test_a_tenant_key_reaches_no_admin_view_or_call(
        new_page: Callable[..., Any], studio_server: Server) -> None:
    made = studio_server.post("/v1/admin/tenants", json={"name": "acme studio"})
    assert made.status_code == 201, made.text
    key = made.json()["api_key"]
    page = new_page(key=key)
    sign_in(page, key)
    expect(page.locator("#top nav")).to_contain_text("History")
    expect(page.locator("#top nav").get_by_role("link", name="Admin")).to_have_count(0)
    expect(page.locator("#top .badge")).to_have_count(0)
    for tab in ("#/admin", "#/admin/nodes", "#/admin/queue", "#/admin/tenants"):
        page.goto(f"/{tab}")
        expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
        expect(page.locator("#nodes-table")).to_have_count(0)
    # The API refuses the tenant key on every admin call the console makes.
    statuses = page.evaluate("""async (key) => {
        const calls = [["GET", "/v1/admin/nodes"], ["GET", "/v1/admin/queue"],
          ["GET", "/v1/admin/queue/tenants"], ["GET", "/v1/admin/tenants"],
          ["POST", "/v1/admin/tenants"]];
        const out = [];
        for (const [method, path] of calls) {
          const r = await fetch(path, {method, headers: {Authorization: `Bearer ${key}`,
            "Content-Type": "application/json"},
            body: method === "POST" ? '{"name": "x"}' : undefined});
          out.push(r.status);
        }
        return out;
    }""", key)
    assert statuses == [403] * 5


def test_markup_in_a_project_name_is_shown_as_text(page: Any, studio_server: Server) -> None:
    name = "<img src=x onerror=alert(1)>"
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, studio_server.key)
    page.goto("/#/projects")
    page.get_by_label("Name of a new project").fill(name)
    page.get_by_role("button", name="Create").click()
    card = page.locator(".projects .card-title", has_text=name)
    expect(card).to_have_text(name)
    card.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    page.goto("/#/history")
    expect(page.locator("#filter-project")).to_contain_text(name)
    assert page.locator("img[src='x']").count() == 0

    # A template's name, its fields' descriptions and defaults: text too.
    made = studio_server.post("/v1/templates", json={"name": "<b>Bold</b> <img src=x>",
        "document": {"variables": {"t": {"type": "text", "default": "<script>alert(2)</script>",
                                         "description": "<img src=x onerror=alert(3)>"},
                                   "tone": {"type": "choice", "choices": ["<i>calm</i>", "bold"],
                                            "default": "bold"},
                                   "bio": {"type": "longtext", "default": "two\nlines"}},
                     "scenes": [{"duration": 1, "layers": [{"type": "text", "text": "{{t}}"}]}]}})
    assert made.status_code == 201, made.text
    try:
        page.goto("/#/templates")
        card = page.locator(".template-card .card-title", has_text="<b>Bold</b>")
        expect(card).to_have_text("<b>Bold</b> <img src=x>")
        card.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("<b>Bold</b> <img src=x>")
        expect(page.get_by_role("textbox", name="T", exact=True)).to_have_value(
            "<script>alert(2)</script>")
        expect(page.locator("form.variables .hint")).to_have_text("<img src=x onerror=alert(3)>")
        # A choice is a select of its choices (as text); long text a text area.
        tone = page.locator("form.variables select[name=tone]")
        expect(tone).to_have_value("bold")
        expect(tone.locator("option")).to_have_text(["—", "<i>calm</i>", "bold"])
        expect(page.locator("form.variables textarea[name=bio]")).to_have_value("two\nlines")
        assert page.locator("img[src='x'], b, form.variables script").count() == 0
    finally:
        studio_server.http.delete(f"/v1/templates/{made.json()['id']}", headers=studio_server.auth)
    assert dialogs == []


def test_the_browser_enforces_the_policy(browser: Any, studio_server: Server) -> None:
    """The CSP is not only sent: an inline script or style put into the page does not run
    (the console reports the refusal)."""
    context = browser.new_context(base_url=studio_server.url)
    try:
        page = context.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto("/")
        expect(page.get_by_label("API key")).to_be_visible()
        page.evaluate("""() => {
            const s = document.createElement("script");
            s.textContent = "window.injected = true";
            document.body.append(s);
            const st = document.createElement("style");
            st.textContent = "body { display: none }";
            document.head.append(st);
        }""")
        assert page.evaluate("() => window.injected") is None
        expect(page.get_by_label("API key")).to_be_visible()
        assert any("script" in m for m in refused) and any("style" in m for m in refused)
    finally:
        context.close()
