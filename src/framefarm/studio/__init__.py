"""The studio: the web page ``framefarm serve`` serves at ``/`` (``static/``: vanilla ES
modules and CSS, no build step), and the example template a fresh service starts with.

Routes live in :mod:`framefarm.api.studio`; this package holds what they serve, and
:func:`seed_example`, which ``framefarm serve`` calls once for the first tenant so that a
new user has a template to fill and render from the browser.
"""

from __future__ import annotations

import importlib.resources
import io
import json
from importlib.resources.abc import Traversable
from typing import Any

from PIL import Image, ImageDraw

from framefarm.application import Application
from framefarm.application.projects import Upload

EXAMPLE_PROJECT = "Example"
EXAMPLE_TEMPLATE = "Title card"
BACKDROP = "media/backdrop.jpg"


def static_root() -> Traversable:
    """The folder of the studio's files, inside the installed package."""
    return importlib.resources.files(__name__) / "static"


def example_document() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (importlib.resources.files(__name__) / "example" / "title-card.json").read_text("utf-8"))
    return found


def backdrop_jpeg(size: tuple[int, int] = (1280, 720)) -> bytes:
    """A generated picture (a dusk gradient with soft hills): the example's image asset,
    made here rather than shipped, like the tests' media."""
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    top, bottom = (44, 34, 88), (236, 122, 74)
    for y in range(height):
        t = y / (height - 1)
        draw.line([(0, y), (width, y)],
                  fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    draw.ellipse([width * 0.62, height * 0.18, width * 0.78, height * 0.46], fill=(255, 214, 150))
    draw.ellipse([-width * 0.2, height * 0.62, width * 0.7, height * 1.5], fill=(58, 40, 78))
    draw.ellipse([width * 0.35, height * 0.7, width * 1.3, height * 1.6], fill=(36, 26, 56))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def seed_example(app: Application, tenant_id: str) -> str | None:
    """Give the tenant the example project (with its generated backdrop) and the example
    template, unless it already has a template; the template's id, or None."""
    if app.projects.templates(tenant_id):
        return None
    project = app.projects.create(tenant_id, EXAMPLE_PROJECT)
    app.projects.upload(tenant_id, project.id, [Upload(BACKDROP, io.BytesIO(backdrop_jpeg()))])
    document = example_document()
    app.projects.put_document(tenant_id, project.id, document)
    return app.projects.create_template(tenant_id, EXAMPLE_TEMPLATE, document, project.id).id
