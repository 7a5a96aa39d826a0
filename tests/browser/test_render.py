"""The template page and the render modal: a live, frame-exact preview; a render followed
over the WebSocket to a video that downloads; cancelling; a failure and its Retry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from framefarm import media as probe
from support.browser import screenshot, sign_in, wait_render
from support.media import write_fake_ffmpeg, write_photo
from support.polling import wait_for
from support.server import Server

pytestmark = pytest.mark.ffmpeg
FPS = 30
TRANSITION = 0.5  # the example's dissolve between its two scenes


def open_template(page: Any, server: Server, template: dict[str, Any], **fields: str) -> None:
    sign_in(page, server.key)
    page.get_by_role("link", name=template["name"]).click()
    expect(page.get_by_role("heading", name=template["name"], level=1)).to_be_visible()
    for name, value in fields.items():  # by the variable's name
        page.locator(f"form.variables [name='{name}']").fill(value)


def choose_small_render(page: Any) -> None:
    """Draft quality at 360p: each test render costs a few seconds of the machine."""
    page.get_by_label("Quality").select_option("draft")
    page.get_by_label("Size").select_option("360p")


def preview_version(page: Any) -> int:
    return int(page.locator("#preview-image").get_attribute("data-version") or 0)


def test_changing_a_field_changes_the_preview_frame(page: Any, studio_server: Server,
                                                    example_template: dict[str, Any],
                                                    tmp_path: Path) -> None:
    open_template(page, studio_server, example_template)
    expect(page.locator("#preview-note")).to_contain_text("Fill in name")
    expect(page.locator(".engine-note")).to_contain_text("framefarm’s own engine")
    page.get_by_role("textbox", name="Name (required)").fill("Ada")
    image = page.locator("#preview-image")
    expect(image).to_be_visible(timeout=60_000)
    first = image.screenshot()
    before = preview_version(page)
    # The scrubber covers the filled video: 3 s + 3 s less the transition, in frames.
    frames = round((3 + 3 - TRANSITION) * FPS)
    expect(page.locator("#scrubber")).to_have_attribute("max", str(frames - 1))
    expect(page.locator("#scene-markers button")).to_have_count(2)
    screenshot(page, "template")

    page.get_by_role("textbox", name="Name (required)").fill("Grace Hopper")
    wait_for(lambda: preview_version(page) > before, timeout=60, what="a new preview")
    expect(page.locator("#preview-stage")).not_to_have_class("stage busy")
    assert image.screenshot() != first

    # A scene marker moves the scrubber to that scene's key frame, and the frame follows.
    shown = image.screenshot()
    page.get_by_role("button", name="Scene 2", exact=False).click()
    wait_for(lambda: int(image.get_attribute("data-frame") or 0) > frames // 2, timeout=60,
             what="the second scene's frame")
    expect(page.locator("#preview-at")).to_contain_text(f"of {frames}")
    assert image.screenshot() != shown
    # An image field takes a new upload: it lands in the template's project, is chosen,
    # and the frame shows it.
    shown = image.screenshot()
    version = preview_version(page)
    page.locator("form.variables input[type=file]").set_input_files(
        str(write_photo(tmp_path / "red.jpg", "#e01010", (1280, 720))))
    expect(page.get_by_label("Backdrop")).to_have_value("media/red.jpg")
    wait_for(lambda: preview_version(page) > version, timeout=60, what="the new backdrop")
    expect(page.locator("#preview-stage")).not_to_have_class("stage busy")
    # The new frame is decoded and painted after the request ends: wait for the change.
    wait_for(lambda: image.screenshot() != shown, timeout=30, what="the backdrop drawn")

    # A frame asked again comes from the snapshot cache.
    name = page.get_by_role("textbox", name="Name (required)")
    version = preview_version(page)
    name.fill("Ada")
    wait_for(lambda: preview_version(page) > version, timeout=60, what="Ada's frame")
    name.fill("Grace Hopper")
    expect(page.locator("#preview-cache")).to_have_text("from the cache", timeout=60_000)


def test_render_modal_follows_the_websocket_to_a_download(
        page: Any, studio_server: Server, example_template: dict[str, Any],
        tmp_path: Path) -> None:
    seconds = 20  # long enough for several preview frames on a busy machine
    open_template(page, studio_server, example_template, name="Ada", seconds=str(seconds))
    choose_small_render(page)
    page.get_by_role("button", name="Render", exact=True).click()
    modal = page.locator("#render-modal")
    expect(modal).to_be_visible()
    expect(modal).to_have_attribute("data-state", "running", timeout=60_000)
    # Nothing moves while it progresses: the modal and its parts keep their boxes.
    wait_for(lambda: float(modal.get_attribute("data-percent") or 0) > 0, timeout=60,
             what="progress")
    boxes = layout(page)
    screenshot(page, "render-modal")
    wait_for(lambda: float(modal.get_attribute("data-percent") or 0) >= 50 or
             modal.get_attribute("data-state") != "running", timeout=120, what="more progress")
    if modal.get_attribute("data-state") == "running":
        assert layout(page) == boxes
    wait_render(studio_server, modal)
    # Fed by the WebSocket all along: no fallback to SSE or polling.
    assert modal.get_attribute("data-transport") == "websocket"
    expect(page.locator("#render-percent")).to_have_text("100%")
    assert int(modal.get_attribute("data-previews") or 0) >= 2, "the preview never changed"
    expect(page.locator("#render-logs li").first).to_be_visible()
    expect(page.locator("#render-video")).to_be_visible()
    frames = round((2 * seconds - TRANSITION) * FPS)
    expect(page.locator("#render-frames")).to_have_text(f"{frames:,} / {frames:,}")
    expect(page.locator("#render-meta")).to_contain_text("640×360")
    screenshot(page, "render-done")

    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download").click()
    target = tmp_path / "download.mp4"
    waiting.value.save_as(target)
    info = probe.probe(target, count_frames=True)
    assert "mp4" in info.format, info
    assert info.video is not None and info.video.codec == "h264"
    assert (info.video.width, info.video.height) == (640, 360)
    assert info.video.frames == frames
    assert abs(info.video.duration - frames / FPS) <= 1 / FPS

    # Copy link: a signed link that works without the key.
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#render-copy")).to_have_attribute("data-link", signed_link(studio_server))
    link = page.evaluate("() => navigator.clipboard.readText()")
    assert "sig=" in link and studio_server.key not in link
    assert studio_server.http.get(link).status_code == 200


def layout(page: Any) -> list[Any]:
    return [page.locator(sel).bounding_box() for sel in
            ("#render-modal", "#render-bar", "#render-frames", "#render-preview-box",
             "#render-logs", "#render-cancel")]


def signed_link(server: Server) -> re.Pattern[str]:
    return re.compile(re.escape(server.url) + r"/v1/exports/.+/download\?.*sig=")


def test_a_render_can_be_cancelled_midway(page: Any, studio_server: Server,
                                          example_template: dict[str, Any]) -> None:
    open_template(page, studio_server, example_template, name="Ada", seconds="30")
    choose_small_render(page)
    page.get_by_role("button", name="Render", exact=True).click()
    modal = page.locator("#render-modal")
    wait_for(lambda: float(modal.get_attribute("data-percent") or 0) > 0, timeout=60,
             what="the render to make progress")
    page.get_by_role("button", name="Cancel render").click()
    expect(modal).to_have_attribute("data-state", "cancelled", timeout=30_000)
    expect(page.get_by_role("heading", name="was cancelled")).to_be_visible()
    job = studio_server.job(modal.get_attribute("data-job-id") or "")
    assert job["state"] == "cancelled"
    assert job["frames"]["done"] < job["frames"]["total"]
    assert job["export"] is None


def test_a_failed_render_shows_its_message_and_retry_renders_it(
        page: Any, studio_server: Server, example_template: dict[str, Any],
        tmp_path: Path) -> None:
    """Only a node whose FFmpeg is broken takes work: the render fails, the modal says
    how and where. The good nodes come back and Retry renders it."""
    broken = write_fake_ffmpeg(tmp_path / "broken-ffmpeg",
                               'echo "encoder exploded: no such codec" >&2; exit 1')
    for name in ("local-0", "local-1"):
        studio_server.set_draining(name, True)
    worker = studio_server.worker("broken", FRAMEFARM_FFMPEG=str(broken))
    try:
        studio_server.wait_nodes("broken")
        open_template(page, studio_server, example_template, name="Ada")
        choose_small_render(page)
        page.get_by_role("button", name="Render", exact=True).click()
        modal = page.locator("#render-modal")
        wait_render(studio_server, modal, "failed", timeout=90)
        failed = studio_server.job(modal.get_attribute("data-job-id") or "")
        assert failed["state"] == "failed" and failed["error"]
        expect(page.locator("#render-error")).to_have_text(failed["error"])
        expect(page.locator("#render-failed-step")).to_contain_text(f"({failed['failed_step']})")
        screenshot(page, "render-failed")
    finally:
        worker.kill()
        node_id = studio_server.nodes()["broken"]["id"]
        assert studio_server.http.delete(f"/v1/admin/nodes/{node_id}",
                                         headers=studio_server.auth).status_code == 204
        for name in ("local-0", "local-1"):
            studio_server.set_draining(name, False)

    page.get_by_role("button", name="Retry").click()
    wait_for(lambda: modal.get_attribute("data-job-id") != failed["id"], timeout=30,
             what="the retry's job")
    wait_render(studio_server, modal)
    retried = studio_server.job(modal.get_attribute("data-job-id") or "")
    assert retried["retry_of"] == failed["id"] and retried["export"] is not None
    expect(page.locator("#render-download")).to_be_visible()


@pytest.mark.parametrize("blocked", [("websocket",), ("websocket", "sse")],
                         ids=["no-websocket", "no-websocket-no-sse"])
def test_without_a_websocket_the_modal_falls_back(page: Any, studio_server: Server,
                                                  example_template: dict[str, Any],
                                                  blocked: tuple[str, ...]) -> None:
    """A proxy that refuses WebSockets (and one that buffers event streams): the modal goes
    on over Server-Sent Events, else by polling, and still gets to the video."""
    page.route_web_socket(re.compile(r".*/ws$"), lambda ws: ws.close(code=1011))
    if "sse" in blocked:
        page.route(re.compile(r".*/events$"), lambda route: route.abort())
    open_template(page, studio_server, example_template, name="Fallback")
    choose_small_render(page)
    page.get_by_role("button", name="Render", exact=True).click()
    modal = page.locator("#render-modal")
    wait_render(studio_server, modal)
    assert modal.get_attribute("data-transport") == ("polling" if "sse" in blocked else "sse")
    expect(page.locator("#render-percent")).to_have_text("100%")
    expect(page.locator("#render-download")).to_be_visible()
