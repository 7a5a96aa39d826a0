"""The studio in a real browser: Debian's Chromium driven by Playwright, against a real
``framefarm serve`` with render nodes.

- ``launch(playwright)``: Chromium headless, with no network of its own (no component
  updates, no sync), as CI runs it.
- :class:`Watch`: what a page did that it must not (script errors, CSP violations, requests
  carrying the API key in their URL), asserted empty after each test.
- ``axe_violations(page)``: the serious and critical findings of axe-core (vendored from
  npm in ``tests/browser/vendor``) on the page as it is now.
- ``screenshot(page, name)``: into ``FRAMEFARM_TEST_SCREENSHOTS`` (default: a folder in the
  system's temporary directory, never the repository).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from support.ci import skip_or_fail

CHROMIUM = os.environ.get("FRAMEFARM_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VENDOR = Path(__file__).resolve().parent.parent / "browser" / "vendor"
AXE = VENDOR / "axe-core" / "axe.min.js"
AXE_SHA256 = "e9e5863c33a874f09bc01acd9234b7e3c871479f5eef8802fa582544465e6d01"  # 4.11.0
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def require_browser() -> None:
    """Playwright and Chromium, or a skip (a failure under CI=true)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -e '.[test]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("FRAMEFARM_TEST_SCREENSHOTS")
                  or Path(tempfile.gettempdir()) / "framefarm-studio-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Any, name: str) -> Path:
    size = page.viewport_size
    target = screenshots_dir() / f"{name}-{size['width']}x{size['height']}.png"
    page.screenshot(path=str(target), full_page=False)
    return target


class Watch:
    """Everything a page did that a test should fail on."""

    def __init__(self, page: Any, key: str = "") -> None:
        self.key = key
        self.errors: list[str] = []
        self.csp: list[str] = []
        self.key_in_url: list[str] = []
        self.requests: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)
        page.on("request", self._request)
        page.on("websocket", lambda ws: self._url(ws.url))

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.csp.append(text)

    def _request(self, request: Any) -> None:
        self._url(request.url)

    def _url(self, url: str) -> None:
        self.requests.append(url)
        if self.key and self.key in url:
            self.key_in_url.append(url)

    def check(self) -> None:
        assert self.errors == [], f"script errors: {self.errors}"
        assert self.csp == [], f"CSP violations: {self.csp}"
        assert self.key_in_url == [], f"the API key was in a URL: {self.key_in_url}"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations, with the elements at fault."""
    source = AXE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, "axe-core is not the pinned file"
    # Evaluated by the DevTools protocol, which the page's CSP does not govern (the studio
    # itself could never load it: no script but its own).
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source.decode("utf-8"))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
    }""")
    return list(found)


def sign_in(page: Any, key: str) -> None:
    """Sign in through the form, as a person does, and wait for the menu."""
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#sign-out").wait_for()


def wait_render(server: Any, modal: Any, state: str = "succeeded",
                timeout: float = 120) -> dict[str, Any]:
    """Wait until the render modal shows a finished render; it must be in ``state`` (else
    the job, its log and the modal's text say why)."""
    from support.polling import wait_for

    finished = ("succeeded", "failed", "cancelled")
    wait_for(lambda: modal.get_attribute("data-state") in finished, timeout=timeout,
             interval=0.1, what=f"the render modal to reach {state}")
    job_id = modal.get_attribute("data-job-id") or ""
    job: dict[str, Any] = server.job(job_id)
    shown = modal.get_attribute("data-state")
    assert shown == state == job["state"], (
        f"the modal shows {shown}, the job is {job['state']}, {state} was expected: {job}\n"
        f"log: {server.messages(job_id)}\nmodal: {modal.inner_text()}")
    return job
