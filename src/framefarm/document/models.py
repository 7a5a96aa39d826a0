"""The video document: pydantic models, exported as JSON Schema by ``framefarm schema``.

Times are seconds here; :mod:`framefarm.document.timeline` snaps them to frames once.
Sizes and positions are pixels of the output, or strings like ``"50%"`` of the frame.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The choices a front end names without the models (the CLI's options), defined once.
from framefarm.document.choices import Aspect as Aspect
from framefarm.document.choices import Format as Format
from framefarm.document.choices import Fps as Fps
from framefarm.document.choices import Quality as Quality
from framefarm.document.choices import SizePreset as SizePreset

# -- small shared types -------------------------------------------------------------------

_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_NAMED_COLORS = {
    "black": "#000000", "white": "#ffffff", "red": "#ff0000", "green": "#00ff00",
    "blue": "#0000ff", "yellow": "#ffff00", "cyan": "#00ffff", "magenta": "#ff00ff",
    "gray": "#808080", "grey": "#808080", "orange": "#ff8000", "transparent": "#00000000",
}
# C0/C1 control characters other than newline and tab never belong in a text layer.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _check_color(value: str) -> str:
    value = value.strip()
    lowered = value.lower()
    if lowered in _NAMED_COLORS:
        return _NAMED_COLORS[lowered]
    if not _COLOR_RE.match(value):
        raise ValueError(f"expected a colour like '#ff5a00', '#fff' or a name, got {value!r}")
    return value


Color = Annotated[str, Field(description="'#rgb', '#rrggbb', '#rrggbbaa' or a basic colour name")]
Length = Annotated[
    float | str,
    Field(description="pixels of the output frame, or a percentage of it such as '50%'"),
]
Seconds = Annotated[float, Field(ge=0)]


class Strict(BaseModel):
    """Base: unknown fields are errors, so typos are reported instead of ignored."""

    model_config = ConfigDict(extra="forbid")


def _check_length(value: float | str) -> float | str:
    if isinstance(value, str) and not re.fullmatch(r"-?\d+(\.\d+)?%", value.strip()):
        raise ValueError(f"expected pixels or a percentage like '50%', got {value!r}")
    if isinstance(value, str) and abs(float(value.strip()[:-1])) > 100_000:
        shown = value.strip() if len(value.strip()) <= 12 else value.strip()[:12] + "..."
        raise ValueError(f"{shown!r}: a percentage beyond 100000% either way is not a "
                         "place in the frame")
    return value


# -- output --------------------------------------------------------------------------------


# A size preset is the short side in pixels; the aspect gives the long one.
SIZE_PRESETS: dict[str, int] = {"360p": 360, "480p": 480, "720p": 720, "1080p": 1080,
                                "1440p": 1440, "2160p": 2160}
ASPECTS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1),
                                       "4:5": (4, 5)}


class Output(Strict):
    """What to produce: size, frame rate, container and quality."""

    size: SizePreset = "1080p"
    aspect: Aspect = "16:9"
    width: int | None = Field(None, ge=16, description="explicit width; overrides size/aspect")
    height: int | None = Field(None, ge=16, description="explicit height; overrides size/aspect")
    fps: Fps = 30
    format: Format = "mp4"
    quality: Quality = "high"
    background: Color = "#000000"
    chunks: int | None = Field(None, ge=1, description=(
        "frame ranges rendered in parallel, then joined; default: two on a machine with two "
        "or more cores when each would last at least 4 s, else one"))

    _bg = field_validator("background")(_check_color)

    @model_validator(mode="after")
    def _both_or_neither(self) -> Output:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        return self

    @property
    def dimensions(self) -> tuple[int, int]:
        """Width and height in pixels, both even (H.264 with 4:2:0 needs that)."""
        if self.width is not None and self.height is not None:
            w, h = self.width, self.height
        else:
            short = SIZE_PRESETS[self.size]
            aw, ah = ASPECTS[self.aspect]
            if aw >= ah:
                h, w = short, round(short * aw / ah)
            else:
                w, h = short, round(short * ah / aw)
        return w - w % 2, h - h % 2


# -- animation -----------------------------------------------------------------------------

EasingName = Literal["linear", "ease-in", "ease-out", "ease-in-out", "back-out"]
Easing = EasingName | tuple[float, float, float, float]
AnimatedProp = Literal["x", "y", "scale", "rotation", "opacity"]
EnterExit = Literal[
    "none", "fade", "slide_left", "slide_right", "slide_up", "slide_down", "zoom", "pop"
]


class Keyframe(Strict):
    """A value at a time (seconds from the layer's start), eased towards the next keyframe."""

    time: Seconds
    value: float
    easing: Easing = Field(
        "linear", description="a name, or cubic-bezier control points [x1, y1, x2, y2]"
    )

    @field_validator("easing")
    @classmethod
    def _bezier_in_range(cls, value: Easing) -> Easing:
        if isinstance(value, tuple) and not (0 <= value[0] <= 1 and 0 <= value[2] <= 1):
            raise ValueError("cubic-bezier x1 and x2 must be between 0 and 1")
        return value


class Animation(Strict):
    """Enter and exit animations, each lasting ``duration`` seconds."""

    in_: EnterExit = Field("none", alias="in")
    out: EnterExit = "none"
    duration: float = Field(0.5, gt=0, le=10)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Position = Literal[
    "center", "top", "bottom", "left", "right",
    "top-left", "top-right", "bottom-left", "bottom-right",
]


class LayerBase(Strict):
    """What every layer has: its box, its time inside the scene, opacity and animation."""

    start: Seconds = Field(0, description="seconds from the scene's start")
    end: Seconds | None = Field(
        None, description="seconds from the scene's start; default: the scene's end")
    x: Length | None = None
    y: Length | None = None
    width: Length | None = None
    height: Length | None = None
    position: Position | None = Field(
        None, description="place the box in the frame (with a 5% margin) when x/y are not given"
    )
    opacity: float = Field(1.0, ge=0, le=1)
    scale: float = Field(1.0, gt=0, le=20)
    rotation: float = Field(0.0, ge=-3600, le=3600, description="degrees, clockwise")
    animation: Animation = Field(default_factory=Animation)
    keyframes: dict[AnimatedProp, list[Keyframe]] = Field(default_factory=dict)

    _lengths = field_validator("x", "y", "width", "height")(_check_length)

    @model_validator(mode="after")
    def _times_in_order(self) -> LayerBase:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        for prop, frames in self.keyframes.items():
            times = [k.time for k in frames]
            if not frames:
                raise ValueError(f"keyframes for {prop!r} are empty")
            if times != sorted(times):
                raise ValueError(f"keyframes for {prop!r} must be in time order")
        return self


# -- layers --------------------------------------------------------------------------------

Fit = Literal["cover", "contain", "fill"]
Pan = Literal[
    "none", "left", "right", "up", "down", "up-left", "up-right", "down-left", "down-right"
]


class KenBurns(Strict):
    """Slow zoom and pan over a still, smooth to a fraction of a pixel."""

    type: Literal["ken_burns"] = "ken_burns"
    zoom: tuple[float, float] = Field((1.0, 1.15), description="zoom at the start and at the end")
    pan: Pan = Field("none", description="the direction the picture drifts")
    easing: Easing = "linear"

    @field_validator("zoom")
    @classmethod
    def _zoom_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(1.0 <= z <= 5.0 for z in value):
            raise ValueError("zoom values must be between 1.0 and 5.0")
        return value


class ImageLayer(LayerBase):
    """A still image fitted into the layer's box, optionally with Ken Burns motion."""

    type: Literal["image"]
    src: str
    fit: Fit = "cover"
    motion: KenBurns | None = None


class VideoLayer(LayerBase):
    """A video clip: trimmed, looped, with its sound at a volume (or muted)."""

    type: Literal["video"]
    src: str
    fit: Fit = "cover"
    trim_start: Seconds = 0
    trim_end: Seconds | None = None
    loop: bool = False
    volume: float = Field(1.0, ge=0, le=4)
    muted: bool = False


Align = Literal["left", "center", "right"]
VAlign = Literal["top", "middle", "bottom"]
Weight = Literal["normal", "bold"]


class Shadow(Strict):
    color: Color = "#000000a0"
    offset: tuple[float, float] = (3, 3)
    blur: float = Field(4, ge=0, le=50)

    _c = field_validator("color")(_check_color)


class TextBox(Strict):
    color: Color = "#00000099"
    padding: float = Field(16, ge=0, le=500)
    radius: float = Field(12, ge=0, le=500)

    _c = field_validator("color")(_check_color)


class TextStyle(Strict):
    """How text looks; shared by text and caption layers."""

    font: str = Field("auto", description="a bundled or declared family; 'auto' picks by script")
    size: float = Field(64, gt=0, le=1000)
    color: Color = "#ffffff"
    weight: Weight = "normal"
    align: Align = "center"
    valign: VAlign = "middle"
    line_height: float = Field(1.25, gt=0.5, le=4)
    stroke_width: float = Field(0, ge=0, le=50)
    stroke_color: Color = "#000000"
    shadow: Shadow | None = None
    background: TextBox | None = None
    direction: Literal["auto", "ltr", "rtl"] = Field(
        "auto", description="paragraph direction; 'auto': right-to-left when most strong "
        "characters are of a right-to-left script")

    _c = field_validator("color", "stroke_color")(_check_color)


def _check_text(value: str) -> str:
    bad = _CONTROL_RE.search(value)
    if bad:
        raise ValueError(
            f"text contains the control character U+{ord(bad.group()):04X} "
            f"at position {bad.start()}; only newlines and tabs are allowed"
        )
    return value


class TextHighlight(Strict):
    """Characters ``start``..``end`` (a word) of a text drawn in another colour."""

    start: int = Field(ge=0)
    end: int = Field(ge=1)
    color: Color = "#ffd400"

    _c = field_validator("color")(_check_color)


class TextLayer(LayerBase):
    """Text wrapped inside the layer's box; right-to-left and complex scripts are shaped."""

    type: Literal["text"]
    text: str = Field(min_length=1)
    style: TextStyle = Field(default_factory=TextStyle)
    highlight: TextHighlight | None = Field(
        None, description="a word of the text in another colour (spoken captions use it)")

    _t = field_validator("text")(_check_text)

    @model_validator(mode="after")
    def _highlight_inside(self) -> TextLayer:
        if self.highlight is not None and not (
                self.highlight.start < self.highlight.end <= len(self.text)):
            raise ValueError(f"highlight {self.highlight.start}..{self.highlight.end} is not "
                             f"inside the text ({len(self.text)} characters)")
        return self


class ShapeLayer(LayerBase):
    """A filled rectangle, rounded rectangle or circle."""

    type: Literal["shape"]
    shape: Literal["rectangle", "rounded", "circle"] = "rectangle"
    fill: Color = "#ffffff"
    radius: float = Field(24, ge=0, description="corner radius of a rounded rectangle")

    _c = field_validator("fill")(_check_color)


class Slide(Strict):
    src: str
    motion: KenBurns | None = None


class SlidesLayer(LayerBase):
    """One to several images shown in turn, sharing the layer's time, cross-faded."""

    type: Literal["slides"]
    images: list[Slide] = Field(min_length=1, max_length=50)
    fit: Fit = "cover"
    crossfade: float = Field(0.5, ge=0, le=5)


class CaptionsLayer(LayerBase):
    """Subtitles from an SRT or WebVTT file, styled like text."""

    type: Literal["captions"]
    src: str
    style: TextStyle = Field(default_factory=lambda: TextStyle(size=48, valign="bottom"))


AnyLayer = ImageLayer | VideoLayer | TextLayer | ShapeLayer | SlidesLayer | CaptionsLayer
Layer = Annotated[AnyLayer, Field(discriminator="type")]
LAYER_TYPES = ("image", "video", "text", "shape", "slides", "captions")

# -- scenes --------------------------------------------------------------------------------

TransitionType = Literal[
    "fade", "dissolve",
    "wipe_left", "wipe_right", "wipe_up", "wipe_down",
    "slide_left", "slide_right", "slide_up", "slide_down",
    "circle_open", "circle_close", "zoom",
]


class Transition(Strict):
    """How this scene turns into the next one; the two overlap for ``duration`` seconds."""

    type: TransitionType = "dissolve"
    duration: float = Field(0.5, gt=0, le=5)


class Voiceover(Strict):
    """A scene's narration: an audio file (``src``), or ``text`` spoken by a text-to-speech
    provider (see docs/speech.md), with an optional ``voice`` and ``rate``."""

    src: str | None = Field(None, description="an audio file inside the document's folder")
    text: str | None = Field(None, min_length=1, description="words to speak instead of a file")
    voice: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$",
        description="the provider's voice (letters, digits, '_', '.', '+', '-'); default: "
        "chosen by the text's script")
    rate: int | None = Field(None, ge=80, le=450, description="words per minute")
    provider: Literal["espeak-ng", "command"] | None = Field(
        None, description="the text-to-speech provider; default: FRAMEFARM_TTS_PROVIDER, "
        "else espeak-ng")
    volume: float = Field(1.0, ge=0, le=4)
    delay: Seconds = Field(0, description="seconds after the scene starts")

    @field_validator("text")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        return value if value is None else _check_text(value)

    @model_validator(mode="after")
    def _file_or_text(self) -> Voiceover:
        if (self.src is None) == (self.text is None):
            raise ValueError("give the voice-over's 'src' (a file) or its 'text': one of "
                             "the two")
        if self.text is not None and not self.text.strip():
            raise ValueError("the voice-over's text is blank")
        if self.src is not None and (self.voice or self.rate or self.provider):
            raise ValueError("'voice', 'rate' and 'provider' are for a spoken 'text'")
        return self


class WordHighlight(Strict):
    """The word being spoken, drawn in its own colour."""

    color: Color = "#ffd400"

    _c = field_validator("color")(_check_color)


class SpokenCaptions(LayerBase):
    """Captions timed from the scene's spoken voice-over, shown as text (one cue per
    phrase), with an optional highlight of the word being spoken. ``start``/``end`` are a
    window in the scene (cues outside it are cut off); animations and ``keyframes`` play
    per cue, as for caption files."""

    from_: Literal["voiceover"] = Field(alias="from")
    style: TextStyle = Field(default_factory=lambda: TextStyle(size=48, valign="bottom"))
    max_words: int | None = Field(
        None, ge=1, le=40, description="words a cue shows at most; default: the phrases "
        "the voice spoke")
    highlight: WordHighlight | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AutoDuration(Strict):
    """'auto' duration: the voice-over's length plus padding, clamped (seed 002's min/max shot)."""

    padding: Seconds = 0.5
    min: Seconds = 2.5
    max: Seconds = 8.0


class Scene(Strict):
    """A stretch of the video: a background, layers on top, an optional voice-over."""

    duration: float | Literal["auto"] = Field(5.0, description="seconds, or 'auto'")
    auto: AutoDuration = Field(default_factory=AutoDuration)
    background: Color | None = None
    background_image: str | None = None
    voiceover: Voiceover | None = None
    captions: SpokenCaptions | None = Field(
        None, description="captions from the spoken voice-over: {\"from\": \"voiceover\"}")
    transition: Transition | None = Field(None, description="into the next scene")
    layers: list[Layer] = Field(default_factory=list)
    name: str | None = None

    @field_validator("background")
    @classmethod
    def _bg(cls, value: str | None) -> str | None:
        return None if value is None else _check_color(value)

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and value <= 0:
            raise ValueError(f"duration must be positive, got {value}")
        return value

    @model_validator(mode="after")
    def _auto_needs_voice(self) -> Scene:
        if self.duration == "auto" and self.voiceover is None:
            raise ValueError("duration 'auto' needs a voiceover to measure")
        if self.captions is not None and (self.voiceover is None or self.voiceover.text is None):
            raise ValueError("captions from the voiceover need a spoken voiceover "
                             "({\"text\": ...})")
        if self.auto.min > self.auto.max:
            raise ValueError("auto.min must not exceed auto.max")
        return self


# -- audio ---------------------------------------------------------------------------------


class Music(Strict):
    """A music bed under the whole video: looped, faded, ducked under voice-overs."""

    src: str
    volume: float = Field(0.5, ge=0, le=4)
    loop: bool = True
    fade_in: Seconds = 0
    fade_out: Seconds = 2
    duck: bool = True
    duck_ratio: float = Field(6, ge=1, le=20, description="compression ratio while voice plays")


class AudioOptions(Strict):
    normalize: bool = Field(True, description="EBU R128 loudness normalisation of the mix")
    loudness: float = Field(-16, ge=-40, le=-5, description="target integrated loudness, LUFS")
    voice_volume: float = Field(1.0, ge=0, le=4)
    video_volume: float = Field(1.0, ge=0, le=4)


# -- templates and the document --------------------------------------------------------------


class Variable(Strict):
    """A value the document can be filled with (``{{name}}``), given by ``--data``."""

    type: Literal["text", "longtext", "number", "color", "boolean", "choice", "image",
                  "audio", "video"] = Field("text", description="longtext: several lines; "
                                            "choice: one of 'choices'")
    default: Any = None
    required: bool = False
    description: str | None = None
    choices: list[str | float | bool] | None = Field(
        None, min_length=1, max_length=500, description="the values a 'choice' may take")

    @model_validator(mode="after")
    def _choices(self) -> Variable:
        if (self.type == "choice") != (self.choices is not None):
            raise ValueError("'choices' goes with type 'choice' (and it needs them)")
        if self.choices is not None and self.default is not None \
                and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} is not one of the choices")
        return self


class FontFile(Strict):
    family: str
    src: str
    weight: Weight = "normal"


class Document(Strict):
    """A framefarm video document."""

    version: Literal[1] = 1
    output: Output = Field(default_factory=Output)
    theme: dict[str, str | float | int | bool] = Field(default_factory=dict)
    variables: dict[str, Variable] = Field(default_factory=dict)
    blocks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="reusable scenes with {{props.x}} placeholders"
    )
    fonts: list[FontFile] = Field(default_factory=list)
    music: Music | None = None
    audio: AudioOptions = Field(default_factory=AudioOptions)
    scenes: list[Scene] = Field(min_length=1)
