"""The compiler's exact FFmpeg arguments (nothing is run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from framefarm import engine
from framefarm.compiler import assemble, audio, encode
from framefarm.document.timeline import Timeline
from support.media import write_wav

PIPED = ("-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1")
COMMON = ("-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1")
RAW_320 = ("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "320x180", "-framerate", "30",
           "-i", "pipe:0")
YUV_320 = ("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "320x180", "-framerate", "30",
           "-i", "pipe:0")
TAGS = ("-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "iec61966-2-1",
        "-color_range", "tv")
TAGS_601 = ("-colorspace", "smpte170m", "-color_primaries", "bt709",
            "-color_trc", "iec61966-2-1", "-color_range", "tv")
# The tags are set on the frames too: FFmpeg ignores -color_primaries/-color_trc here.
SET_601 = ("setparams=field_mode=prog:range=tv:color_primaries=bt709:color_trc=iec61966-2-1"
           ":colorspace=smpte170m")
SET_709 = ("setparams=field_mode=prog:range=tv:color_primaries=bt709:color_trc=iec61966-2-1"
           ":colorspace=bt709")
FMT = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"


# -- video parts -------------------------------------------------------------------------------


def test_video_part_mp4_draft() -> None:
    cmd = encode.video_part(width=320, height=180, fps=30, fmt="mp4", quality="draft",
                            frames=45, output=Path("/w/part0000.mp4"))
    assert cmd.args == (
        *PIPED, *YUV_320, "-an", "-vf", SET_601,
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p",
        "-profile:v", "high", "-g", "60",
        *TAGS_601, "-video_track_timescale", "30000",
        "-frames:v", "45", "-f", "mp4", "-y", "/w/part0000.mp4",
    )
    assert cmd.frames == 45
    assert cmd.stdin_frames == (320, 180, 45)
    assert cmd.stdin_pix_fmt == "yuv420p"
    assert cmd.argv("/bin/ffmpeg") == ["/bin/ffmpeg", *cmd.args]


def test_video_part_mp4_lossless_with_threads() -> None:
    cmd = encode.video_part(width=320, height=180, fps=30, fmt="mp4", quality="lossless",
                            frames=7, output=Path("/w/p.mp4"), threads=2)
    assert cmd.args == (
        *PIPED, *RAW_320, "-an",
        "-vf", f"scale=out_color_matrix=bt709:out_range=tv,{SET_709}",
        "-c:v", "libx264", "-preset", "veryfast", "-qp", "0", "-pix_fmt", "yuv444p",
        "-g", "60", "-threads", "2",
        *TAGS, "-video_track_timescale", "30000",
        "-frames:v", "7", "-f", "mp4", "-y", "/w/p.mp4",
    )


def test_video_part_webm_high_at_25_fps() -> None:
    cmd = encode.video_part(width=640, height=360, fps=25, fmt="webm", quality="high",
                            frames=100, output=Path("/w/part0001.webm"))
    assert cmd.args == (
        *PIPED, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "640x360", "-framerate", "25",
        "-i", "pipe:0", "-an", "-vf", SET_601,
        "-c:v", "libvpx-vp9", "-crf", "31", "-b:v", "0", "-deadline", "good",
        "-cpu-used", "4", "-row-mt", "1", "-g", "50", "-pix_fmt", "yuv420p",
        *TAGS_601, "-frames:v", "100", "-f", "webm", "-y", "/w/part0001.webm",
    )


def test_parts_encoded_side_by_side_cap_x264s_lookahead() -> None:
    # Two x264 encoders at once (a split local render) keep 20 frames of look-ahead each.
    capped = encode.video_codec_args("mp4", "high", 30, 1, encode.SIDE_BY_SIDE_LOOKAHEAD)
    assert capped[-4:] == ("-threads", "1", "-rc-lookahead", "20")
    assert "-rc-lookahead" not in encode.video_codec_args("mp4", "high", 30, 1)
    # Lossless keeps its preset's settings; VP9 has no such option.
    assert "-rc-lookahead" not in encode.video_codec_args("mp4", "lossless", 30, 1, 20)
    assert "-rc-lookahead" not in encode.video_codec_args("webm", "high", 30, 1, 20)


def test_video_part_webm_lossless() -> None:
    args = encode.video_codec_args("webm", "lossless", 30, None)
    assert args == ("-c:v", "libvpx-vp9", "-lossless", "1", "-deadline", "good",
                    "-cpu-used", "4", "-row-mt", "1", "-g", "60", "-pix_fmt", "yuv444p")


def test_gif_command() -> None:
    cmd = encode.gif(width=320, height=180, fps=30, frames=12, output=Path("/w/v.gif"))
    assert cmd.args == (
        *PIPED, *RAW_320, "-vf",
        "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=4",
        "-frames:v", "12", "-loop", "0", "-f", "gif", "-y", "/w/v.gif",
    )
    assert cmd.stdin_frames == (320, 180, 12)


def test_quality_table_is_ordered() -> None:
    names = ["draft", "low", "medium", "high", "max"]
    crfs = [encode.QUALITY[n].x264_crf for n in names]
    kbps = [encode.QUALITY[n].audio_kbps for n in names]
    assert crfs == sorted(crfs, reverse=True)
    assert kbps == [96, 128, 160, 192, 256]
    assert encode.QUALITY["lossless"].lossless


# -- assembling --------------------------------------------------------------------------------


def test_concat_list_states_durations_and_quotes_paths(tmp_path: Path) -> None:
    folder = tmp_path / "it's here"
    folder.mkdir()
    base = str(tmp_path.resolve())
    parts = [(folder / "part0000.mp4", 45), (tmp_path / "part0001.mp4", 31)]
    text = assemble.concat_list(parts, 30)
    assert text == (
        "ffconcat version 1.0\n"
        f"file '{base}/it'\\''s here/part0000.mp4'\n"
        "duration 1.500000\n"
        f"file '{base}/part0001.mp4'\n"
        "duration 1.033333\n"
    )


def test_concat_list_relative_paths_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = assemble.concat_list([(Path("p.webm"), 24)], 24)
    assert text == f"ffconcat version 1.0\nfile '{tmp_path.resolve()}/p.webm'\nduration 1.000000\n"


def test_assemble_mp4_with_audio() -> None:
    cmd = assemble.assemble(list_file=Path("/w/parts.ffconcat"), audio=Path("/w/audio.m4a"),
                            output=Path("/out/final.mp4"), fmt="mp4", frames=90)
    assert cmd.args == (
        *COMMON, "-f", "concat", "-safe", "0", "-i", "/w/parts.ffconcat",
        "-i", "/w/audio.m4a", "-map", "0:v:0", "-map", "1:a:0",
        "-c", "copy", "-movflags", "+faststart", "-f", "mp4", "-y", "/out/final.mp4",
    )
    assert cmd.frames == 90
    assert cmd.stdin_frames is None


def test_assemble_webm_without_audio() -> None:
    cmd = assemble.assemble(list_file=Path("/w/l"), audio=None, output=Path("/o/x.webm"),
                            fmt="webm", frames=3)
    assert cmd.args == (*COMMON, "-f", "concat", "-safe", "0", "-i", "/w/l", "-map", "0:v:0",
                        "-c", "copy", "-f", "webm", "-y", "/o/x.webm")


# -- the audio mix -----------------------------------------------------------------------------


def _mix_timeline(folder: Path, **output: Any) -> Timeline:
    write_wav(folder / "vo1.wav", 1.5)
    write_wav(folder / "vo2.wav", 2.0, freq=660)
    write_wav(folder / "music.wav", 2.0, channels=2, freq=220)
    doc = {
        "output": {"width": 160, "height": 90, "fps": 30, "quality": "medium", **output},
        "audio": {"loudness": -14},
        "music": {"src": "music.wav", "volume": 0.3, "fade_in": 1, "fade_out": 2,
                  "duck_ratio": 8},
        "scenes": [
            {"duration": 3, "voiceover": {"src": "vo1.wav", "delay": 0.25},
             "transition": {"type": "dissolve", "duration": 0.5}},
            {"duration": 4, "voiceover": {"src": "vo2.wav", "volume": 0.8}},
        ],
    }
    return engine.load_timeline(doc, base_dir=folder)


def test_mix_two_voiceovers_and_ducked_music(tmp_path: Path) -> None:
    tl = _mix_timeline(tmp_path)
    assert tl.total_frames == 195  # 90 + 120 - 15: 6.5 s
    base = tmp_path.resolve()
    cmd = audio.mix(tl, Path("/w/audio.m4a"))
    graph = ";".join([
        f"[0:a]{FMT},atrim=duration=2.750000,volume=1.0000,adelay=250:all=1[t0]",
        f"[1:a]{FMT},atrim=duration=4.000000,volume=0.8000,adelay=2500:all=1[t1]",
        "[t0][t1]amix=inputs=2:normalize=0:duration=longest[voice]",
        f"[2:a]{FMT},atrim=duration=6.500000,volume=0.3000,afade=t=in:d=1.000,"
        "afade=t=out:st=4.500000:d=2.000[music]",
        "[voice]apad=whole_len=312000,asplit=2[voice][key]",
        "[music][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[music]",
        "[voice][music]amix=inputs=2:normalize=0:duration=longest[mix]",
        "[mix]apad=whole_len=312000,atrim=end_sample=312000,loudnorm=I=-14:TP=-1.5:LRA=11,"
        "aresample=48000,atrim=start_sample=0:end_sample=312000,asetpts=PTS-STARTPTS[out]",
    ])
    assert cmd.args == (
        *COMMON,
        "-i", str(base / "vo1.wav"),
        "-i", str(base / "vo2.wav"),
        "-stream_loop", "-1", "-i", str(base / "music.wav"),
        "-filter_complex", graph,
        "-map", "[out]", "-vn", "-c:a", "aac", "-b:a", "160k", "-ar", "48000",
        "-f", "mp4", "-y", "/w/audio.m4a",
    )
    assert cmd.stdin_frames is None


def test_mix_of_a_frame_range_cuts_the_whole_mix(tmp_path: Path) -> None:
    tl = _mix_timeline(tmp_path)
    cmd = audio.mix(tl, Path("/w/a.m4a"), frames=(30, 91))
    graph = cmd.args[cmd.args.index("-filter_complex") + 1]
    # The mix is made for the whole video, then the range is cut from it (so the loudness
    # normalisation and the fades are those of the full render).
    assert graph.endswith(
        "[mix]apad=whole_len=312000,atrim=end_sample=312000,loudnorm=I=-14:TP=-1.5:LRA=11,"
        "aresample=48000,atrim=start_sample=48000:end_sample=145600,asetpts=PTS-STARTPTS[out]")


def test_mix_webm_uses_opus_and_quality_bitrate(tmp_path: Path) -> None:
    tl = _mix_timeline(tmp_path, format="webm", quality="max")
    cmd = audio.mix(tl, Path("/w/a.webm"))
    assert cmd.args[-13:] == ("-map", "[out]", "-vn", "-c:a", "libopus", "-b:a", "256k",
                              "-ar", "48000", "-f", "webm", "-y", "/w/a.webm")


def test_mix_of_silence(tmp_path: Path) -> None:
    tl = engine.load_timeline({"output": {"width": 160, "height": 90, "fps": 25,
                                          "quality": "draft"},
                               "scenes": [{"duration": 2}]}, base_dir=tmp_path)
    cmd = audio.mix(tl, Path("/w/a.m4a"))
    assert cmd.args == (
        *COMMON, "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
        "-filter_complex",
        f"[0:a]{FMT}[mix];[mix]apad=whole_len=96000,atrim=end_sample=96000,"
        "atrim=start_sample=0:end_sample=96000,asetpts=PTS-STARTPTS[out]",
        "-map", "[out]", "-vn", "-c:a", "aac", "-b:a", "96k", "-ar", "48000",
        "-f", "mp4", "-y", "/w/a.m4a",
    )


def test_mix_music_alone_without_ducking_or_normalising(tmp_path: Path) -> None:
    write_wav(tmp_path / "m.wav", 1.0)
    doc = {"output": {"width": 160, "height": 90, "quality": "low"},
           "audio": {"normalize": False},
           "music": {"src": "m.wav", "loop": False, "fade_out": 0, "volume": 1},
           "scenes": [{"duration": 1.5}]}
    tl = engine.load_timeline(doc, base_dir=tmp_path)
    cmd = audio.mix(tl, Path("/w/a.m4a"))
    assert cmd.args[7:11] == ("-i", str((tmp_path / "m.wav").resolve()), "-filter_complex",
                              f"[0:a]{FMT},atrim=duration=1.500000,volume=1.0000[music];"
                              "[music]anull[mix];"
                              "[mix]apad=whole_len=72000,atrim=end_sample=72000,"
                              "atrim=start_sample=0:end_sample=72000,asetpts=PTS-STARTPTS[out]")
    assert "-stream_loop" not in cmd.args
    assert cmd.args[cmd.args.index("-b:a") + 1] == "128k"


def test_input_files_never_appear_inside_the_filter_graph(tmp_path: Path) -> None:
    tl = _mix_timeline(tmp_path)
    cmd = audio.mix(tl, Path("/w/a.m4a"))
    graph = cmd.args[cmd.args.index("-filter_complex") + 1]
    assert str(tmp_path) not in graph
    assert ".wav" not in graph
