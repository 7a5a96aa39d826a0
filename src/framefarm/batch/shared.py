"""Which frames of a batch are the same for every row, so they are rendered once.

A document is declarative, so what each frame's pixels depend on is known without drawing
it: the scene (or two, in a transition) showing at that frame, the frame's place in each
scene, the layers active there with their filled-in properties, the transition and its
progress, the contents of the assets those layers read, the fonts, the frame size and
the background. :func:`frame_digests` hashes exactly that, per frame, for one row's
timeline; :func:`plan` compares the rows frame by frame and cuts the video into
segments, shared where every row's digest is equal for long enough to be worth a part of
its own (:func:`min_shared_frames`). Nothing is rendered to decide.

Each shared segment has a content key (:func:`part_key`): the sha256 of its frames'
digests and of everything that makes the encoded part what it is (encoder settings,
size, frame rate, format, the encoder build). Equal keys mean interchangeable parts,
within a batch and across batches and templates; the key does not include where in the
video the frames are, as the pixels do not depend on that.

What is deliberately left out of a frame's digest is only what cannot change pixels: a
scene's voice-over and name, a video clip's volume, layers not active at that frame. The
audio is not shared: it is mixed per row for the whole length, as a solo render does.
See docs/shared-frames.md.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from framefarm.compiler import encode
from framefarm.document import models
from framefarm.document.timeline import SceneSpan, Timeline
from framefarm.ffmpeg import runner

# What a part costs before its first frame, in frames of work: starting the encoder and
# its lookahead, setting the scene up again (stills decoded, text rasterised), one more
# keyframe, one more concat entry. Measured at 720p, x264 "high", one thread a part
# (``python bench/shared_frames.py --part-cost``; docs/shared-frames.md): about 0.1 s,
# which is 2.5 frames of a photo with Ken Burns and up to 13 of a plain scene (a colour, a
# shape, a title). The cheap frames' figure is taken: there a part's fixed cost weighs most.
PART_COST_FRAMES = 13

_KEY_VERSION = b"framefarm-shared-part-v1"


@dataclasses.dataclass(frozen=True)
class Segment:
    """Frames [start, end): shared by every row (rendered once, ``key`` names the part),
    or the rows' own."""

    start: int
    end: int
    shared: bool
    key: str | None = None

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class Plan:
    """Segments covering frames [0, total_frames) of the longest row, in order."""

    segments: tuple[Segment, ...]
    total_frames: int

    @property
    def shared(self) -> list[Segment]:
        return [s for s in self.segments if s.shared]

    @property
    def shared_frames(self) -> int:
        return sum(s.frames for s in self.shared)

    def for_row(self, total_frames: int) -> list[Segment]:
        """The segments of a row whose video has ``total_frames``: the plan cut to its
        length (shared segments always lie inside every row)."""
        out = []
        for seg in self.segments:
            if seg.start >= total_frames:
                break
            out.append(dataclasses.replace(seg, end=min(seg.end, total_frames))
                       if not seg.shared else seg)
        return out


class AssetDigests:
    """The sha256 of asset files, computed once per file version (size and mtime), so a
    batch's 100 rows that use the same photo read it once."""

    def __init__(self) -> None:
        self._known: dict[tuple[Path, int, int], bytes] = {}

    def __call__(self, path: Path) -> bytes:
        st = path.stat()
        stamp = (path, st.st_size, st.st_mtime_ns)
        found = self._known.get(stamp)
        if found is None:
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
            found = self._known[stamp] = digest.digest()
        return found


@functools.cache
def encoder_build() -> str:
    """The encoder's identity in keys: parts from different FFmpeg builds may not join by
    stream copy, so they are never taken for one another."""
    return runner.ffmpeg_version()


def encoder_settings(tl: Timeline, encoder: str | None = None) -> dict[str, Any]:
    """What, besides the pixels, makes an encoded part what it is. The thread count is not
    in it: it changes an x264 part's bytes, not its settings or its pictures' quality."""
    fmt, quality = tl.output.format, tl.output.quality
    try:
        codec = list(encode.video_codec_args(fmt, quality, tl.fps, None))
    except ValueError:  # a GIF (one palette for the whole clip) or a still: no video part
        codec = [fmt]
    return {"format": fmt, "quality": quality, "width": tl.width, "height": tl.height,
            "fps": tl.fps, "codec": codec,
            "encoder": encoder if encoder is not None else encoder_build()}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                      ).encode("utf-8")


def _by_content(value: Any, content: Callable[[str], bytes]) -> Any:
    """A layer's JSON with every ``src`` (image, video, captions, each slide...) replaced by
    its file's digest: two names for the same bytes are the same picture."""
    if isinstance(value, dict):
        return {key: content(item).hex() if key == "src" and isinstance(item, str)
                else _by_content(item, content) for key, item in value.items()}
    if isinstance(value, list):
        return [_by_content(item, content) for item in value]
    return value


@dataclasses.dataclass(frozen=True)
class _Layer:
    start: float
    end: float | None
    digest: bytes


class _Hasher:
    """Digests of one timeline's frames; layers and scenes are hashed once."""

    def __init__(self, tl: Timeline, assets: AssetDigests, encoder: str | None) -> None:
        self.tl = tl
        self.assets = assets
        doc = tl.project.document
        fonts = [[f.family, f.weight, self._asset(f.src).hex()] for f in doc.fonts]
        self.base = hashlib.sha256(_canonical({
            "settings": encoder_settings(tl, encoder), "background": doc.output.background,
            "fonts": fonts})).digest()
        self._scenes: dict[int, tuple[bytes, list[_Layer]]] = {}

    def _asset(self, src: str) -> bytes:
        path = self.tl.project.assets.get(src)
        return self.assets(path) if path is not None else src.encode("utf-8")

    def _layer(self, layer: models.LayerBase) -> bytes:
        # A clip's volume is sound only; everything else a layer says may show.
        exclude = {"volume"} if isinstance(layer, models.VideoLayer) else None
        dumped = layer.model_dump(mode="json", by_alias=True, exclude=exclude)
        return hashlib.sha256(_canonical(_by_content(dumped, self._asset))).digest()

    def scene(self, span: SceneSpan) -> tuple[bytes, list[_Layer]]:
        found = self._scenes.get(span.index)
        if found is None:
            scene = span.scene
            head = {"frames": span.frames, "background": scene.background}
            layers = [_Layer(layer.start, layer.end, self._layer(layer))
                      for layer in scene.layers]
            if scene.background_image:  # drawn as a cover image under the layers, always
                backdrop = models.ImageLayer(type="image", src=scene.background_image,
                                             fit="cover")
                layers.insert(0, _Layer(0.0, None, self._layer(backdrop)))
            found = self._scenes[span.index] = (hashlib.sha256(_canonical(head)).digest(),
                                                layers)
        return found

    def frame(self, n: int) -> bytes:
        fps = self.tl.fps
        digest = hashlib.sha256(self.base)
        spans = self.tl.scenes_at(n)
        for span in spans:
            head, layers = self.scene(span)
            digest.update(b"S" + head + struct.pack(">q", n - span.start))
            # The compositor's own test, with the same arithmetic (compositor/layers.py
            # Base.active): a layer outside its time draws nothing.
            t = (n - span.start) / fps
            duration = span.frames / fps
            for layer in layers:
                end = min(layer.end if layer.end is not None else duration, duration)
                if layer.start <= t < end:
                    digest.update(b"L" + layer.digest)
        if len(spans) == 2:
            outgoing, incoming = spans
            assert outgoing.transition is not None
            digest.update(b"T" + outgoing.transition.type.encode("utf-8") + struct.pack(
                ">qq", n - incoming.start, outgoing.transition_frames))
        return digest.digest()


def frame_digests(tl: Timeline, *, assets: AssetDigests | None = None,
                  encoder: str | None = None) -> list[bytes]:
    """One digest per frame of ``tl``: equal digests, equal pixels in equal parts."""
    hasher = _Hasher(tl, assets or AssetDigests(), encoder)
    return [hasher.frame(n) for n in range(tl.total_frames)]


def part_key(digests: Sequence[bytes], settings: Mapping[str, Any]) -> str:
    """The content key of a part made of frames with these digests and these encoder
    settings (the digests already carry the settings; stated again, so a key never
    depends on how a digest was made)."""
    key = hashlib.sha256(_KEY_VERSION)
    key.update(_canonical(dict(settings)))
    key.update(struct.pack(">q", len(digests)))
    for d in digests:
        key.update(d)
    return key.hexdigest()


def min_shared_frames(rows: int) -> int:
    """The shortest shared run worth a part of its own in a batch of ``rows``.

    Sharing a run of L frames saves (rows - 1) x L frames of work; in the worst case (a
    run between two of the rows' own stretches) it costs the shared part's fixed cost and
    one more part in every row: (rows + 1) x PART_COST_FRAMES. Break-even is therefore
    PART_COST_FRAMES x (rows + 1) / (rows - 1): 39 frames for 2 rows, 16 for 10, 14 for
    100. A run at the start or the end of the video costs less (no row gains a part)."""
    if rows < 2:
        return 2**62  # nothing to share with
    return math.ceil(PART_COST_FRAMES * (rows + 1) / (rows - 1))


def plan(timelines: Sequence[Timeline], *, min_frames: int | None = None,
         assets: AssetDigests | None = None, encoder: str | None = None) -> Plan:
    """The segments of a batch whose rows are ``timelines`` (the template filled with each
    row's data). Fewer than two rows share nothing: there is nothing to share with."""
    if not timelines:
        return Plan((), 0)
    total = max(tl.total_frames for tl in timelines)
    if len(timelines) < 2:
        return Plan((Segment(0, total, False),), total)
    assets = assets or AssetDigests()
    encoder = encoder if encoder is not None else encoder_build()
    first = timelines[0]
    minimum = min_frames if min_frames is not None else min_shared_frames(len(timelines))
    reference = frame_digests(first, assets=assets, encoder=encoder)
    same = [True] * min(tl.total_frames for tl in timelines)
    for tl in timelines[1:]:
        for n, d in enumerate(frame_digests(tl, assets=assets, encoder=encoder)[:len(same)]):
            if same[n] and d != reference[n]:
                same[n] = False
    same += [False] * (total - len(same))
    settings = encoder_settings(first, encoder)
    segments: list[Segment] = []
    for start, end, shared in _runs(same):
        if shared and end - start < minimum:
            shared = False
        if segments and not shared and not segments[-1].shared:
            start = segments.pop().start  # a short shared run joins its neighbours
        key = part_key(reference[start:end], settings) if shared else None
        segments.append(Segment(start, end, shared, key))
    return Plan(tuple(segments), total)


def _runs(flags: Sequence[bool]) -> Iterator[tuple[int, int, bool]]:
    start = 0
    for n in range(1, len(flags) + 1):
        if n == len(flags) or flags[n] != flags[start]:
            yield start, n, flags[start]
            start = n


def part_path(folder: Path, segment: Segment, suffix: str = "mp4") -> Path:
    """Where a shared segment's part is kept: named by its key."""
    assert segment.key is not None, "only a shared segment has a key"
    return folder / f"{segment.key}.{suffix}"
