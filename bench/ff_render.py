"""One framefarm render in its own process (so its peak memory can be measured).

Usage: python bench/ff_render.py DOCUMENT OUTPUT CHUNKS [FIRST-END]
(CHUNKS: "auto" for the engine's default, or c1, c2, ... for that many; FIRST-END:
render only frames [FIRST, END), e.g. for profiling a part.)
Prints one JSON line: the render's own seconds (imports excluded) and peak RSS figures.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    document, output = Path(sys.argv[1]), Path(sys.argv[2])
    chunks = None if sys.argv[3] == "auto" else int(sys.argv[3].lstrip("c"))
    from framefarm.engine import render  # imported before the clock starts

    began = time.perf_counter()
    frames = None
    if len(sys.argv) > 4:
        first, end = sys.argv[4].split("-")
        frames = (int(first), int(end))
    result = render(document, output, chunks=chunks, frames=frames)
    seconds = time.perf_counter() - began
    print(json.dumps({
        "seconds": seconds,
        "frames": result.frames,
        # Linux reports kilobytes. SELF: this Python process; CHILDREN: the largest FFmpeg.
        "maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "maxrss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
