"""Bad input through the command line: exit code 2, one clear message naming the field or
file, no traceback, and nothing written. A failed render: exit code 1, nothing written."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from framefarm.cli import app
from support.files import files_in
from support.media import write_solid_png, write_wav

pytestmark = pytest.mark.ffmpeg

OUTPUT = {"width": 160, "height": 90, "fps": 30, "quality": "draft"}


def doc_with(**scene: Any) -> dict[str, Any]:
    return {"output": OUTPUT, "scenes": [{"duration": 1, **scene}]}


def noise(path: Path, size: int = 4096) -> None:
    path.write_bytes(random.Random(path.name).randbytes(size))


Setup = Callable[[Path], Any]


def _malformed(folder: Path) -> str:
    return '{\n  "output": {"width": 160, "height": 90},\n  "scenes": [{"duration": 1,}]\n}\n'


def _random_png(folder: Path) -> dict[str, Any]:
    noise(folder / "photo.png")
    return doc_with(layers=[{"type": "image", "src": "photo.png"}])


def _random_mp3(folder: Path) -> dict[str, Any]:
    noise(folder / "song.mp3")
    return {**doc_with(), "music": {"src": "song.mp3"}}


def _text_as_video(folder: Path) -> dict[str, Any]:
    (folder / "clip.mp4").write_text("this is not a video\n" * 50, encoding="utf-8")
    return doc_with(layers=[{"type": "video", "src": "clip.mp4"}])


def _image_as_voice(folder: Path) -> dict[str, Any]:
    write_solid_png(folder / "voice.png", (16, 16), "red")
    return doc_with(voiceover={"src": "voice.png"})


def _wav_as_video(folder: Path) -> dict[str, Any]:
    write_wav(folder / "sound.wav", 0.5)
    return doc_with(layers=[{"type": "video", "src": "sound.wav"}])


CASES: list[tuple[str, Setup, list[str]]] = [
    ("malformed JSON", _malformed, ["malformed JSON at line 3, column 29"]),
    ("unknown layer type", lambda f: doc_with(layers=[{"type": "sparkles"}]),
     ["scenes[0].layers[0]", "'sparkles'"]),
    ("missing asset", lambda f: doc_with(layers=[{"type": "image", "src": "media/nope.png"}]),
     ["scenes[0].layers[0].src", "'media/nope.png' does not exist"]),
    ("corrupt png", _random_png, ["scenes[0].layers[0].src", "'photo.png' is not a readable "
                                  "image"]),
    ("corrupt mp3", _random_mp3, ["music.src", "song.mp3: not a media file"]),
    ("text file as video", _text_as_video,
     ["scenes[0].layers[0].src", "clip.mp4: not a media file"]),
    ("image as voice-over", _image_as_voice, ["scenes[0].voiceover.src", "voice.png"]),
    ("sound as video", _wav_as_video,
     ["scenes[0].layers[0].src", "'sound.wav' has no video stream"]),
    ("negative duration", lambda f: doc_with(duration=-3),
     ["scenes[0].duration: duration must be positive, got -3.0"]),
    ("unknown field", lambda f: doc_with(backgruond="#fff"),
     ["scenes[0].backgruond: unknown field"]),
    ("bad colour", lambda f: doc_with(background="#12"), ["scenes[0].background", "'#12'"]),
    ("huge output", lambda f: {"output": {"width": 100000, "height": 100000},
                               "scenes": [{"duration": 1}]},
     ["output: 100000x100000 is larger than the limit 4096x4096"]),
    ("ten hours", lambda f: doc_with(duration=36000),
     ["the video would last up to 36000 s, the limit is 3600 s"]),
    ("path escape", lambda f: doc_with(layers=[{"type": "image", "src": "../../etc/passwd"}]),
     ["scenes[0].layers[0].src", "'../../etc/passwd' points outside the document's folder"]),
    ("absolute path", lambda f: doc_with(voiceover={"src": "/etc/passwd"}),
     ["scenes[0].voiceover.src", "'/etc/passwd' is absolute"]),
    ("control characters", lambda f: doc_with(layers=[{"type": "text", "text": "a\x1b[31mb"}]),
     ["scenes[0].layers[0].text", "control character U+001B"]),
    ("missing template variable",
     lambda f: {"variables": {"hero": {"required": True}},
                **doc_with(layers=[{"type": "text", "text": "{{hero}}"}])},
     ["variables.hero: required"]),
    ("placeholder without value",
     lambda f: doc_with(layers=[{"type": "text", "text": "Hi {{who}}"}]),
     ["scenes[0].layers[0].text: placeholder {{who}} has no value"]),
    ("transition too long",
     lambda f: {"output": OUTPUT, "scenes": [
         {"duration": 1, "transition": {"duration": 2}}, {"duration": 1}]},
     ["scenes[0].transition.duration"]),
]


def _write(folder: Path, setup: Setup) -> Path:
    content = setup(folder)
    path = folder / "doc.json"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.mark.parametrize(("setup", "expected"), [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_document_is_refused_cleanly(
    tmp_path: Path, setup: Setup, expected: list[str]
) -> None:
    doc = _write(tmp_path, setup)
    before = files_in(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = CliRunner().invoke(app, ["render", str(doc), "-o", str(out_dir / "video.mp4"),
                                      "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    message = result.stderr
    assert message.startswith("invalid: ")
    assert message.count("invalid:") == 1
    for fragment in expected:
        assert fragment in message
    assert "Traceback" not in message
    assert "File \"" not in message
    assert files_in(out_dir) == set()
    assert files_in(tmp_path) == before | {"out"}


@pytest.mark.parametrize(("setup", "expected"), [(c[1], c[2]) for c in CASES[:6]],
                         ids=[c[0] for c in CASES[:6]])
def test_validate_reports_the_same(tmp_path: Path, setup: Setup, expected: list[str]) -> None:
    doc = _write(tmp_path, setup)
    result = CliRunner().invoke(app, ["validate", str(doc)])
    assert result.exit_code == 2
    for fragment in expected:
        assert fragment in result.stderr


def test_validate_a_good_document(tmp_path: Path) -> None:
    doc = _write(tmp_path, lambda f: {"output": OUTPUT, "scenes": [
        {"duration": 2, "transition": {"duration": 0.5}}, {"duration": 1}]})
    result = CliRunner().invoke(app, ["validate", str(doc)])
    assert result.exit_code == 0
    assert result.stdout.strip() == "valid: 2 scenes, 75 frames, 2.50 s at 160x90 30 fps"


def test_data_file_problems(tmp_path: Path) -> None:
    doc = _write(tmp_path, lambda f: {"variables": {"hero": {"required": True}},
                                      **doc_with(layers=[{"type": "text", "text": "{{hero}}"}])})
    (tmp_path / "data.json").write_text('{"villain": "x"}', encoding="utf-8")
    out = tmp_path / "o.mp4"
    result = CliRunner().invoke(app, ["render", str(doc), "--data", str(tmp_path / "data.json"),
                                      "-o", str(out), "--quiet"])
    assert result.exit_code == 2
    assert "'villain'" in result.stderr
    assert "variables.hero: required" in result.stderr
    (tmp_path / "data.json").write_text("[1]", encoding="utf-8")
    result = CliRunner().invoke(app, ["render", str(doc), "--data", str(tmp_path / "data.json"),
                                      "-o", str(out), "--quiet"])
    assert result.exit_code == 2
    assert "expected a JSON object of name -> value" in result.stderr
    assert not out.exists()


def test_missing_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["render", str(tmp_path / "nope.json"),
                                      "-o", str(tmp_path / "o.mp4")])
    assert result.exit_code == 2
    assert "nope.json: no such file" in result.stderr


@pytest.mark.parametrize(("spec", "message"), [
    ("20-10", "--frames 20-10: the video has frames 0-30"),
    ("0-31", "--frames 0-31"),
    ("abc", "--frames 'abc': expected START-END"),
])
def test_bad_frame_range(tmp_path: Path, spec: str, message: str) -> None:
    doc = _write(tmp_path, lambda f: doc_with())
    result = CliRunner().invoke(app, ["render", str(doc), "-o", str(tmp_path / "o.mp4"),
                                      "--frames", spec, "--quiet"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert files_in(tmp_path) == {"doc.json"}


def test_unknown_output_suffix(tmp_path: Path) -> None:
    doc = _write(tmp_path, lambda f: doc_with())
    result = CliRunner().invoke(app, ["render", str(doc), "-o", str(tmp_path / "o.avi")])
    assert result.exit_code == 2
    assert "o.avi: cannot tell the format from the suffix" in result.stderr


def test_missing_output_folder_fails_the_render(tmp_path: Path) -> None:
    doc = _write(tmp_path, lambda f: doc_with())
    result = CliRunner().invoke(app, ["render", str(doc), "-o", str(tmp_path / "no" / "o.mp4"),
                                      "--quiet"])
    assert result.exit_code == 1
    assert result.stderr.startswith("failed: ")
    assert "the output folder does not exist" in result.stderr


def _run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    environment.pop("FRAMEFARM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "framefarm", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    _write(tmp_path, _malformed)
    proc = _run_cli(["render", "doc.json", "-o", "out.mp4"], tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("invalid: document doc.json: malformed JSON at line 3")
    assert "Traceback" not in proc.stderr
    assert files_in(tmp_path) == {"doc.json"}


@pytest.mark.parametrize("suffix", ["mp4", "webm", "gif"])
def test_failed_ffmpeg_gives_exit_1_and_no_partial_output(tmp_path: Path, suffix: str) -> None:
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/sh\necho 'simulated encoder failure' >&2\nexit 1\n",
                    encoding="utf-8")
    fake.chmod(0o755)
    _write(tmp_path, lambda f: doc_with(layers=[{"type": "text", "text": "x"}]))
    proc = _run_cli(["render", "doc.json", "-o", f"out.{suffix}", "--quiet"], tmp_path,
                    FRAMEFARM_FFMPEG=str(fake))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("failed: ")
    assert "FFmpeg exited with code 1" in proc.stderr
    assert "simulated encoder failure" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_in(tmp_path) == {"doc.json", "fake-ffmpeg"}


def test_ffmpeg_killed_half_way_leaves_nothing(tmp_path: Path) -> None:
    """An FFmpeg that reads some frames, then dies: the render fails, no partial output."""
    real = subprocess.run([sys.executable, "-c", "from framefarm.ffmpeg import runner; "
                           "print(runner.ffmpeg_binary())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    fake = tmp_path / "flaky-ffmpeg"
    # Audio and assembling work; an encode that reads frames from stdin dies after 20 kB.
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *pipe:0*) head -c 20000 >/dev/null; echo "encoder crashed" >&2; exit 3;;\n'
        f'  *) exec "{real}" "$@";;\n'
        "esac\n", encoding="utf-8")
    fake.chmod(0o755)
    _write(tmp_path, lambda f: {"output": OUTPUT, "scenes": [{"duration": 2}]})
    proc = _run_cli(["render", "doc.json", "-o", "out.mp4", "--quiet", "--chunks", "2"],
                    tmp_path, FRAMEFARM_FFMPEG=str(fake))
    assert proc.returncode == 1, proc.stderr
    assert "encoder crashed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_in(tmp_path) == {"doc.json", "flaky-ffmpeg"}


@pytest.mark.parametrize(("cpus", "message"), [
    ("9-x", "expected CPU numbers and ranges"),
    ("", "expected CPU numbers and ranges"),
    ("4096", "CPU 4096 is not one this process may use"),
])
def test_worker_refuses_cpus_it_cannot_use(cpus: str, message: str) -> None:
    """Checked before the node registers (the server here does not exist)."""
    result = CliRunner().invoke(app, ["worker", "--server", "http://127.0.0.1:9",
                                      "--token", "t", "--cpus", cpus])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
