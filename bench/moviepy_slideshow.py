"""The benchmark slideshow made the usual MoviePy 2.x way (run with MoviePy's own venv).

Usage: python bench/moviepy_slideshow.py SPEC.json OUTPUT.mp4
SPEC.json is written by bench/workload.py. Ken Burns is an ImageClip resized as a function
of time and moved by a position function inside a frame-sized CompositeVideoClip; scenes
cross-fade (CrossFadeIn on the incoming one); titles are TextClips that fade in; the voice-
overs and a looped music bed (lowered while a voice plays: MoviePy has no side-chain
ducking) make the sound. The x264 settings are framefarm's, given in the spec.
Prints one JSON line: seconds (imports excluded) and peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from moviepy import (
    AudioFileClip,
    CompositeAudioClip,
    CompositeVideoClip,
    ImageClip,
    TextClip,
    afx,
    vfx,
)


def focus(pan: str, q: float) -> tuple[float, float]:
    """Which part of the overhang the view sits on (as in framefarm's Ken Burns)."""
    fx = fy = 0.5
    if "left" in pan:
        fx = q
    elif "right" in pan:
        fx = 1.0 - q
    if "up" in pan:
        fy = q
    elif "down" in pan:
        fy = 1.0 - q
    return fx, fy


def scene_clip(scene: dict, spec: dict) -> CompositeVideoClip:
    w, h, fps = spec["width"], spec["height"], spec["fps"]
    d = scene["frames"] / fps
    photo = ImageClip(scene["photo"])
    iw, ih = photo.size
    cover = max(w / iw, h / ih)
    z0, z1 = scene["zoom"]

    def scale(t: float) -> float:
        return cover * (z0 + (z1 - z0) * min(1.0, t / d))

    def position(t: float) -> tuple[float, float]:
        k = scale(t)
        fx, fy = focus(scene["pan"], min(1.0, t / d))
        return -(iw * k - w) * fx, -(ih * k - h) * fy

    moving = photo.with_duration(d).resized(scale).with_position(position)
    title = (TextClip(font=spec["font"], text=scene["title"], font_size=spec["text_size"],
                      color="white", stroke_color="black", stroke_width=2, margin=(8, 8))
             .with_duration(d))
    title = title.with_position(("center", h * 0.95 - title.h)).with_effects(
        [vfx.CrossFadeIn(0.5)])
    return CompositeVideoClip([moving, title], size=(w, h)).with_duration(d)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    output = sys.argv[2]
    began = time.perf_counter()
    fps = spec["fps"]
    fade = spec["transition_frames"] / fps
    total = spec["total_frames"] / fps
    clips = []
    voices = []
    for i, scene in enumerate(spec["scenes"]):
        start = scene["start"] / fps
        clip = scene_clip(scene, spec).with_start(start)
        if i > 0:
            clip = clip.with_effects([vfx.CrossFadeIn(fade)])
        clips.append(clip)
        if scene["voiceover"]:
            voice = AudioFileClip(scene["voiceover"])
            voices.append(voice.with_start(start + scene["voice_delay"]))
    video = CompositeVideoClip(clips, size=(spec["width"], spec["height"])).with_duration(total)

    music_fx = [afx.AudioLoop(duration=total), afx.MultiplyVolume(spec["music_volume"])]
    for voice in voices:  # crude ducking: a third of the volume while someone speaks
        music_fx.append(afx.MultiplyVolume(1 / 3, start_time=voice.start,
                                           end_time=min(total, voice.end)))
    music_fx.append(afx.AudioFadeOut(2))
    music = AudioFileClip(spec["music"]).with_effects(music_fx)
    video = video.with_audio(CompositeAudioClip([music, *voices]).with_duration(total))

    x264 = spec["x264"]
    video.write_videofile(
        output, fps=fps, codec="libx264", preset=x264["preset"], audio_codec="aac",
        audio_bitrate=f"{x264['audio_kbps']}k", audio_fps=48000,
        ffmpeg_params=list(x264["params"]), logger=None,
    )
    seconds = time.perf_counter() - began
    print(json.dumps({
        "seconds": seconds,
        "frames": spec["total_frames"],
        "maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "maxrss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
