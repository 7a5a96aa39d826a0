"""Every main view at a desktop's and a phone's size: a screenshot of each (for people to
look at), no serious accessibility violation (axe-core), nothing wider than the screen,
and the keyboard reaches every control."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from support.browser import DESKTOP, PHONE, axe_violations, screenshot, sign_in, wait_render
from support.server import Server

pytestmark = pytest.mark.ffmpeg


def check_view(page: Any, name: str) -> None:
    page.wait_for_load_state("networkidle")
    screenshot(page, name)
    found = axe_violations(page)
    assert found == [], f"{name}: {found}"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{name} is {width}px wide"


@pytest.mark.parametrize(("viewport", "scheme"), [(DESKTOP, "light"), (PHONE, "light"),
                                                 (DESKTOP, "dark")],
                         ids=["desktop", "phone", "desktop-dark"])
def test_each_view_is_accessible_and_fits(new_page: Callable[..., Any], studio_server: Server,
                                          example_template: dict[str, Any],
                                          viewport: dict[str, int], scheme: str) -> None:
    """Light and dark (the system's choice) are both checked, contrast included."""
    page = new_page(viewport=viewport)
    page.emulate_media(color_scheme=scheme)
    suffix = "" if scheme == "light" else f"-{scheme}"
    page.goto("/")
    expect(page.get_by_label("API key")).to_be_focused()
    check_view(page, "sign-in" + suffix)
    sign_in(page, studio_server.key)
    expect(page.locator(".gallery img")).to_be_visible(timeout=60_000)
    check_view(page, "templates" + suffix)

    page.get_by_role("link", name=example_template["name"]).click()
    page.get_by_role("textbox", name="Name (required)").fill("Ada")
    expect(page.locator("#preview-image")).to_be_visible(timeout=60_000)
    check_view(page, "template" + suffix)

    page.locator("#top").get_by_role("link", name="Projects").click()
    expect(page.get_by_role("link", name="Example")).to_be_visible()
    check_view(page, "projects" + suffix)
    page.get_by_role("link", name="Example").click()
    expect(page.locator(".asset img").first).to_be_visible(timeout=30_000)
    check_view(page, "project" + suffix)

    page.locator("#top").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    check_view(page, "history" + suffix)

    for tab, ready in (("nodes", "#nodes-table tbody th"), ("queue", "#queue-tenants tbody"),
                       ("tenants", "#tenant-list .tenant")):
        page.goto(f"/#/admin/{tab}")
        expect(page.locator(ready).first).to_be_visible()
        check_view(page, f"admin-{tab}{suffix}")


def test_the_render_modal_on_a_phone(new_page: Callable[..., Any], studio_server: Server,
                                     example_template: dict[str, Any]) -> None:
    page = new_page(viewport=PHONE)
    sign_in(page, studio_server.key)
    page.get_by_role("link", name=example_template["name"]).click()
    page.get_by_role("textbox", name="Name (required)").fill("Phone")
    page.get_by_label("Quality").select_option("draft")
    page.get_by_label("Size").select_option("360p")
    page.get_by_label("Aspect").select_option("9:16")  # a vertical video, for phones
    page.get_by_role("button", name="Render", exact=True).click()
    modal = page.locator("#render-modal")
    wait_render(studio_server, modal)
    expect(page.locator("#render-video")).to_be_visible()
    expect(page.locator("#render-meta")).to_contain_text("360×640")
    job = studio_server.job(modal.get_attribute("data-job-id") or "")
    assert (job["export"]["width"], job["export"]["height"]) == (360, 640)
    check_view(page, "render-done")
    page.keyboard.press("Escape")
    expect(modal).to_have_count(0)


def test_the_keyboard_reaches_every_control(page: Any, studio_server: Server,
                                            example_template: dict[str, Any]) -> None:
    """Tab goes through the template page's links, fields, scrubber, markers and Render,
    each visibly focused; nothing that takes a click is out of its reach."""
    sign_in(page, studio_server.key)
    page.get_by_role("link", name=example_template["name"]).click()
    page.get_by_role("textbox", name="Name (required)").fill("Keys")
    expect(page.locator("#scene-markers button")).to_have_count(2, timeout=60_000)
    page.locator(".skip").focus()  # the page's first stop
    seen: list[str] = ["Skip to content|auto"]
    for _ in range(60):
        page.keyboard.press("Tab")
        found = page.evaluate("""() => {
            const el = document.activeElement;
            if (!el || el === document.body) return null;
            const outline = getComputedStyle(el).outlineStyle;
            return `${el.name || el.id || el.textContent.trim().slice(0, 20)}|${outline}`;
        }""")
        if found is None or (seen and found == seen[0]):
            break
        seen.append(found)
    names = [s.split("|")[0] for s in seen]
    for wanted in ("Skip to content", "sign-out", "name", "accent-hex", "scrubber", "1", "2",
                   "quality", "render-button"):
        assert wanted in names, (wanted, names)
    assert all(s.split("|")[1] != "none" for s in seen), seen
