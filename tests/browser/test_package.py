"""How the studio ships: inside the wheel, with nothing fetched at run time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import framefarm
from framefarm import studio
from support.server import Server

ROOT = Path(framefarm.__file__).resolve().parents[2]
STATIC = Path(str(studio.static_root()))


def test_the_wheel_holds_every_studio_file(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    [wheel] = tmp_path.glob("framefarm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"framefarm/studio/static/{p.relative_to(STATIC).as_posix()}"
              for p in STATIC.rglob("*") if p.is_file()}
    assert "framefarm/studio/static/index.html" in wanted
    assert wanted <= names, sorted(wanted - names)
    assert "framefarm/studio/example/title-card.json" in names


def test_the_editor_gets_the_schema_framefarm_schema_prints(studio_server: Server) -> None:
    printed = subprocess.run([sys.executable, "-m", "framefarm", "schema"], check=True,
                             capture_output=True, timeout=60).stdout
    assert studio_server.get("/v1/studio/schema") == json.loads(printed)


def test_the_studio_loads_nothing_from_elsewhere() -> None:
    """No URL with a host in any file the page loads: no CDN, no web font, no analytics."""
    for path in STATIC.rglob("*"):
        if path.suffix not in (".html", ".js", ".css"):
            continue
        text = path.read_text("utf-8")
        hosts = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
        # The one namespace string the SVG chart needs is not a request.
        assert [h for h in hosts if h != "http://www.w3.org"] == [], (path, hosts)
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path
        assert "eval(" not in text and "new Function" not in text, path
