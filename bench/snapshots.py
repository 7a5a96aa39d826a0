#!/usr/bin/env python3
"""How fast one frame comes back: the CLI, its start-up, and a warm API.

    python bench/snapshots.py                 # 5 runs of each, medians
    python bench/snapshots.py --repeat 9

- CLI: ``framefarm snapshot`` of a frame in the middle of the 60 s 1080p benchmark
  slideshow (ten photos, titles; ``bench/workload.py``), as PNG and as JPEG: the whole
  process, interpreter start-up and imports included;
- ``framefarm --help``: the CLI's start-up alone (what every command pays);
- API: a ``framefarm serve`` with one local node, warmed by one snapshot first; then
  ``POST /v1/snapshots`` submit-to-image of a frame not rendered before (a node renders
  it) and of the same frame again (the cache answers), PNG and JPEG. The document is a 60 s
  1080p one with no assets (text and a moving shape), so the figure is the service's and
  the engine's, not an upload's.

Each row prints the median wall and CPU seconds and how many cores other processes kept
busy meanwhile (above ~0.2 the wall times are inflated; the targets are wall times on a
quiet machine: CLI < 0.5 s, API < 0.3 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
import workload  # noqa: E402

import service  # noqa: E402
from framefarm.ffmpeg import runner  # noqa: E402

API_DOC: dict[str, Any] = {
    "output": {"size": "1080p"},
    "scenes": [{"duration": 60, "background": "#203040", "layers": [
        {"type": "text", "text": "Snapshot", "style": {"size": 96}},
        {"type": "shape", "shape": "circle", "width": 300, "height": 300,
         "keyframes": {"x": [{"time": 0, "value": 0}, {"time": 60, "value": 1600}]}}]}],
}


def cli_runs(argv: list[str], repeat: int, logs: Path, name: str) -> dict[str, float]:
    runs = [run.run_measured(argv, logs / f"{name}-{i}.log") for i in range(repeat)]
    return {"wall": statistics.median(r["seconds"] for r in runs),
            "cpu": statistics.median(r["cpu"] for r in runs),
            "others": statistics.mean(r["others_cores"] for r in runs), "n": len(runs)}


def api_runs(base: str, key: str, repeat: int) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"Bearer {key}"}
    results: dict[str, list[float]] = {f"{fmt} {kind}": [] for fmt in ("png", "jpeg")
                                       for kind in ("miss", "hit")}
    busy: list[float] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        def post(frame: int, fmt: str, expect: str) -> float:
            started = time.perf_counter()
            response = client.post("/v1/snapshots", json={"document": API_DOC,
                                                          "frame": frame, "format": fmt})
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or response.headers.get("x-cache") != expect:
                raise RuntimeError(f"snapshot {frame} {fmt}: {response.status_code} "
                                   f"{response.headers.get('x-cache')} {response.text[:300]}")
            return elapsed

        post(1, "png", "miss")  # warm: the node has imported and loaded everything once
        for i in range(repeat):
            for fmt in ("png", "jpeg"):
                frame = 37 * i + (2 if fmt == "png" else 3) + 100
                before = run.machine_busy()
                began = time.perf_counter()
                results[f"{fmt} miss"].append(post(frame, fmt, "miss"))
                results[f"{fmt} hit"].append(post(frame, fmt, "hit"))
                span = time.perf_counter() - began
                # Everything on the machine, the server and its node included.
                busy.append((run.machine_busy() - before) / span)
    return {name: {"wall": statistics.median(v), "n": len(v),
                   "machine_busy": statistics.mean(busy)} for name, v in results.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=BENCH / "out")
    ap.add_argument("--skip-api", action="store_true")
    args = ap.parse_args()
    out: Path = args.out.resolve()
    work = out / "workload-60s-1080p"
    logs = Path(tempfile.mkdtemp(prefix="ff-snapshots-"))
    from framefarm.document import models
    width, height = models.Output(size="1080p").dimensions
    engine_args = run.engine_encode_args(width, height, 30, "high", 1800, logs / "x.mp4")
    workload.build(work, seconds=60, size="1080p", width=width, height=height, fps=30,
                   quality="high", ffmpeg=runner.ffmpeg_binary(),
                   x264=run.x264_for_others("high", 30, engine_args), font=run.FONT)
    document = str(work / "document.json")
    framefarm = [sys.executable, "-m", "framefarm"]
    rows: dict[str, dict[str, float]] = {
        "framefarm --help": cli_runs([*framefarm, "--help"], args.repeat, logs, "help"),
    }
    for ext in ("png", "jpg"):
        rows[f"CLI snapshot .{ext}"] = cli_runs(
            [*framefarm, "snapshot", document, "--at", "31.5", "-o", str(logs / f"f.{ext}")],
            args.repeat, logs, f"snapshot-{ext}")
    print(f"{'what':<28}{'median s':>10}{'CPU s':>8}{'others':>8}{'runs':>6}")
    for name, r in rows.items():
        print(f"{name:<28}{r['wall']:>10.3f}{r['cpu']:>8.3f}{r['others']:>8.2f}{r['n']:>6}")
    if not args.skip_api:
        with service.serving(workers=1) as (base, key):
            api = api_runs(base, key, args.repeat)
        print(f"\n{'API POST /v1/snapshots':<28}{'median s':>10}{'busy':>8}{'runs':>6}"
              "   (busy: cores the whole machine kept busy, this service included)")
        for name, r in api.items():
            print(f"{name:<28}{r['wall']:>10.3f}{r['machine_busy']:>8.2f}{r['n']:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
