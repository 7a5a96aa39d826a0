"""Projects in the studio: create, rename, delete; assets uploaded by drag and drop with
per-file progress, refusals said plainly, each asset shown; the document edited with
schema completion and the server's problems marked where they are."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support.browser import screenshot, sign_in, wait_render
from support.media import ffmpeg, write_photo, write_tone
from support.server import Server

pytestmark = pytest.mark.ffmpeg


def drop_files(page: Any, target: str, files: list[Path]) -> None:
    """Drop files on an element as a person dragging them from a file manager does."""
    payload = [{"name": f.name, "data": base64.b64encode(f.read_bytes()).decode()}
               for f in files]
    page.evaluate("""([selector, files]) => {
        const transfer = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
            transfer.items.add(new File([bytes], f.name));
        }
        const zone = document.querySelector(selector);
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true,
                                                    cancelable: true}));
        }
    }""", [target, payload])


def test_a_project_its_assets_and_its_document(page: Any, studio_server: Server,
                                               tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "sunrise.jpg", "#d06030")
    tone = write_tone(tmp_path / "voice.m4a", 1.5, 440)
    big = tmp_path / "huge.png"
    big.write_bytes(os.urandom(3 * 1024 * 1024))  # over the server's 2 MiB limit
    clip = tmp_path / "clip.webm"
    ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2", "-c:v",
            "libvpx-vp9", "-b:v", "200k", str(clip)])
    odd = tmp_path / "notes.exe"
    odd.write_bytes(b"MZ not a picture")

    sign_in(page, studio_server.key)
    page.locator("#top").get_by_role("link", name="Projects").click()
    page.get_by_label("Name of a new project").fill("Launch video")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("button", name="Rename Launch video").click()
    page.get_by_label("New name for Launch video").fill("Launch video, final")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="Launch video, final")).to_be_visible()
    page.get_by_role("link", name="Launch video, final").click()
    expect(page.get_by_role("heading", name="Launch video, final", level=1)).to_be_visible()
    expect(page.locator(".assets .empty")).to_contain_text("No assets yet")

    drop_files(page, ".dropzone", [photo, tone, clip])
    page.locator("#asset-files").set_input_files([str(big), str(odd)])
    uploads = page.locator(".uploads .upload")
    expect(uploads).to_have_count(5)
    expect(page.locator(".upload.ok")).to_have_count(3, timeout=30_000)
    refused_big = page.locator(".upload.refused", has_text="huge.png")
    expect(refused_big).to_contain_text("Refused:")
    expect(refused_big).to_contain_text("larger than")
    expect(page.locator(".upload.refused", has_text="notes.exe")).to_contain_text(
        "cannot use this type of file")

    # Each asset is shown: the picture as a thumbnail, the sound with its duration.
    image = page.locator(".asset[data-name='media/sunrise.jpg'] img")
    expect(image).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) == 640
    expect(page.locator(".asset[data-name='media/voice.m4a'] .meta")).to_contain_text("1.5")
    video = page.locator(".asset[data-name='media/clip.webm'] video")
    expect(video).to_be_visible()
    expect(page.locator(".asset[data-name='media/clip.webm'] .meta")).to_contain_text("2.0")
    assert page.evaluate("(v) => v.videoWidth", video.element_handle()) == 320
    stored = studio_server.get(f"/v1/projects/{project_id(page)}/assets")
    assert sorted(a["name"] for a in stored) == [
        "media/clip.webm", "media/sunrise.jpg", "media/voice.m4a"]
    screenshot(page, "project")

    # The document: completion from the schema, then the server's problems, marked.
    editor = page.get_by_label("Document (JSON)")
    editor.fill('{\n  "')
    editor.press("End")
    page.keyboard.press("Control+Space")
    suggestions = page.get_by_role("listbox", name="Suggestions")
    expect(suggestions).to_be_visible()
    keys = suggestions.locator("li > code")
    expect(keys.filter(has_text=re.compile("^scenes$"))).to_be_visible()
    expect(keys.filter(has_text=re.compile("^output$"))).to_be_visible()
    # Choosing one writes the key; inside "output", its own keys are offered.
    page.keyboard.type("outp")
    expect(keys).to_have_text(["output"])
    page.keyboard.press("Enter")
    page.keyboard.type("{")
    page.keyboard.press("Control+Space")
    expect(keys.filter(has_text=re.compile("^fps$"))).to_be_visible()
    expect(keys.filter(has_text=re.compile("^scenes$"))).to_have_count(0)
    page.keyboard.press("Escape")
    assert editor.input_value() == '{\n  "output": {'
    screenshot(page, "project-completion")
    editor.fill('{\n  "scenes": [\n    {"duration": 3, "layers": [\n'
                '      {"type": "text", "text": "Hi", "opacity": 7}\n    ]}\n  ]\n}')
    page.get_by_role("button", name="Save document").click()
    problem = page.locator(".problems li").first
    expect(problem).to_contain_text("scenes[0].layers[0].opacity")
    expect(page.locator(".gutter .bad")).to_have_text("4")
    expect(page.locator(".backdrop mark")).to_have_text('"opacity"')
    expect(editor).to_have_attribute("aria-invalid", "true")
    problem.get_by_role("button").click()
    assert page.evaluate("(t) => t.value.slice(t.selectionStart, t.selectionEnd)",
                         editor.element_handle()) == '"opacity"'
    screenshot(page, "project-document-problem")
    editor.fill('{"scenes": [{"duration": 3, "layers": [{"type": "text", "text": "Hi"}]}]}')
    page.get_by_role("button", name="Save document").click()
    expect(page.locator("p.status", has_text="Saved at")).to_be_visible()
    expect(page.locator(".problems li")).to_have_count(0)
    saved = studio_server.get(f"/v1/projects/{project_id(page)}")
    assert saved["document"]["scenes"][0]["layers"][0]["text"] == "Hi"

    # The project's own document renders too.
    page.get_by_role("button", name="Render…").click()
    options = page.get_by_role("dialog", name="Render “Launch video, final”")
    options.get_by_label("Quality").select_option("draft")
    options.get_by_label("Size").select_option("360p")
    options.get_by_role("button", name="Render", exact=True).click()
    modal = page.locator("#render-modal")
    wait_render(studio_server, modal)
    expect(page.locator("#render-frames")).to_have_text("90 / 90")
    page.get_by_role("button", name="Close").click()

    # Deleted from the list.
    page.locator("#top").get_by_role("link", name="Projects").click()
    page.get_by_role("button", name="Delete Launch video, final").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("link", name="Launch video, final")).to_have_count(0)


def project_id(page: Any) -> str:
    return str(page.url.rsplit("/", 1)[1])
