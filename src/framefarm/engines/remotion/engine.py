"""The Remotion engine: the :class:`framefarm.engines.Engine` seam for Remotion projects.

Remotion draws the frames (Chromium, the project's own @remotion/renderer, through
``bridge.mjs``); framefarm encodes them. A range's frames come as JPEG (PNG for the
lossless presets: :func:`frame_image`), in order, and go
to the same encoder command as a JSON document's frames (``compiler/encode.py``: the
quality table, the colour conversion and tags, a keyframe first, the same parameters for
every part), so parts of any split join by stream copy and the whole equals its parts
frame for frame. The sound is Remotion's (16-bit WAV of the range), encoded once with the
format's audio codec and bitrate to exactly the video's length. On the farm each chunk
brings its range's sound from its own pass over the frames (``render_range(sound=...)``)
and the assemble step joins them (:func:`join_sound`), so no node renders the
composition a second time for its audio.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import wave
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from framefarm import errors, formats
from framefarm.compiler import encode
from framefarm.compiler.audio import RATE
from framefarm.compiler.command import COMMON, FfmpegCommand
from framefarm.engines import Description, FrameCallback, FramesCallback, Settings, Source
from framefarm.engines.remotion import errors as remotion_errors
from framefarm.engines.remotion import process, project
from framefarm.ffmpeg import runner

# How Chromium hands each frame over. JPEG at quality 80 is what Remotion's own CLI uses
# for video: Chromium encodes a 1080p frame as JPEG several times faster than as PNG (a
# render on one core took 46 s instead of 80 s), and at these presets the x264 or VP9
# encode that follows is the larger loss. ``max`` and ``lossless`` get lossless PNG.
_PNG_PRESETS = ("max", "lossless")
JPEG_QUALITY = 80


def frame_image(quality: str) -> tuple[str, int | None]:
    """The still format Remotion draws frames in for ``quality``, and its JPEG quality."""
    return ("png", None) if quality in _PNG_PRESETS else ("jpeg", JPEG_QUALITY)


class RemotionEngine:
    """Renders Remotion projects. ``cache``: where dependencies and bundles are kept
    (default: :func:`project.default_cache`); ``browser``: the Chromium to drive (default:
    the system's)."""

    name = "remotion"

    def __init__(self, cache: Path | str | None = None, *, browser: str | Path | None = None,
                 prepare_timeout: float | None = 1800.0) -> None:
        self.cache = Path(cache) if cache is not None else project.default_cache()
        self.browser = browser
        self.prepare_timeout = prepare_timeout

    # -- the machine ------------------------------------------------------------------------

    def available(self) -> list[str]:
        return process.missing_tools(self.browser)

    def _browser(self) -> str:
        missing = self.available()
        if missing:
            raise remotion_errors.ToolMissing("; ".join(missing))
        found = process.chromium_binary(self.browser)
        assert found is not None
        return found

    # -- the project ------------------------------------------------------------------------

    def prepare(self, path: Path | str, *, cancel: threading.Event | None = None
                ) -> project.Prepared:
        """Install and bundle the project (each once, then from the cache)."""
        self._browser()  # refuse at once on a machine that cannot render
        return project.prepare(path, self.cache, timeout=self.prepare_timeout, cancel=cancel)

    def _request(self, ready: project.Prepared, **fields: Any) -> dict[str, Any]:
        return {"projectDir": str(ready.source), "serveUrl": str(ready.bundle),
                "browser": self._browser(), **fields}

    def compositions(self, path: Path | str, *, cancel: threading.Event | None = None
                     ) -> list[Description]:
        """Every composition the project registers, with its size, rate, length, default
        props and whether it declares a schema."""
        ready = self.prepare(path, cancel=cancel)
        result = process.bridge("compositions", self._request(ready), cwd=ready.source,
                                cancel=cancel, timeout=300)
        return [_description(c) for c in result["compositions"]]

    def describe(self, source: Source, *, cancel: threading.Event | None = None
                 ) -> Description:
        """The composition as these props make it (its ``calculateMetadata`` runs); the props
        are checked against its zod schema when it declares one."""
        if not source.composition:
            raise remotion_errors.CompositionError(
                "composition: name the composition to render (--composition ID); "
                "`framefarm compositions PATH` lists them")
        ready = self.prepare(source.path, cancel=cancel)
        # What a project version makes of these props is kept: its code runs with no
        # network and nothing of the node's, so the same bundle and props describe the
        # same composition, and a later job or task need not start Chromium to ask again.
        props = json.dumps(dict(source.props), sort_keys=True, separators=(",", ":"))
        key = hashlib.sha256(f"{ready.content_hash}\0{source.composition}\0{props}".encode())
        kept = self.cache / "descriptions" / f"{key.hexdigest()}.json"
        try:
            return _description(json.loads(kept.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not described yet (or a damaged file): ask the composition
        result = process.bridge(
            "describe", self._request(ready, composition=source.composition,
                                      props=dict(source.props)),
            cwd=ready.source, cancel=cancel, timeout=300)
        found = _description(result)  # checked before it is kept
        with contextlib.suppress(OSError):  # a cache that cannot be written is no cache
            kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the node's alone
            part = kept.with_name(f".{kept.name}.{os.getpid()}.{threading.get_ident()}")
            part.write_text(json.dumps(result), encoding="utf-8")
            os.replace(part, kept)
        return found

    def validate(self, source: Source, *, cancel: threading.Event | None = None
                 ) -> Description:
        """:meth:`describe`, and without a schema the props' JSON shape checked against
        the defaults: known names only, each of its default's JSON type."""
        description = self.describe(source, cancel=cancel)
        if description.has_schema is False:
            problems = shape_problems(source.props, description.default_props)
            if problems:
                raise remotion_errors.PropsError("props invalid", problems)
        return description

    # -- rendering --------------------------------------------------------------------------

    def render_range(self, source: Source, frames: tuple[int, int], output: Path,
                     settings: Settings, *, on_frames: FramesCallback | None = None,
                     on_frame: FrameCallback | None = None,
                     cancel: threading.Event | None = None,
                     description: Description | None = None, sound: Path | None = None
                     ) -> None:
        """Frames [a, b) of the composition, video only, encoded by framefarm to
        ``output`` (``settings.format``'s part: mp4 or webm, a keyframe first). With
        ``sound``, the range's audio is written there too (16-bit WAV, exactly the range's
        length), mixed from what the same pass over the frames collected."""
        start, end = frames
        output = Path(output).absolute()
        desc = description or self.describe(source, cancel=cancel)
        width, height = output_size(desc, settings.scale, settings.format)
        if not 0 <= start < end <= desc.frames:
            raise errors.DocumentError(f"frames {start}-{end}: the composition has frames "
                                       f"0-{desc.frames}")
        ready = self.prepare(source.path, cancel=cancel)
        cmd = encode.part(width=width, height=height, fps=desc.fps, fmt=settings.format,
                          quality=settings.quality, frames=end - start, output=output,
                          threads=settings.threads)
        done = 0
        image, jpeg_quality = frame_image(settings.quality)
        if sound is not None:
            sound = Path(sound).absolute()  # Node.js writes from the project's folder

        with runner.Process(cmd, cancel=cancel, timeout=settings.timeout) as proc:
            def take(n: int, still: bytes) -> None:
                nonlocal done
                bgr = cv2.imdecode(np.frombuffer(still, np.uint8), cv2.IMREAD_COLOR)
                if bgr is None or bgr.shape[:2] != (height, width):
                    got = "undecodable" if bgr is None else f"{bgr.shape[1]}x{bgr.shape[0]}"
                    raise remotion_errors.BridgeError(
                        "render", f"frame {n}: Remotion drew {got}, expected {width}x{height}")
                rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                if on_frame is not None:
                    on_frame(n, rgb)
                if cmd.stdin_pix_fmt == "yuv420p":
                    # BT.601 limited range 4:2:0, as the command's tags say (as engine.py).
                    proc.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
                else:
                    proc.write(rgb.tobytes())
                done += 1
                if on_frames is not None:
                    on_frames(done)

            try:
                process.bridge(
                    "frames", self._request(ready, composition=source.composition,
                                            props=dict(source.props), frames=[start, end],
                                            scale=settings.scale,
                                            imageFormat=image, jpegQuality=jpeg_quality,
                                            audioOutput=str(sound) if sound else None,
                                            concurrency=settings.threads or _cores()),
                    cwd=ready.source, on_frame=take, cancel=cancel, timeout=settings.timeout)
            except BaseException:
                # FFmpeg may be gone already (the cancel stops it too): close its input
                # here, from the writing thread, as the runner asks.
                proc.close_input()
                raise
            proc.wait()

    def render_audio(self, source: Source, output: Path, settings: Settings, *,
                     frames: tuple[int, int] | None = None,
                     cancel: threading.Event | None = None,
                     description: Description | None = None) -> None:
        """The sound of ``frames`` (default: the whole composition), silence included, in
        ``settings.format``'s audio codec, exactly as long as those frames."""
        output = Path(output).absolute()  # Node.js writes from the project's folder
        spec = formats.get(settings.format)
        if spec.audio_codec is None:
            raise errors.DocumentError(f"{spec.name} has no sound")
        desc = description or self.describe(source, cancel=cancel)
        start, end = frames or (0, desc.frames)
        ready = self.prepare(source.path, cancel=cancel)
        with tempfile.TemporaryDirectory(prefix=".audio-", dir=output.parent) as work:
            wav = Path(work) / "remotion.wav"
            process.bridge(
                "audio", self._request(ready, composition=source.composition,
                                       props=dict(source.props), frames=[start, end],
                                       output=str(wav), concurrency=settings.threads or _cores()),
                cwd=ready.source, cancel=cancel, timeout=settings.timeout)
            runner.run(audio_command(wav, output, fmt=settings.format, quality=settings.quality,
                                     seconds=(end - start) / desc.fps),
                       cancel=cancel, timeout=settings.timeout)

    def snapshot(self, source: Source, frame: int, output: Path, settings: Settings, *,
                 cancel: threading.Event | None = None,
                 description: Description | None = None) -> None:
        """Frame ``frame`` as PNG (or JPEG, by ``output``'s suffix), nothing before it drawn."""
        output = Path(output).absolute()  # Node.js writes from the project's folder
        suffix = output.suffix.lower().lstrip(".")
        still = "jpeg" if suffix == "jpg" else suffix
        if still not in formats.STILL_MEDIA_TYPES:
            raise errors.DocumentError(f"{output.name}: a snapshot is written as .png or .jpg")
        desc = description or self.describe(source, cancel=cancel)
        if not 0 <= frame < desc.frames:
            raise errors.FrameSelectionError("frame", str(frame), f"frame {frame} is not in "
                                             "the video", f"the composition has frames "
                                             f"0-{desc.frames - 1}")
        output_size(desc, settings.scale, "png")
        ready = self.prepare(source.path, cancel=cancel)
        tmp = output.with_name(f".{output.name}.part.png")
        try:
            process.bridge("still", self._request(ready, composition=source.composition,
                                                  props=dict(source.props), frame=frame,
                                                  output=str(tmp), scale=settings.scale),
                           cwd=ready.source, cancel=cancel, timeout=settings.timeout or 300)
            if still == "jpeg":
                with Image.open(tmp) as image:
                    image.convert("RGB").save(output.with_name(f".{output.name}.part"),
                                              format="JPEG", quality=92)
                os.replace(output.with_name(f".{output.name}.part"), output)
            else:
                os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
            output.with_name(f".{output.name}.part").unlink(missing_ok=True)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _description(data: Mapping[str, Any]) -> Description:
    return Description(id=str(data["id"]), width=int(data["width"]), height=int(data["height"]),
                       fps=_fps(data["fps"], str(data["id"])),
                       frames=int(data["durationInFrames"]),
                       default_props=dict(data.get("defaultProps") or {}),
                       props=dict(data.get("props") or {}),
                       has_schema=data.get("hasSchema"))


def _fps(value: Any, composition: str) -> int:
    """framefarm's timelines run at whole frame rates."""
    if float(value) != int(value):
        raise remotion_errors.ProjectError(
            f"composition {composition}: {value} fps; framefarm renders whole frame rates")
    return int(value)


def output_size(description: Description, scale: float, fmt: str) -> tuple[int, int]:
    """The rendered size at ``scale``: whole pixels, and even for the 4:2:0 formats."""
    width, height = description.width * scale, description.height * scale
    if scale <= 0 or width != int(width) or height != int(height):
        raise errors.DocumentError(
            f"scale {scale:g}: {description.width}x{description.height} would be "
            f"{width:g}x{height:g}; choose a scale that gives whole pixels")
    if fmt in ("mp4", "webm") and (int(width) % 2 or int(height) % 2):
        raise errors.DocumentError(
            f"scale {scale:g}: {int(width)}x{int(height)} has an odd side, which {fmt} cannot "
            "hold; choose a scale that gives even sides")
    return int(width), int(height)


def scale_for(size: str | None, description: Description) -> float:
    """A size preset (``720p``: the short side in pixels, as for documents) as a scale."""
    if size is None:
        return 1.0
    from framefarm.document.models import SIZE_PRESETS

    return SIZE_PRESETS[size] / min(description.width, description.height)


def audio_command(wav: Path, output: Path, *, fmt: str, quality: str,
                  seconds: float) -> FfmpegCommand:
    """Remotion's WAV -> the format's audio codec at the quality's bitrate, 48 kHz stereo,
    padded or trimmed to exactly ``seconds``."""
    spec = formats.get(fmt)
    assert spec.audio_codec is not None
    samples = round(seconds * RATE)
    graph = (f"aresample={RATE},aformat=sample_fmts=fltp:sample_rates={RATE}"
             f":channel_layouts=stereo,apad=whole_len={samples},atrim=end_sample={samples}")
    args = (*COMMON, "-i", str(wav), "-vn", "-af", graph, "-c:a", spec.audio_codec,
            "-b:a", f"{encode.QUALITY[quality].audio_kbps}k", "-ar", str(RATE),
            "-f", spec.container, "-y", str(output))
    return FfmpegCommand(args, description="encode the composition's audio")


# On the farm a code template's part carries its range's sound: the video stream as
# encoded, with 16-bit PCM beside it, in the container of the part's family that holds
# PCM (MP4's parts are not allowed PCM, QuickTime's are; WebM's are Matroska's).
SOUND_PART_SUFFIX = {"mp4": "mov", "webm": "mkv"}


def sound_part_command(video: Path, wav: Path, output: Path) -> FfmpegCommand:
    """A part (``video``) and its range's sound (``wav``) in one file, by stream copy."""
    muxer = "mov" if output.suffix == ".mov" else "matroska"
    args = (*COMMON, "-i", str(video), "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "copy", "-c:a", "pcm_s16le", "-f", muxer, "-y", str(output))
    return FfmpegCommand(args, description="add the range's sound to its part")


def join_sound(parts: Sequence[tuple[Path, int]], output: Path, *, fmt: str, quality: str,
               fps: int, workdir: Path, cancel: threading.Event | None = None) -> None:
    """The sound of parts made with their range's sound (in order, with their frame
    counts), joined sample for sample and encoded once, exactly as long as their frames."""
    wav = workdir / "joined-sound.wav"
    pcm = workdir / "part-sound.pcm"
    start = 0
    with wave.open(str(wav), "wb") as joined:
        joined.setnchannels(2)
        joined.setsampwidth(2)
        joined.setframerate(RATE)
        for part, frames in parts:
            # Each part's samples end where its last frame does, so rounding never drifts.
            samples = round((start + frames) * RATE / fps) - round(start * RATE / fps)
            start += frames
            graph = (f"aresample={RATE},aformat=sample_fmts=s16:channel_layouts=stereo,"
                     f"apad=whole_len={samples},atrim=end_sample={samples}")
            runner.run(FfmpegCommand((*COMMON, "-i", str(part), "-map", "0:a:0", "-af", graph,
                                      "-c:a", "pcm_s16le", "-f", "s16le", "-y", str(pcm)),
                                     description=f"take the sound of {part.name}"),
                       cancel=cancel)
            with pcm.open("rb") as stream:
                while block := stream.read(1 << 20):
                    joined.writeframesraw(block)
    pcm.unlink(missing_ok=True)
    runner.run(audio_command(wav, output, fmt=fmt, quality=quality, seconds=start / fps),
               cancel=cancel)
    wav.unlink(missing_ok=True)


def shape_problems(props: Mapping[str, Any], defaults: Mapping[str, Any],
                   path: str = "") -> list[str]:
    """Props checked against the defaults' JSON shape (for compositions without a schema):
    no name the defaults lack (when they have any), and each value of its default's JSON
    type, recursively; a null default takes anything."""
    problems = []
    for key, value in props.items():
        where = f"{path}{key}"
        if key not in defaults:
            if defaults:
                problems.append(f"{where}: not a prop of the composition (it has "
                                f"{', '.join(sorted(defaults))})")
            continue
        problems += _value_problems(value, defaults[key], where)
    return problems


def _value_problems(value: Any, default: Any, where: str) -> list[str]:
    if default is None:
        return []
    kind, want = _json_type(value), _json_type(default)
    if kind != want:
        return [f"{where}: expected {want}, got {kind}"]
    if isinstance(default, dict):
        return shape_problems(value, default, f"{where}.")
    if isinstance(default, list) and default:
        return [p for i, item in enumerate(value)
                for p in _value_problems(item, default[0], f"{where}.{i}")]
    return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


if TYPE_CHECKING:
    from framefarm.engines import Engine

    def _fills_the_seam(engine: RemotionEngine) -> Engine:
        return engine  # mypy checks RemotionEngine against the Engine protocol here
