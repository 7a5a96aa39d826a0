#!/usr/bin/env python3
"""Where framefarm's Python-side time goes: composite the benchmark workload without
encoding, time each frame, and profile it.

    python bench/profile_render.py                      # the 60 s 1080p workload
    python bench/profile_render.py --workload bench/out/workload-10s-720p --cprofile 300

Run ``python bench/run.py`` (or ``--quick``) first: it writes the workload. Prints:

* ms per frame of ``Compositor.render`` (single-scene frames and transition frames apart),
  of the hand-off (the engine's in-process 4:2:0 conversion, if its encoder takes yuv420p,
  and ``tobytes``: what goes into the pipe), and of preparing scenes;
* the top functions of a cProfile run over ``--cprofile`` frames, in ms per frame.

For the real render (compositing thread, pipe writer and FFmpeg together) use py-spy:
``py-spy record --threads --format raw -o bench/out/pyspy.txt -- python bench/ff_render.py
DOC OUT 1`` and ``python bench/profile_render.py --pyspy bench/out/pyspy.txt``.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def _handoff(tl: Any) -> Callable[[Any], bytes]:
    """What the engine does to a composited frame before the pipe: convert it to 4:2:0
    in-process when its encoder command takes yuv420p, then ``tobytes``."""
    import cv2

    from framefarm.compiler import encode

    cmd = encode.video_part(width=tl.width, height=tl.height, fps=tl.fps, fmt="mp4",
                            quality=tl.output.quality, frames=1, output=Path("x.mp4"))
    if getattr(cmd, "stdin_pix_fmt", "rgb24") == "yuv420p":
        return lambda px: cv2.cvtColor(px, cv2.COLOR_RGB2YUV_I420).tobytes()
    return lambda px: px.tobytes()


def composite_timing(document: Path, frames: int | None) -> None:
    from framefarm.compositor.frame import Compositor
    from framefarm.engine import load_timeline

    began = time.perf_counter()
    tl = load_timeline(document)
    print(f"load + validate + probe the document: {1000 * (time.perf_counter() - began):.0f} ms")
    total = min(frames or tl.total_frames, tl.total_frames)
    starts = {s.start for s in tl.scenes}
    # (wall, CPU of the whole process: OpenCV's worker threads included) per frame
    render_single: list[tuple[float, float]] = []
    render_transition: list[tuple[float, float]] = []
    first_of_scene: list[tuple[float, float]] = []
    tobytes: list[tuple[float, float]] = []
    handoff = _handoff(tl)
    began, began_cpu = time.perf_counter(), time.process_time()
    with Compositor(tl) as comp:
        for n in range(total):
            t0, c0 = time.perf_counter(), time.process_time()
            pixels = comp.render(n)
            t1, c1 = time.perf_counter(), time.process_time()
            handoff(pixels)
            t2, c2 = time.perf_counter(), time.process_time()
            tobytes.append((t2 - t1, c2 - c1))
            if n in starts:  # includes preparing the incoming scene (decode, text)
                first_of_scene.append((t1 - t0, c1 - c0))
            elif len(tl.scenes_at(n)) > 1:
                render_transition.append((t1 - t0, c1 - c0))
            else:
                render_single.append((t1 - t0, c1 - c0))
    wall = time.perf_counter() - began
    cpu = time.process_time() - began_cpu

    def ms(values: list[tuple[float, float]]) -> str:
        if not values:
            return "-"
        walls = sorted(v[0] for v in values)
        cpus = sorted(v[1] for v in values)
        return (f"wall mean {1000 * sum(walls) / len(walls):6.1f} median "
                f"{1000 * walls[len(walls) // 2]:6.1f} | CPU mean "
                f"{1000 * sum(cpus) / len(cpus):6.1f} median {1000 * cpus[len(cpus) // 2]:6.1f}"
                f" ms  ({len(values)} frames)")

    print(f"\ncompositing only, {total} frames of {tl.width}x{tl.height}: {wall:.1f} s wall "
          f"({1000 * wall / total:.1f} ms/frame, {total / wall:.1f} fps), {cpu:.1f} s CPU "
          f"({1000 * cpu / total:.1f} ms/frame)")
    print("  (CPU: the whole process, OpenCV's threads included; on a busy machine trust it "
          "over wall)")
    print(f"  render, one scene         {ms(render_single)}")
    print(f"  render, transition        {ms(render_transition)}")
    print(f"  render, scene's 1st frame {ms(first_of_scene)}  (prepares the scene)")
    print(f"  hand-off (4:2:0 + bytes)  {ms(tobytes)}")


def cprofile_frames(document: Path, frames: int, top: int) -> None:
    from framefarm.compositor.frame import Compositor
    from framefarm.engine import load_timeline

    tl = load_timeline(document)
    frames = min(frames, tl.total_frames)
    prof = cProfile.Profile(time.process_time)  # CPU time: robust on a shared machine
    handoff = _handoff(tl)
    with Compositor(tl) as comp:
        prof.enable()
        for n in range(frames):
            handoff(comp.render(n))
        prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = func if file == "~" else f"{Path(file).name}:{line}({func})"
        rows.append((tottime, cumtime, calls, where))
    rows.sort(reverse=True)
    print(f"\ncProfile (process CPU time) of compositing {frames} frames (ms per frame; "
          "self = own time, cum = with callees)")
    print(f"{'self ms/f':>10}{'cum ms/f':>10}{'calls/f':>9}  function")
    for tottime, cumtime, calls, where in rows[:top]:
        print(f"{1000 * tottime / frames:>10.2f}{1000 * cumtime / frames:>10.2f}"
              f"{calls / frames:>9.1f}  {where}")


def pyspy_summary(path: Path, top: int) -> None:
    """Summarise a py-spy ``--format raw --threads`` file: samples per thread, and the
    functions with the most self samples in each thread."""
    per_thread: collections.Counter[str] = collections.Counter()
    self_time: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = frames[0]
        n = int(count)
        per_thread[thread] += n
        self_time[thread][frames[-1]] += n
        for func in set(frames[1:]):
            inclusive[thread][func] += n
    total = sum(per_thread.values())
    print(f"\npy-spy samples: {total} (with --idle, every thread is sampled all the time: "
          "a thread's % is the share of its wall time)")
    for thread, n in per_thread.most_common():
        print(f"\n{thread}: {n} samples ({100 * n / total:.0f}%)")
        print("  self (leaf):")
        for func, k in self_time[thread].most_common(top):
            print(f"    {100 * k / n:5.1f}%  {func}")
        print("  inclusive:")
        for func, k in inclusive[thread].most_common(top):
            print(f"    {100 * k / n:5.1f}%  {func}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", type=Path, default=BENCH / "out" / "workload-60s-1080p")
    ap.add_argument("--frames", type=int, help="composite only the first N frames")
    ap.add_argument("--cprofile", type=int, default=300,
                    help="frames to profile with cProfile (0: none)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--pyspy", type=Path, help="summarise a py-spy raw file instead")
    args = ap.parse_args()
    if args.pyspy:
        pyspy_summary(args.pyspy, args.top)
        return 0
    document = args.workload / "document.json"
    if not document.exists():
        sys.exit(f"{document}: missing; run python bench/run.py (or --quick) first")
    composite_timing(document, args.frames)
    if args.cprofile:
        cprofile_frames(document, args.cprofile, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
