"""What a chunk costs before its frames: the per-task start-up that bench/simulate.py takes.

    taskset -c 0 python bench/task_startup.py bench/out/service-60s-1080p/document.json

A node's task loads the document (validation included: every still is checked) and
renders its frame range with one encoder thread. This times both for a short range and a
long one, alternately, in one process (imports excluded, as a node has them already):
the frames' cost is the difference between the two, and the start-up is what is left of
the short one. Prints the medians. Pin it to one CPU to match a one-CPU node.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from framefarm import engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("document", type=Path)
    parser.add_argument("--first", type=int, default=900, help="the ranges' first frame")
    parser.add_argument("--short", type=int, default=5, help="frames in the short range")
    parser.add_argument("--long", type=int, default=65, help="frames in the long range")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    loads: list[float] = []
    parts: dict[int, list[float]] = {args.short: [], args.long: []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeat):
            for count in (args.short, args.long):
                began = time.perf_counter()
                tl = engine.load_timeline(args.document)
                loaded = time.perf_counter()
                engine.render_part(tl, (args.first, args.first + count),
                                   Path(scratch) / f"part{count}.mp4", threads=1)
                loads.append(loaded - began)
                parts[count].append(time.perf_counter() - loaded)
    load = statistics.median(loads)
    short, long = statistics.median(parts[args.short]), statistics.median(parts[args.long])
    per_frame = (long - short) / (args.long - args.short)
    startup = load + short - args.short * per_frame
    print(f"load {load:.3f} s; {args.short} frames {short:.3f} s; {args.long} frames "
          f"{long:.3f} s (medians of {args.repeat})")
    print(f"per frame {per_frame * 1000:.1f} ms ({1 / per_frame:.1f} frames/s); "
          f"start-up per task {startup:.2f} s (--startup for bench/simulate.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
