"""The audio mix as one FFmpeg command: voice-overs, video-clip sound, a ducked music bed,
loudness normalisation; rendered once per video, for its whole length (or a frame range).

Input files are plain ``-i`` arguments; the filter graph only holds numbers we computed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from framefarm import formats
from framefarm.compiler.command import COMMON, FfmpegCommand
from framefarm.compiler.encode import QUALITY
from framefarm.document import models
from framefarm.document.timeline import Timeline

RATE = 48000
_FORMAT = f"aformat=sample_fmts=fltp:sample_rates={RATE}:channel_layouts=stereo"


@dataclasses.dataclass(frozen=True)
class Track:
    path: Path
    start: float  # seconds on the output timeline
    volume: float
    kind: str  # "voice", "video" or "music"
    trim_start: float = 0.0
    length: float | None = None  # seconds it plays on the timeline (None: to its end)
    loop: float | None = None  # seconds of source repeated from trim_start, if it loops


def tracks(timeline: Timeline) -> list[Track]:
    """Every sound of the video, placed on the output timeline."""
    project = timeline.project
    doc = project.document
    found: list[Track] = []
    for span in timeline.scenes:
        scene = span.scene
        begin = span.start / timeline.fps
        vo = scene.voiceover
        if vo is not None and vo.src is not None:  # spoken text is resolved to a src first
            found.append(Track(project.asset(vo.src), begin + vo.delay,
                               vo.volume * doc.audio.voice_volume, "voice",
                               length=span.frames / timeline.fps - vo.delay))
        for layer in scene.layers:
            if not isinstance(layer, models.VideoLayer) or layer.muted or layer.volume == 0:
                continue
            info = project.media.get(project.asset(layer.src))
            if info is None or info.audio is None:
                continue
            end = layer.end if layer.end is not None else span.frames / timeline.fps
            shown = min(end, span.frames / timeline.fps) - layer.start
            clip = (layer.trim_end or info.duration) - layer.trim_start
            found.append(Track(project.asset(layer.src), begin + layer.start,
                               layer.volume * doc.audio.video_volume, "video",
                               trim_start=layer.trim_start,
                               length=shown if layer.loop else min(shown, clip),
                               loop=clip if layer.loop else None))
    return found


def _input_args(track: Track) -> tuple[str, ...]:
    # A looping track is trimmed and repeated in the graph (aloop), so it repeats exactly
    # trim_start..trim_end; a plain one seeks at the input, which is faster.
    seek = ("-ss", f"{track.trim_start:.6f}") if track.trim_start and not track.loop else ()
    return (*seek, "-i", str(track.path))


@dataclasses.dataclass(frozen=True)
class Loudness:
    """A measured mix: integrated loudness (LUFS) and true peak (dBTP)."""

    integrated: float
    true_peak: float


# The mix's true peak after normalisation: under the -1 dBTP promised for the output, with
# room for the lossy encoder's overshoot (AAC adds up to about a decibel on sharp sounds).
PEAK_CEILING_DB = -2.0
_QUIET = -60.0  # LUFS: a mix this quiet (or silent) is left as it is


def _graph(timeline: Timeline) -> tuple[list[str], list[str], bool, int]:
    """The inputs and the filter graph up to ``[mix]`` (the whole video's sound), whether
    there is any sound at all, and its length in samples."""
    doc = timeline.project.document
    total = timeline.total_frames / timeline.fps
    args: list[str] = list(COMMON)
    graph: list[str] = []
    voices: list[str] = []
    others: list[str] = []

    sources = tracks(timeline)
    for i, track in enumerate(sources):
        args += _input_args(track)
        label = f"t{i}"
        chain = [_FORMAT]
        if track.loop:
            stop = track.trim_start + track.loop
            chain += [f"atrim=start={track.trim_start:.6f}:end={stop:.6f}",
                      "asetpts=PTS-STARTPTS", f"aloop=loop=-1:size={round(track.loop * RATE)}"]
        if track.length is not None:
            chain.append(f"atrim=duration={track.length:.6f}")
        chain.append(f"volume={track.volume:.4f}")
        delay = round(track.start * 1000)
        if delay:
            chain.append(f"adelay={delay}:all=1")
        graph.append(f"[{i}:a]{','.join(chain)}[{label}]")
        (voices if track.kind == "voice" else others).append(f"[{label}]")

    n = len(sources)
    total_samples = round(total * RATE)
    if voices:
        graph.append(f"{''.join(voices)}amix=inputs={len(voices)}:normalize=0:duration=longest"
                     "[voice]")
    if doc.music:
        music = doc.music
        args += [*(("-stream_loop", "-1") if music.loop else ()), "-i",
                 str(timeline.project.asset(music.src))]
        chain = [_FORMAT, f"atrim=duration={total:.6f}", f"volume={music.volume:.4f}"]
        if music.fade_in:
            chain.append(f"afade=t=in:d={music.fade_in:.3f}")
        if music.fade_out:
            fade = min(music.fade_out, total)
            chain.append(f"afade=t=out:st={total - fade:.6f}:d={fade:.3f}")
        graph.append(f"[{n}:a]{','.join(chain)}[music]")
        if voices and music.duck:
            # The voice is the side-chain key: the music dips while someone speaks. The key
            # lasts as long as the music (silence after the last voice-over): a key that ends
            # first leaves the compressor to finish on whatever music happened to be queued
            # at that moment, and two runs of the same mix differed from there on.
            graph.append(f"[voice]apad=whole_len={total_samples},asplit=2[voice][key]")
            graph.append(f"[music][key]sidechaincompress=threshold=0.02:ratio={music.duck_ratio:g}"
                         ":attack=20:release=400[music]")
        others.append("[music]")
        n += 1
    beds = (["[voice]"] if voices else []) + others
    if not beds:
        args += ["-f", "lavfi", "-i", f"anullsrc=r={RATE}:cl=stereo"]
        graph.append(f"[{n}:a]{_FORMAT}[mix]")
    elif len(beds) == 1:
        graph.append(f"{beds[0]}anull[mix]")
    else:
        graph.append(f"{''.join(beds)}amix=inputs={len(beds)}:normalize=0:duration=longest[mix]")

    return args, graph, bool(beds), total_samples


def _level(gain_db: float) -> list[str]:
    """A fixed gain, then a true-peak limiter (oversampled, so it sees the peaks between
    samples) at PEAK_CEILING_DB: loudness where it was asked for, whatever the mix's crest."""
    ceiling = 10 ** (PEAK_CEILING_DB / 20)
    return [f"volume={gain_db:.3f}dB", f"aresample={RATE * 4}",
            f"alimiter=limit={ceiling:.4f}:attack=0.5:release=50:level=false",
            f"aresample={RATE}"]


def measure(timeline: Timeline, gain_db: float | None = None) -> FfmpegCommand:
    """A command that measures the whole mix (after ``gain_db`` and the limiter, if given)
    with EBU R128 and prints the summary :func:`parse_loudness` reads; it writes nothing."""
    args, graph, _, total_samples = _graph(timeline)
    chain = [f"apad=whole_len={total_samples}", f"atrim=end_sample={total_samples}"]
    if gain_db is not None:
        chain += _level(gain_db)
    chain.append("ebur128=peak=true:framelog=quiet")
    graph.append(f"[mix]{','.join(chain)}[out]")
    args += ["-loglevel", "info", "-filter_complex", ";".join(graph), "-map", "[out]",
             "-f", "null", "-"]
    return FfmpegCommand(tuple(args), description="measure the audio mix")


def parse_loudness(stderr: str) -> Loudness:
    """The integrated loudness and true peak of an ebur128 summary."""
    integrated = peak = None
    for line in stderr.splitlines():
        words = line.split()
        if words[:1] == ["I:"] and len(words) >= 2:
            integrated = float(words[1])
        elif words[:1] == ["Peak:"] and len(words) >= 2:
            peak = float(words[1])
    if integrated is None or peak is None:
        raise ValueError("no loudness summary in FFmpeg's output")
    return Loudness(integrated, peak)


def gain_for(measured: Loudness, target: float) -> float:
    """The gain (dB) that brings ``measured`` to ``target`` LUFS; none for (near) silence."""
    if measured.integrated < _QUIET:
        return 0.0
    return target - measured.integrated


def mix(timeline: Timeline, output: Path, frames: tuple[int, int] | None = None, *,
        gain_db: float | None = None) -> FfmpegCommand:
    """The command that writes the mixed sound of ``frames`` (default: all) to ``output``.
    With normalisation on, ``gain_db`` is the gain the measurement passes found (the engine
    runs :func:`measure` first); without one the mix is normalised in one pass."""
    doc = timeline.project.document
    start, end = frames or (0, timeline.total_frames)
    args, graph, has_sound, total_samples = _graph(timeline)
    tail = [f"apad=whole_len={total_samples}", f"atrim=end_sample={total_samples}"]
    if doc.audio.normalize and has_sound:
        if gain_db is not None:
            tail += _level(gain_db)
        else:
            tail += [f"loudnorm=I={doc.audio.loudness:g}:TP=-1.5:LRA=11", f"aresample={RATE}"]
    first, last = round(start / timeline.fps * RATE), round(end / timeline.fps * RATE)
    tail += [f"atrim=start_sample={first}:end_sample={last}", "asetpts=PTS-STARTPTS"]
    graph.append(f"[mix]{','.join(tail)}[out]")

    spec = formats.get(timeline.output.format)
    if spec.audio_codec is None:
        raise ValueError(f"{spec.name} has no sound to mix")
    kbps = QUALITY[timeline.output.quality].audio_kbps
    args += ["-filter_complex", ";".join(graph), "-map", "[out]", "-vn", "-c:a", spec.audio_codec,
             "-b:a", f"{kbps}k", "-ar", str(RATE), "-f", spec.container, "-y", str(output)]
    return FfmpegCommand(tuple(args), description="mix audio")
