#!/usr/bin/env python3
"""Frames shared across a batch's rows, rendered once: node time against rendering every
row on its own, in one run.

    python bench/shared_frames.py                       # 100 rows, 3 repeats (long)
    python bench/shared_frames.py --rows 20 --repeats 1 # a smoke run (~3 min on 2 cores)
    python bench/shared_frames.py --part-cost           # what a part costs before its frames

The workload (generated in bench/out/shared-<size>/): a 10 s 720p30 template, a 4 s intro
and a 3 s outro the same for every row (a photo with Ken Burns, a title), a 3 s middle with
the row's name over another photo; a music bed (per row, normalised, as always). 70% of
the frames are shared. Each repeat renders the batch (a) with ``framefarm batch``'s engine
(``framefarm.batch.local.run``) and (b) every row independently with ``framefarm render``'s
engine (``engine.render``), ``--jobs`` rows at a time in both; the order alternates between
repeats. Each variant runs in its own process: its node time is the CPU seconds of that
process and its FFmpeg children (``getrusage(RUSAGE_CHILDREN)`` deltas). See
bench/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
try:
    import framefarm  # noqa: F401
except ImportError:  # not installed in this interpreter: try the source tree
    sys.path.insert(0, str(REPO / "src"))

import workload  # noqa: E402

from framefarm import engine  # noqa: E402
from framefarm.batch import local, shared  # noqa: E402
from framefarm.ffmpeg import runner  # noqa: E402

NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia",
         "Ken", "Margaret", "Dennis", "Hedy", "Linus", "Sophie", "Tim", "Shafi", "Leslie")
TARGET = 2.5  # (b) / (a) node time


def build(folder: Path, size: str, quality: str, rows: int) -> tuple[Path, Path]:
    """The template, its media and ``rows`` rows (deterministic; media made once)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        if not (folder / f"photo{i}.jpg").exists():
            workload.make_photo(folder / f"photo{i}.jpg", seed=100 + i)
    if not (folder / "music.m4a").exists():
        workload.make_music(runner.ffmpeg_binary(), folder / "music.m4a", 12.0)

    def photo_scene(seconds: float, src: str, title: str, pan: str) -> dict[str, Any]:
        return {"duration": seconds, "layers": [
            {"type": "image", "src": src, "fit": "cover",
             "motion": {"zoom": [1.0, 1.15], "pan": pan}},
            {"type": "text", "text": title, "position": "bottom",
             "style": {"size": 64, "weight": "bold", "shadow": {"blur": 6}},
             "animation": {"in": "fade", "duration": 0.6}}]}

    template = {
        "output": {"size": size, "fps": 30, "quality": quality},
        "variables": {"name": {"type": "text", "required": True}},
        "music": {"src": "music.m4a", "volume": 0.5, "fade_out": 1},
        "scenes": [photo_scene(4, "photo0.jpg", "Welcome to framefarm", "left"),
                   photo_scene(3, "photo1.jpg", "Made for {{name}}", "right"),
                   photo_scene(3, "photo2.jpg", "See you soon", "up")],
    }
    template_path = folder / "template.json"
    template_path.write_text(json.dumps(template, indent=1), encoding="utf-8")
    rows_path = folder / f"rows-{rows}.json"
    rows_path.write_text(json.dumps([{"name": f"{NAMES[i % len(NAMES)]} {i + 1}"}
                                     for i in range(rows)]), encoding="utf-8")
    return template_path, rows_path


# -- the two variants, each run in a process of its own (``--worker``) -------------------------

def run_shared(template: Path, rows: Path, out: Path, jobs: int) -> dict[str, Any]:
    result = local.run(template, rows, out, jobs=jobs)
    if result.failed:
        raise SystemExit(f"{len(result.failed)} rows failed: {result.failed[0].error}")
    return {"shared_frames": result.plan.shared_frames, "frames": result.plan.total_frames,
            "parts": result.parts_rendered}


def run_independent(template: Path, rows: Path, out: Path, jobs: int) -> dict[str, Any]:
    """``framefarm render`` for every row, ``jobs`` at a time (as a shell loop would)."""
    data = json.loads(rows.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> int:
        return engine.render(template, out / local.row_file(i + 1), data=data[i]).frames

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        frames = list(pool.map(one, range(len(data))))
    return {"frames": frames[0]}


def worker(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    run = run_shared if args.worker == "shared" else run_independent
    report = run(Path(args.template), Path(args.rows_file), Path(args.out), args.jobs)
    report["seconds"] = time.perf_counter() - began
    print(json.dumps(report))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(variant: str, template: Path, rows: Path, out: Path, jobs: int) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)  # no parts or videos from an earlier repeat
    load = os.getloadavg()[0]
    cpu, wall = children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", variant, "--template", str(template),
         "--rows-file", str(rows), "--out", str(out), "--jobs", str(jobs)],
        capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"variant": variant, "cpu": cpu, "wall": wall, "load_before": load, **report}


# -- what a part costs ----------------------------------------------------------------------------

PLAIN = {"duration": 4, "background": "#203040", "layers": [
    {"type": "shape", "shape": "circle", "x": 40, "y": 40, "width": 300, "height": 300,
     "fill": "#ff5a00", "keyframes": {"x": [{"time": 0, "value": 0}, {"time": 4, "value": 900}]}},
    {"type": "text", "text": "Welcome", "position": "center",
     "animation": {"in": "fade", "duration": 0.5}}]}


def part_cost(template: Path, repeats: int) -> None:
    """CPU seconds of parts of 1..120 frames, one encoder thread each (as two rows at once
    on two cores have), of the workload's intro (a photo) and of a plain scene (a colour,
    a moving shape, a title: cheap frames, where a part's fixed cost weighs most). A line
    through them is fixed cost + cost per frame."""
    photo = engine.load_timeline(template, data={"name": "Ada"})
    doc = json.loads(template.read_text(encoding="utf-8"))
    plain = engine.load_timeline({"output": doc["output"], "scenes": [PLAIN]})
    lengths = (1, 5, 15, 30, 60, 120)
    part = BENCH / "out" / "part-cost.mp4"
    for label, tl in (("photo intro", photo), ("plain scene", plain)):
        timings: dict[int, list[float]] = {n: [] for n in lengths}
        for _ in range(repeats):
            for n in lengths:
                cpu = _self_and_children()
                engine.render_part(tl, (0, n), part, threads=1)
                timings[n].append(_self_and_children() - cpu)
        medians = [statistics.median(timings[n]) for n in lengths]
        slope, intercept = statistics.linear_regression(lengths, medians)
        print(f"{label}: " + "  ".join(f"{n} fr {m:.3f} s" for n, m in zip(
            lengths, medians, strict=True)))
        print(f"  fixed cost {intercept:.3f} s + {slope * 1000:.1f} ms a frame: a part costs "
              f"{intercept / slope:.1f} frames before its first")
    print(f"shared.PART_COST_FRAMES = {shared.PART_COST_FRAMES}")


def _self_and_children() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime + children_cpu()


# -- the table ----------------------------------------------------------------------------------

def table(runs: list[dict[str, Any]], rows: int) -> str:
    lines = [f"{'variant':<28}{'node CPU s':>11}{'min':>9}{'max':>9}{'wall s':>9}"
             f"{'min':>9}{'max':>9}{'runs':>6}{'load':>6}"]
    medians: dict[str, tuple[float, float]] = {}
    for variant, label in (("shared", "(a) batch, shared frames"),
                           ("independent", "(b) every row on its own")):
        mine = [r for r in runs if r["variant"] == variant]
        cpu = [r["cpu"] for r in mine]
        wall = [r["wall"] for r in mine]
        medians[variant] = (statistics.median(cpu), statistics.median(wall))
        lines.append(f"{label:<28}{medians[variant][0]:>11.1f}{min(cpu):>9.1f}{max(cpu):>9.1f}"
                     f"{medians[variant][1]:>9.1f}{min(wall):>9.1f}{max(wall):>9.1f}"
                     f"{len(mine):>6}{max(r['load_before'] for r in mine):>6.1f}")
    cpu_ratio = medians["independent"][0] / medians["shared"][0]
    wall_ratio = medians["independent"][1] / medians["shared"][1]
    verdict = "MET" if cpu_ratio >= TARGET else "MISSED"
    first = next(r for r in runs if r["variant"] == "shared")
    share = first["shared_frames"] / first["frames"]
    lines += ["",
              f"rows {rows}; frames per row {first['frames']}, shared "
              f"{first['shared_frames']} ({100 * share:.0f}%)",
              f"(b) / (a)  node CPU {cpu_ratio:.2f}x  wall {wall_ratio:.2f}x   "
              f"target node CPU >= {TARGET}x: {verdict}",
              f"per row: (a) {medians['shared'][0] / rows:.2f} CPU s, "
              f"(b) {medians['independent'][0] / rows:.2f} CPU s"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=engine.cores())
    parser.add_argument("--size", default="720p")
    parser.add_argument("--quality", default="high")
    parser.add_argument("--part-cost", action="store_true",
                        help="measure a part's fixed cost instead (the sharing threshold)")
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    # Internal: one variant in this process.
    parser.add_argument("--worker", choices=("shared", "independent"), help=argparse.SUPPRESS)
    parser.add_argument("--template", help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    folder = args.out / f"shared-{args.size}-{args.quality}"
    template, rows = build(folder, args.size, args.quality, args.rows)
    if args.part_cost:
        part_cost(template, max(1, args.repeats))
        return
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        order = ("shared", "independent") if repeat % 2 == 0 else ("independent", "shared")
        for variant in order:  # paired and alternating: a drift of the machine hits both
            run = measure(variant, template, rows, folder / f"renders-{variant}", args.jobs)
            runs.append(run)
            print(f"repeat {repeat + 1} {variant:<12} CPU {run['cpu']:7.1f} s  "
                  f"wall {run['wall']:7.1f} s  (load before {run['load_before']:.1f})",
                  flush=True)
    text = table(runs, args.rows)
    print()
    print(text)
    results = {"rows": args.rows, "repeats": args.repeats, "jobs": args.jobs,
               "size": args.size, "quality": args.quality, "runs": runs, "table": text,
               "ffmpeg": runner.ffmpeg_version(), "cores": engine.cores()}
    (folder / f"results-{args.rows}.json").write_text(json.dumps(results, indent=1),
                                                      encoding="utf-8")


if __name__ == "__main__":
    main()
