#!/usr/bin/env python3
"""framefarm's speed benchmark: one command, every contender timed in the same run.

    python bench/run.py                 # 60 s of 1080p30, 3 runs each (~1 h on 2 cores)
    python bench/run.py --quick         # 10 s of 720p30, 1 run each: a smoke test
    python bench/run.py --repeat 3 --repeat-slow 1   # MoviePy and the naive graph once

See bench/README.md for what each contender is and how to read the table.
Results go to bench/out/results.json (and a copy named after the workload).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

try:
    import framefarm
except ImportError:  # not installed in this interpreter: try the source tree
    sys.path.insert(0, str(REPO / "src"))
    try:
        import framefarm
    except ImportError as exc:
        raise SystemExit(f"cannot import framefarm ({exc}); run with the interpreter of a "
                         "venv where it is installed, e.g. /tmp/ve/bin/python bench/run.py"
                         ) from None

import workload  # noqa: E402

from framefarm import media  # noqa: E402
from framefarm.compiler import encode  # noqa: E402
from framefarm.document import models  # noqa: E402
from framefarm.ffmpeg import runner  # noqa: E402

MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
FONT = Path(framefarm.__file__).resolve().parent / "fonts" / "Inter-Bold.otf"
MOVIEPY_REQ = "moviepy>=2,<3"

# Order of a round; the slow ones run only in the first --repeat-slow rounds.
CONTENDERS = ("framefarm", "framefarm-c1", "limit", "floor", "exact", "graph", "naive",
              "moviepy")
SLOW = {"naive", "moviepy"}
LABELS = {
    "framefarm": "framefarm (default)",
    "framefarm-c1": "framefarm chunks=1",
    "limit": "limit: testsrc2 encode",
    "floor": "floor: encode own frames",
    "exact": "floor: exact frames",
    "graph": "FFmpeg graph, decode once",
    "naive": "naive FFmpeg graph",
    "moviepy": "MoviePy 2.x",
}


# -- process measurement ---------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants (e.g. Python + its
    FFmpeg encoders running at once) and keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.largest = 0  # the largest single process seen
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids, todo = [], [self.pid]
            while todo:
                p = todo.pop()
                pids.append(p)
                todo += _children(p)
            sizes = [_rss(p) for p in pids]
            self.peak = max(self.peak, sum(sizes))
            self.largest = max(self.largest, *sizes)
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used since boot (every core)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def wait_quiet(limit: float, threshold: float = 0.3) -> float:
    """Wait (at most ``limit`` s) until other processes use less than ``threshold`` of a
    core over a 2 s window; returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        before = machine_busy()
        time.sleep(2.0)
        if (machine_busy() - before) / 2.0 < threshold:
            break
    return time.monotonic() - began


def run_measured(argv: Sequence[str], log: Path, env: dict[str, str] | None = None
                 ) -> dict[str, Any]:
    """Run a command to completion: wall seconds, CPU seconds (user + system, the process
    and every child it waited for), peak summed RSS of its process tree and of its largest
    single process (both sampled from /proc: ru_maxrss is not used for them because Linux
    carries the spawning process's RSS over into a vforked child's), and how many cores other
    processes on the machine kept busy meanwhile (``others_cores``: the benchmark shares
    the machine, so read wall times with it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".out")
    with open(out_path, "wb") as out, open(log, "wb") as err:
        busy_before = machine_busy()
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = sampler.stop()
        busy = machine_busy() - busy_before
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{argv[0]} exited with {proc.returncode}; stderr tail:\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    result: dict[str, Any] = {"wall": wall, "seconds": wall, "cpu": round(cpu, 2),
                              "others_cores": round(max(0.0, busy - cpu) / wall, 2),
                              "loadavg_before": load_before,
                              "peak_tree_mib": round(peak / MIB, 1),
                              "max_process_mib": round(sampler.largest / MIB, 1)}
    lines = out_path.read_text(errors="replace").strip().splitlines()
    if lines and lines[-1].startswith("{"):  # a Python worker's own report
        report = json.loads(lines[-1])
        result["seconds"] = report["seconds"]  # its work, interpreter start-up excluded
        # ru_maxrss as the worker saw it (upper bounds: see above).
        result["python_maxrss_mib"] = round(report["maxrss_self_kb"] / 1024, 1)
        result["children_maxrss_mib"] = round(report["maxrss_children_kb"] / 1024, 1)
    return result


# -- commands ----------------------------------------------------------------------------------

def engine_encode_args(w: int, h: int, fps: int, quality: str, frames: int,
                       output: Path) -> list[str]:
    """Exactly the encoder command framefarm runs for a one-chunk render."""
    cmd = encode.video_part(width=w, height=h, fps=fps, fmt="mp4", quality=quality,
                            frames=frames, output=output, threads=None)
    return list(cmd.args)


def composite_to_file(document: Path, raw: Path, pix_fmt: str) -> None:
    """framefarm's own composited frames, converted as the engine converts them for its
    pipe, written to ``raw``: the exact floor encodes these. (The floor proper encodes the
    decoded *output*, whose grain the first encode has partly smoothed away: x264 finds it
    easier than the frames framefarm really hands it.)"""
    import cv2

    from framefarm.compositor.frame import Compositor
    from framefarm.engine import load_timeline

    tl = load_timeline(document)
    with raw.open("wb") as f, Compositor(tl) as compositor:
        for n in range(tl.total_frames):
            pixels = compositor.render(n)
            f.write(cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_I420).tobytes()
                    if pix_fmt == "yuv420p" else pixels.tobytes())


def _raw_input_span(args: list[str]) -> tuple[int, int]:
    end = args.index("pipe:0")
    begin = max(i for i in range(end) if args[i] == "-f" and args[i + 1] == "rawvideo")
    return begin, end + 1


def raw_pix_fmt(args: list[str]) -> str:
    """The pixel format framefarm pipes to its encoder (rgb24, or yuv420p converted
    in-process), read from the command's rawvideo input."""
    begin, end = _raw_input_span(args)
    section = args[begin:end]
    return section[section.index("-pix_fmt") + 1] if "-pix_fmt" in section else "rgb24"


def replace_raw_input(args: list[str], new_input: Sequence[str]) -> list[str]:
    """Swap the ``-f rawvideo ... -i pipe:0`` input of an encoder command for another."""
    begin, end = _raw_input_span(args)
    return [*args[:begin], *new_input, *args[end:]]


TAG_OPTIONS = ("-colorspace", "-color_primaries", "-color_trc", "-color_range")


def colour_args(args: list[str]) -> tuple[list[str], list[str]]:
    """framefarm's encoder command's own colour conversion (``-vf``, if any) and tags."""
    vf = ["-vf", args[args.index("-vf") + 1]] if "-vf" in args else []
    tags: list[str] = []
    for option in TAG_OPTIONS:
        if option in args:
            tags += [option, args[args.index(option) + 1]]
    return vf, tags


def x264_for_others(quality: str, fps: int, engine_args: list[str]) -> dict[str, Any]:
    """framefarm's x264 settings split as MoviePy takes them (preset apart, the rest as
    extra parameters), with the same colour tags (and conversion, if FFmpeg does it)."""
    codec = list(encode.video_codec_args("mp4", quality, fps, None))
    preset = codec[codec.index("-preset") + 1]
    params: list[str] = []
    i = 0
    while i < len(codec):
        if codec[i] in ("-c:v", "-preset"):
            i += 2
            continue
        params.append(codec[i])
        i += 1
    vf, tags = colour_args(engine_args)
    params += [*vf, *tags]
    colorspace = dict(zip(tags[::2], tags[1::2], strict=True)).get("-colorspace", "")
    matrix = "bt709" if colorspace == "bt709" else "bt601"
    return {"preset": preset, "params": params, "codec_args": codec, "tags": tags,
            "matrix": matrix, "audio_kbps": encode.QUALITY[quality].audio_kbps}


# -- MoviePy's own venv ----------------------------------------------------------------------

def moviepy_python(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with MoviePy 2.x installed (creating it if needed), or a reason."""
    python = venv / "bin" / "python"
    check = [str(python), "-c",
             "import importlib.metadata as m, moviepy; print(m.version('moviepy'))"]
    if python.exists():
        ok = subprocess.run(check, capture_output=True, text=True)
        if ok.returncode == 0:
            return python, ok.stdout.strip()
    print(f"installing {MOVIEPY_REQ} into {venv} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True, text=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", MOVIEPY_REQ], check=True,
                       capture_output=True, text=True)
        ok = subprocess.run(check, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        why = (exc.stderr or exc.stdout or str(exc)).strip().splitlines()[-3:]
        return None, "; ".join(why)
    return python, ok.stdout.strip()


# -- the run -----------------------------------------------------------------------------------

def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    secs = [r["seconds"] for r in runs]
    out: dict[str, Any] = {"runs": runs, "median": statistics.median(secs), "min": min(secs),
                           "max": max(secs), "n": len(secs),
                           "cpu_median": statistics.median(r["cpu"] for r in runs),
                           "others_cores": round(statistics.mean(r["others_cores"]
                                                                 for r in runs), 2)}
    for key in ("peak_tree_mib", "max_process_mib", "python_maxrss_mib",
                "children_maxrss_mib"):
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = max(values)
    return out


def ratio(results: dict[str, Any], a: str, b: str, key: str = "median") -> float | None:
    if a in results and b in results:
        return float(results[a][key] / results[b][key])
    return None


def print_table(meta: dict[str, Any], results: dict[str, Any],
                ratios: dict[str, float | None], skipped: dict[str, str]) -> str:
    lines = [
        f"framefarm benchmark: {meta['seconds']:g} s of {meta['width']}x{meta['height']} "
        f"@ {meta['fps']} fps ({meta['frames']} frames), {meta.get('photos', 'grainy')} "
        f"photos, quality {meta['quality']} "
        f"({' '.join(meta['x264'])}), {meta['cores']} cores, FFmpeg {meta['ffmpeg']}",
        "",
        f"{'contender':<26}{'median s':>10}{'min':>9}{'max':>9}{'runs':>6}{'fps':>8}"
        f"{'CPU s':>9}{'others':>8}{'peak RSS':>11}{'1 proc':>9}",
    ]
    for name in CONTENDERS:
        if name in results:
            r = results[name]
            fps = meta["frames"] / r["median"]
            tree = f"{r['peak_tree_mib']:.0f} MiB" if "peak_tree_mib" in r else "-"
            one = f"{r['max_process_mib']:.0f}" if "max_process_mib" in r else "-"
            lines.append(f"{LABELS[name]:<26}{r['median']:>10.1f}{r['min']:>9.1f}"
                         f"{r['max']:>9.1f}{r['n']:>6}{fps:>8.1f}{r['cpu_median']:>9.1f}"
                         f"{r['others_cores']:>8.2f}{tree:>11}{one:>9}")
        elif name in skipped:
            lines.append(f"{LABELS[name]:<26}  skipped: {skipped[name]}")
    legend = ("median s: wall time (Python workers: the render call only); CPU s: user + "
              "system of the process tree; others: cores kept busy by other processes on "
              "the machine meanwhile (0 on a quiet machine; above ~0.2 the wall times are "
              "inflated); peak RSS: Python + FFmpeg children summed; 1 proc: the largest "
              "single process in MiB (both sampled from /proc every 0.1 s).")
    lines += ["", textwrap.fill(legend, 100), ""]
    # Issue 13: at the encoder's limit (the floor) and well ahead of a careful graph.
    targets = {"framefarm / floor": 1.05, "framefarm / exact floor": 1.05,
               "framefarm / graph": 0.85}
    lines.append(f"{'ratio':<26}{'wall':>10}{'CPU':>8}")
    for key, value in ratios.items():
        if value is None or key.endswith("(cpu)"):
            continue
        cpu = ratios.get(key + " (cpu)")
        note = f"{cpu:>8.2f}" if cpu is not None else f"{'':>8}"
        if key in targets and cpu is not None:
            # Judged on CPU seconds: wall ratios are meaningful only on a quiet machine.
            verdict = "ok" if cpu <= targets[key] else "MISSED"
            note += f"   target (CPU) <= {targets[key]}: {verdict}"
        lines.append(f"{key:<26}{value:>10.2f}{note}")
    for name in ("framefarm", "framefarm-c1"):
        if name in results:
            mib = results[name]["peak_tree_mib"]
            lines.append(f"{'peak memory ' + name:<26}{mib:>10.0f} MiB   (Python + FFmpeg "
                         f"children summed; target < 1024 MiB: {'ok' if mib < 1024 else 'MISSED'})")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, help="runs per contender (median); default 3, "
                    "1 with --quick")
    ap.add_argument("--repeat-slow", type=int,
                    help="runs of MoviePy and the naive graph; default: --repeat")
    ap.add_argument("--seconds", type=float, default=None, help="video length (default 60)")
    ap.add_argument("--size", choices=list(models.SizePreset.__args__), default=None,
                    help="output size preset (default 1080p)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--quality", default="high", choices=list(encode.QUALITY))
    ap.add_argument("--quick", action="store_true", help="smoke test: 10 s of 720p, 1 run")
    ap.add_argument("--photos", choices=list(workload.GRAIN), default="grainy",
                    help="the workload's photos: grainy (the standard one) or clean (little "
                    "grain: x264 has less to do, so compositing weighs more)")
    ap.add_argument("--skip-moviepy", action="store_true")
    ap.add_argument("--only", help="comma-separated contenders to run: " + ",".join(CONTENDERS))
    ap.add_argument("--out", type=Path, default=BENCH / "out")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each run, wait up to S seconds for other processes on the "
                    "machine to go quiet (below 0.3 of a core)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the raw frames decoded for the floor (large)")
    ap.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                    help="only print the table of an earlier (possibly partial) results file")
    args = ap.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        if saved.get("partial"):
            print("(partial results: the run was stopped before its end)\n")
        for name, label in saved["meta"].get("labels", {}).items():
            LABELS[name] = label
        print_table(saved["meta"], saved["contenders"], saved["ratios"], saved["skipped"])
        return 0

    seconds = args.seconds or (10.0 if args.quick else 60.0)
    size = args.size or ("720p" if args.quick else "1080p")
    repeat = args.repeat or (1 if args.quick else 3)
    repeat_slow = min(repeat, args.repeat_slow or repeat)
    chosen = list(CONTENDERS) if not args.only else [c.strip() for c in args.only.split(",")]
    unknown = set(chosen) - set(CONTENDERS)
    if unknown:
        ap.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    if "floor" in chosen and "framefarm" not in chosen:
        chosen.insert(0, "framefarm")  # the floor encodes framefarm's own frames
    skipped: dict[str, str] = {}
    if args.skip_moviepy and "moviepy" in chosen:
        chosen.remove("moviepy")
        skipped["moviepy"] = "--skip-moviepy"

    out: Path = args.out.resolve()
    tag = f"{seconds:g}s-{size}" + ("" if args.photos == "grainy" else f"-{args.photos}")
    work = out / f"workload-{tag}"
    renders = out / f"renders-{tag}"
    logs = out / f"logs-{tag}"
    for d in (work, renders, logs):
        d.mkdir(parents=True, exist_ok=True)

    ffmpeg = runner.ffmpeg_binary()
    width, height = models.Output(size=size).dimensions
    fps, quality = args.fps, args.quality
    frames = round(seconds * fps)
    engine_args = engine_encode_args(width, height, fps, quality, frames,
                                     renders / "ENCODE-TARGET.mp4")
    pix_fmt = raw_pix_fmt(engine_args)
    x264 = x264_for_others(quality, fps, engine_args)
    print(f"building the workload in {work} ...", flush=True)
    spec = workload.build(work, seconds=seconds, size=size, width=width, height=height,
                          fps=fps, quality=quality, ffmpeg=ffmpeg, x264=x264, font=FONT,
                          photos=args.photos)
    document = work / "document.json"

    commands: dict[str, Callable[[int], dict[str, Any]]] = {}

    def framefarm_run(chunks: str) -> Callable[[int], dict[str, Any]]:
        def go(r: int) -> dict[str, Any]:
            target = renders / f"framefarm-{chunks}.mp4"
            return run_measured([sys.executable, str(BENCH / "ff_render.py"), str(document),
                                 str(target), chunks], logs / f"framefarm-{chunks}-{r}.log")
        return go

    # The default (no --chunks: the engine chooses from the machine's cores) and one chunk.
    commands["framefarm"] = framefarm_run("auto")
    commands["framefarm-c1"] = framefarm_run("c1")

    # testsrc2 in the pixel format framefarm pipes (converted in the lavfi graph, untimed
    # work of the same order as the engine's own conversion).
    limit_args = replace_raw_input(
        engine_encode_args(width, height, fps, quality, frames, renders / "limit.mp4"),
        ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps},format={pix_fmt}"])
    commands["limit"] = lambda r: run_measured([ffmpeg, *limit_args], logs / f"limit-{r}.log")

    raw = out / f"floor-{tag}.{pix_fmt}"
    floor_args = [a if a != "pipe:0" else str(raw) for a in
                  engine_encode_args(width, height, fps, quality, frames, renders / "floor.mp4")]

    def floor(r: int) -> dict[str, Any]:
        if not raw.exists():  # decode framefarm's output once (not timed)
            print(f"  decoding framefarm's output to {raw.name} for the floor ...", flush=True)
            subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i",
                            str(renders / "framefarm-auto.mp4"), "-map", "0:v", "-f", "rawvideo",
                            "-pix_fmt", pix_fmt, "-y", str(raw)], check=True)
            per_frame = width * height * (3 if pix_fmt == "rgb24" else 1.5)
            if raw.stat().st_size != per_frame * frames:
                raise RuntimeError(f"{raw}: unexpected size {raw.stat().st_size}")
        return run_measured([ffmpeg, *floor_args], logs / f"floor-{r}.log")

    commands["floor"] = floor
    exact_raw = out / f"exact-{tag}.{pix_fmt}"
    exact_args = [a if a != "pipe:0" else str(exact_raw) for a in
                  engine_encode_args(width, height, fps, quality, frames, renders / "exact.mp4")]

    def exact(r: int) -> dict[str, Any]:
        if not exact_raw.exists():  # composite once (not timed)
            print(f"  compositing to {exact_raw.name} for the exact floor ...", flush=True)
            composite_to_file(document, exact_raw, pix_fmt)
        return run_measured([ffmpeg, *exact_args], logs / f"exact-{r}.log")

    commands["exact"] = exact
    naive = workload.graph_args(spec, renders / "naive.mp4")
    commands["naive"] = lambda r: run_measured([ffmpeg, *naive], logs / f"naive-{r}.log")
    graph = workload.graph_args(spec, renders / "graph.mp4", decode_once=True)
    commands["graph"] = lambda r: run_measured([ffmpeg, *graph], logs / f"graph-{r}.log")

    moviepy_version = None
    if "moviepy" in chosen:
        python, why = moviepy_python(out / "moviepy-venv")
        if python is None:
            print(f"MoviePy skipped: installing it failed: {why}", flush=True)
            skipped["moviepy"] = f"install failed: {why}"
            chosen.remove("moviepy")
        else:
            moviepy_version = why
            env = {**os.environ, "FFMPEG_BINARY": ffmpeg, "IMAGEIO_FFMPEG_EXE": ffmpeg}
            commands["moviepy"] = lambda r: run_measured(
                [str(python), str(BENCH / "moviepy_slideshow.py"), str(work / "spec.json"),
                 str(renders / "moviepy.mp4")], logs / f"moviepy-{r}.log", env=env)
            LABELS["moviepy"] = f"MoviePy {why}"

    meta = {
        "seconds": seconds, "size": size, "width": width, "height": height, "fps": fps,
        "frames": frames, "quality": quality, "repeat": repeat, "repeat_slow": repeat_slow,
        "photos": args.photos,
        "x264": x264["codec_args"], "pipe_pix_fmt": pix_fmt, "cores": os.cpu_count(),
        "ffmpeg": runner.ffmpeg_version(),
        "cpu": _cpu_model(), "python": platform.python_version(),
        "framefarm_commit": _git("rev-parse", "--short", "HEAD"),
        "framefarm_dirty": bool(_git("status", "--porcelain", "--", "src")),
        "moviepy": moviepy_version, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "labels": LABELS,
        "commands": {"framefarm_encoder": engine_args, "limit": limit_args,
                     "floor": floor_args, "exact": exact_args, "graph": graph,
                     "naive": naive},
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    began = time.monotonic()
    for r in range(repeat):
        for name in chosen:
            if name in SLOW and r >= repeat_slow:
                continue
            waited = wait_quiet(args.wait_quiet) if args.wait_quiet else 0.0
            print(f"[{time.monotonic() - began:7.0f}s] round {r + 1}/{repeat}: "
                  f"{LABELS[name]} ...", end=" ", flush=True)
            result = commands[name](r)
            result["waited_for_quiet"] = round(waited, 1)
            runs[name].append(result)
            print(f"{result['seconds']:.1f} s, CPU {result['cpu']:.0f} s, peak RSS "
                  f"{result['peak_tree_mib']:.0f} MiB, others {result['others_cores']:.2f} "
                  f"cores", flush=True)
            _save(out, tag, meta, runs, skipped, partial=True)
    for frames_file in (raw, exact_raw):
        if frames_file.exists() and not args.keep:
            frames_file.unlink()
    outputs = {}
    for name, path in (("framefarm", "framefarm-auto.mp4"), ("framefarm-c1", "framefarm-c1.mp4"),
                       ("limit", "limit.mp4"), ("floor", "floor.mp4"), ("exact", "exact.mp4"),
                       ("graph", "graph.mp4"),
                       ("naive", "naive.mp4"),
                       ("moviepy", "moviepy.mp4")):
        if name in runs and (renders / path).exists():
            info = media.probe(renders / path)
            outputs[name] = {"path": str(renders / path), "duration": round(info.duration, 3),
                             "bytes": (renders / path).stat().st_size,
                             "audio": info.audio is not None}
    meta["outputs"] = outputs
    meta["total_seconds"] = round(time.monotonic() - began, 1)
    results = _save(out, tag, meta, runs, skipped, partial=False)
    print()
    text = print_table(meta, results["contenders"], results["ratios"], skipped)
    (out / f"table-{tag}.txt").write_text(text + "\n")
    print(f"\nresults: {out / 'results.json'} (also results-{tag}.json)")
    return 0


def _save(out: Path, tag: str, meta: dict[str, Any], runs: dict[str, list[dict[str, Any]]],
          skipped: dict[str, str], partial: bool) -> dict[str, Any]:
    contenders = {name: summarise(rs) for name, rs in runs.items() if rs}
    pairs = {
        "framefarm / limit": ("framefarm", "limit"),
        "framefarm / floor": ("framefarm", "floor"),
        "framefarm / exact floor": ("framefarm", "exact"),
        "framefarm / moviepy": ("framefarm", "moviepy"),
        "framefarm / graph": ("framefarm", "graph"),
        "framefarm / naive": ("framefarm", "naive"),
        "default / chunks=1": ("framefarm", "framefarm-c1"),
        "floor / limit": ("floor", "limit"),
        "exact floor / floor": ("exact", "floor"),
    }
    ratios: dict[str, float | None] = {}
    for key, (a, b) in pairs.items():
        ratios[key] = ratio(contenders, a, b)
        ratios[key + " (cpu)"] = ratio(contenders, a, b, "cpu_median")
    results = {"meta": meta, "contenders": contenders, "ratios": ratios, "skipped": skipped,
               "partial": partial}
    text = json.dumps(results, indent=2)
    (out / "results.json").write_text(text)
    (out / f"results-{tag}.json").write_text(text)
    return results


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
