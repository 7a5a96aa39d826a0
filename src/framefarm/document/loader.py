"""From a file (or a dict) to a validated, resolved :class:`Project`.

Steps, each with errors that name the field or file:
parse JSON -> fill templates -> validate with pydantic -> check limits -> resolve and check
every asset (inside the project folder, present, readable media).
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pydantic
from PIL import Image, ImageFont, UnidentifiedImageError

from framefarm import errors, media
from framefarm.document import models, scaling, templates
from framefarm.limits import Limits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
CAPTION_SUFFIXES = {".srt", ".vtt"}
FONT_SUFFIXES = {".ttf", ".otf", ".ttc"}


@dataclasses.dataclass(frozen=True)
class Cue:
    """A caption made from speech: seconds from its scene's start, and its words."""

    start: float
    end: float
    text: str


@dataclasses.dataclass(frozen=True)
class Project:
    """A valid document with its assets resolved to absolute paths and probed.

    Once spoken voice-overs are resolved (``framefarm.speech.resolve``), each has a ``src``
    naming synthesised audio in ``assets``, and ``cues`` holds, per scene index, the
    captions made from its speech (they are text layers of the scene too)."""

    document: models.Document
    base_dir: Path
    assets: Mapping[str, Path]
    media: Mapping[Path, media.MediaInfo]
    limits: Limits
    cues: Mapping[int, Sequence[Cue]] = dataclasses.field(default_factory=dict)

    def asset(self, src: str) -> Path:
        return self.assets[src]


def read_json(path: Path, what: str = "document") -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise errors.DocumentError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.DocumentError(f"{what} {path}: cannot be read ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.DocumentError(
            f"{what} {path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise errors.DocumentError(
            f"{what} {path}: objects and arrays are nested deeper than "
            f"{templates.MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python will convert
        raise errors.DocumentError(f"{what} {path}: unusable JSON ({exc})") from None


def load(
    source: Path | Mapping[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
    limits: Limits | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Project:
    """Load a document from a path or a dict; ``overrides`` replace ``output`` fields."""
    limits = limits or Limits()
    if isinstance(source, Path):
        raw = read_json(source)
        base_dir = base_dir or source.resolve().parent
    else:
        raw = dict(source)
        base_dir = base_dir or Path.cwd()
    if not isinstance(raw, dict):
        raise errors.DocumentError("the document must be a JSON object with 'scenes'")
    resolved = templates.resolve(raw, data)
    try:  # the size the document was made for (an invalid output is reported below)
        design: models.Output | None = models.Output.model_validate(
            resolved.get("output") or {})
    except pydantic.ValidationError:
        design = None
    if overrides:
        output = dict(resolved.get("output") or {})
        output.update({k: v for k, v in overrides.items() if v is not None})
        if "size" in overrides and overrides["size"] is not None:
            output.pop("width", None)
            output.pop("height", None)
        resolved["output"] = output
    document = validate(resolved)
    check_limits(document, limits)
    if design is not None:
        document = _rescale(document, design)
    base_dir = base_dir.resolve()
    assets, problems = _resolve_assets(document, base_dir, limits)
    probed: dict[Path, media.MediaInfo] = {}
    try:  # the media that resolved are probed too, so one run lists every problem
        probed = _probe_media(document, assets, base_dir, limits)
    except errors.AssetError as exc:
        problems += exc.problems
    if problems:
        raise errors.AssetError(f"{len(problems)} asset problem(s)", problems)
    return Project(document=document, base_dir=base_dir, assets=assets, media=probed,
                   limits=limits)


def _rescale(document: models.Document, design: models.Output) -> models.Document:
    """Scale pixel values when an override changed the size the document was made for."""
    dw, dh = design.dimensions
    w, h = document.output.dimensions
    return scaling.scale(document, min(w / dw, h / dh))


def validate(raw: Mapping[str, Any]) -> models.Document:
    try:
        return models.Document.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = [format_error(e) for e in exc.errors()]
        raise errors.DocumentError(
            f"the document has {len(problems)} error(s)", problems
        ) from None


def format_error(error: Any) -> str:
    """One pydantic error as ``scenes[0].layers[1].size: <what was expected>``."""
    # Discriminated unions add the tag ("text") to a layer's location; it is not a JSON key
    # (a scene's own "captions" is one).
    where = error["loc"]
    loc = tuple(
        part for i, part in enumerate(where)
        if not (part in models.LAYER_TYPES and i > 1 and isinstance(where[i - 1], int)
                and where[i - 2] == "layers")
    )
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    elif error["type"] == "missing":
        message = "required field is missing"
    return f"{templates.json_path(loc)}: {message}"


def check_limits(doc: models.Document, limits: Limits) -> None:
    problems: list[str] = []
    width, height = doc.output.dimensions
    if width > limits.max_width or height > limits.max_height:
        problems.append(
            f"output: {width}x{height} is larger than the limit "
            f"{limits.max_width}x{limits.max_height}"
        )
    elif width * height > limits.max_pixels:
        problems.append(f"output: {width}x{height} has more than {limits.max_pixels} pixels")
    if doc.output.fps > limits.max_fps:
        problems.append(f"output.fps: {doc.output.fps} is above the limit {limits.max_fps}")
    if doc.output.chunks is not None and doc.output.chunks > limits.max_chunks:
        problems.append(f"output.chunks: {doc.output.chunks} is above {limits.max_chunks}")
    if len(doc.scenes) > limits.max_scenes:
        problems.append(f"scenes: {len(doc.scenes)} scenes, the limit is {limits.max_scenes}")
    fixed = sum(s.duration for s in doc.scenes if isinstance(s.duration, float | int))
    autos = sum(s.auto.max for s in doc.scenes if s.duration == "auto")
    if fixed + autos > limits.max_duration:
        problems.append(
            f"scenes: the video would last up to {fixed + autos:.0f} s, "
            f"the limit is {limits.max_duration:.0f} s"
        )
    total_layers = 0
    for i, scene in enumerate(doc.scenes):
        total_layers += len(scene.layers)
        spoken = scene.voiceover.text if scene.voiceover else None
        if spoken is not None and len(spoken) > limits.max_text_length:
            problems.append(f"scenes[{i}].voiceover.text: {len(spoken)} characters, "
                            f"the limit is {limits.max_text_length}")
        if len(scene.layers) > limits.max_layers_per_scene:
            problems.append(f"scenes[{i}].layers: {len(scene.layers)} layers, "
                            f"the limit is {limits.max_layers_per_scene}")
        for j, layer in enumerate(scene.layers):
            if isinstance(layer, models.TextLayer) and len(layer.text) > limits.max_text_length:
                problems.append(f"scenes[{i}].layers[{j}].text: {len(layer.text)} characters, "
                                f"the limit is {limits.max_text_length}")
    if total_layers > limits.max_layers:
        problems.append(f"scenes: {total_layers} layers in all, the limit is {limits.max_layers}")
    if problems:
        raise errors.DocumentError("the document is outside the limits", problems)


def iter_assets(doc: models.Document) -> Iterator[tuple[str, str, set[str]]]:
    """Every asset reference as (json path, src, allowed suffixes or empty for media)."""
    any_media: set[str] = set()
    for i, font in enumerate(doc.fonts):
        yield f"fonts[{i}].src", font.src, FONT_SUFFIXES
    if doc.music:
        yield "music.src", doc.music.src, any_media
    for i, scene in enumerate(doc.scenes):
        if scene.background_image:
            yield f"scenes[{i}].background_image", scene.background_image, IMAGE_SUFFIXES
        if scene.voiceover and scene.voiceover.src is not None:
            yield f"scenes[{i}].voiceover.src", scene.voiceover.src, any_media
        for j, layer in enumerate(scene.layers):
            where = f"scenes[{i}].layers[{j}]"
            if isinstance(layer, models.ImageLayer):
                yield f"{where}.src", layer.src, IMAGE_SUFFIXES
            elif isinstance(layer, models.VideoLayer):
                yield f"{where}.src", layer.src, any_media
            elif isinstance(layer, models.CaptionsLayer):
                yield f"{where}.src", layer.src, CAPTION_SUFFIXES
            elif isinstance(layer, models.SlidesLayer):
                for k, slide in enumerate(layer.images):
                    yield f"{where}.images[{k}].src", slide.src, IMAGE_SUFFIXES


def safe_path(base_dir: Path, src: str, where: str) -> Path:
    """Resolve ``src`` inside ``base_dir``; anything that escapes it is refused."""
    if "\x00" in src or not src.strip():
        raise errors.AssetError(f"{where}: {src!r} is not a valid path")
    if "://" in src:
        raise errors.AssetError(
            f"{where}: {src!r}: remote URLs are not fetched by the renderer; "
            "give a path inside the document's folder"
        )
    candidate = Path(src)
    if candidate.is_absolute():
        raise errors.AssetError(f"{where}: {src!r} is absolute; give a path relative to the "
                                "document's folder")
    resolved = (base_dir / candidate).resolve()
    if not resolved.is_relative_to(base_dir):
        raise errors.AssetError(f"{where}: {src!r} points outside the document's folder")
    return resolved


def _resolve_assets(doc: models.Document, base_dir: Path,
                    limits: Limits) -> tuple[dict[str, Path], list[str]]:
    """The assets that are usable files, and a problem for each one that is not."""
    assets: dict[str, Path] = {}
    problems: list[str] = []
    for where, src, suffixes in iter_assets(doc):
        try:
            path = safe_path(base_dir, src, where)
        except errors.AssetError as exc:
            problems.append(str(exc))
            continue
        problem = _file_problem(path, suffixes, limits)
        if problem is None and suffixes is IMAGE_SUFFIXES:
            problem = check_image(path, limits)
        elif problem is None and suffixes is FONT_SUFFIXES:
            problem = check_font(path)
        if problem:
            problems.append(_scrub(f"{where}: {src!r} {problem}", path, src, base_dir))
            continue
        assets[src] = path
    return assets, problems


_NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _file_problem(path: Path, suffixes: set[str], limits: Limits) -> str | None:
    """What makes ``path`` unusable as an asset file, if anything (never opens it)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror or type(exc).__name__})"
    for test, what in _NOT_REGULAR:
        if test(info.st_mode):
            return f"is {what}, not a regular file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if suffixes and path.suffix.lower() not in suffixes:
        return f"should be one of {', '.join(sorted(suffixes))}"
    if info.st_size > limits.max_asset_bytes:
        return f"is {info.st_size} bytes, the limit is {limits.max_asset_bytes}"
    if not os.access(path, os.R_OK):
        return "is not readable"
    return None


def _scrub(message: str, path: Path, src: str, base_dir: Path) -> str:
    """Name the asset as the document does: decoders quote the absolute path they opened,
    which on the server is a scratch folder nobody else should see."""
    for absolute, named in ((str(path), src), (str(base_dir) + os.sep, ""),
                            (str(base_dir), ".")):
        message = message.replace(absolute, named)
    return message


def check_image(path: Path, limits: Limits) -> str | None:
    """Why the still at ``path`` cannot be rendered, or None. The size is checked from the
    header before any pixel is decoded; then the data is decoded at reduced size (JPEG
    draft mode decodes every block at 1/8 scale) so a truncated or corrupt file is found
    here, not half-way through a render."""
    try:
        with media.open_still(path) as img:
            if img.width * img.height > limits.max_image_pixels:
                return f"is {img.width}x{img.height}, more pixels than the limit"
            img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except Image.DecompressionBombError:  # Pillow's own bound, far above any real still
        return f"claims far more pixels than the limit ({limits.max_image_pixels})"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            struct.error, MemoryError) as exc:
        return f"is not a readable image ({exc})"
    return None


def check_font(path: Path) -> str | None:
    """Why the font at ``path`` cannot be used, or None (it is loaded and a line measured)."""
    try:
        font = ImageFont.truetype(str(path), 24)
        font.getbbox("Ag")
    except (OSError, ValueError, MemoryError) as exc:
        return f"is not a font file Pillow can read ({exc})"
    return None


def _probe_media(doc: models.Document, assets: Mapping[str, Path], base_dir: Path,
                 limits: Limits) -> dict[Path, media.MediaInfo]:
    found: dict[Path, media.MediaInfo] = {}
    problems: list[str] = []
    for where, src, suffixes in iter_assets(doc):
        if suffixes or src not in assets:
            continue
        path = assets[src]
        if path in found:
            continue
        try:
            found[path] = media.probe(path, name=src, max_pixels=limits.max_image_pixels,
                                      decode=True)
        except errors.AssetError as exc:
            problems.append(_scrub(f"{where}: {exc}", path, src, base_dir))
    if problems:
        raise errors.AssetError(f"{len(problems)} asset problem(s)", problems)
    return found
