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
        if scene.voiceover:
            vo = scene.voiceover
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


def mix(timeline: Timeline, output: Path, frames: tuple[int, int] | None = None) -> FfmpegCommand:
    """The command that writes the mixed sound of ``frames`` (default: all) to ``output``."""
    doc = timeline.project.document
    start, end = frames or (0, timeline.total_frames)
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
            # The voice is the side-chain key: the music dips while someone speaks.
            graph.append("[voice]asplit=2[voice][key]")
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

    total_samples = round(total * RATE)
    tail = [f"apad=whole_len={total_samples}", f"atrim=end_sample={total_samples}"]
    if doc.audio.normalize and beds:
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
