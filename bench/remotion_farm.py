"""Remotion on the farm: the example composition stretched to S seconds at 1080p30,
rendered by Remotion's own CLI on one core, and by `framefarm serve` with two nodes
pinned to one core each (`framefarm worker --cpus`), in one run, interleaved.

    python bench/remotion_farm.py                 # 30 s, 3 rounds
    python bench/remotion_farm.py --seconds 10 --repeat 1   # a quick look

Printed: the median wall seconds of each, the farm's speed-up over Remotion's CLI (both
rendering a prepared project: the farm's is made by a snapshot first), the cost of
preparing a project (npm ci + bundle) the first time and when cached, and the
peak memory of each node (its process and every process under it: Node.js, Chromium,
FFmpeg), sampled during the farm's renders. Remotion's CLI gets the same encoder settings
as framefarm's quality "high" (x264 medium, crf 20) and the system's Chromium.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from framefarm.engines.remotion import process, project, sandbox
from service import _auth, print_timeline, serving

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "remotion-card"
OUT = Path(__file__).resolve().parent / "out"
FPS = 30


def stretched(seconds: int) -> Path:
    """The example with its composition lasting ``seconds`` (only Root.tsx changes)."""
    folder = OUT / f"remotion-card-{seconds}s"
    shutil.rmtree(folder, ignore_errors=True)
    for name in project.files(EXAMPLE):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLE / name, folder / name)
    root = folder / "src" / "Root.tsx"
    text = root.read_text()
    assert "durationInFrames={120}" in text
    root.write_text(text.replace("durationInFrames={120}",
                                 f"durationInFrames={{{seconds * FPS}}}"))
    return folder


def remotion_cli(ready: project.Prepared, out: Path) -> float:
    """Remotion's own `remotion render`, on CPU 0, one browser tab: wall seconds."""
    cli = ready.source / "node_modules" / ".bin" / "remotion"
    argv = ["taskset", "-c", "0", str(cli), "render", str(ready.entry), "Card", str(out),
            f"--browser-executable={process.chromium_binary()}", "--concurrency=1",
            "--scale=1.5", "--crf=20", "--x264-preset=medium", "--log=error"]
    started = time.perf_counter()
    subprocess.run(argv, cwd=ready.source, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def project_zip(folder: Path) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name in project.files(folder):
            archive.write(folder / name, str(name))
    return data.getvalue()


def farm_render(base: str, key: str, project_id: str, peaks: dict[str, int],
                timeline: bool = False) -> float:
    """One render through the service: wall seconds from submit to export, with the
    nodes' memory sampled meanwhile; ``timeline``: print the job's log, timed from
    submit (where the time goes: prepare, each chunk, the assemble step)."""
    body = {"project_id": project_id, "options": {"size": "1080p", "quality": "high"},
            "document": {"engine": "remotion", "composition": "Card", "props": {}}}
    done = threading.Event()
    sampler = threading.Thread(target=_sample_nodes, args=(peaks, done), daemon=True)
    sampler.start()
    with httpx.Client(base_url=base, headers=_auth(key), timeout=600) as client:
        started = time.perf_counter()
        job = client.post("/v1/renders", json=body)
        job.raise_for_status()
        while True:
            view = client.get(f"/v1/renders/{job.json()['id']}").json()
            if view["state"] in ("succeeded", "failed", "cancelled") and (
                    view["state"] != "succeeded" or view["export"]):
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    if view["state"] != "succeeded":
        raise RuntimeError(f"the farm's render {view['state']}: {view['error']}")
    if timeline:
        print_timeline(base, key, view)
    return elapsed


def _sample_nodes(peaks: dict[str, int], done: threading.Event) -> None:
    """Peak memory of each pinned node's process tree (found by its name on the command
    line), every 0.5 s."""
    while not done.wait(0.5):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"worker" in argv and b"--name" in argv:
                name = argv[argv.index(b"--name") + 1].decode()
                peaks[name] = max(peaks.get(name, 0), sandbox.tree_rss(int(pid)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeline", action="store_true",
                        help="print each farm render's log, timed from its submit")
    args = parser.parse_args()
    missing = process.missing_tools()
    if missing or shutil.which("taskset") is None:
        print("cannot run:", "; ".join(missing) or "taskset is missing")
        return 2
    if len(os.sched_getaffinity(0)) < 2:
        print("cannot run: two CPUs are needed (the farm's two pinned nodes)")
        return 2
    folder = stretched(args.seconds)
    cache = Path(tempfile.mkdtemp(prefix="ff-bench-remotion-", dir=OUT))
    os.chmod(cache, 0o755)
    try:
        began = time.perf_counter()
        ready = project.prepare(folder, cache)
        cold = time.perf_counter() - began
        began = time.perf_counter()
        project.prepare(folder, cache)
        warm = time.perf_counter() - began
        print(f"prepare: first {cold:.1f} s (npm ci {ready.timings['install']:.1f} s, bundle "
              f"{ready.timings['bundle']:.1f} s); cached {warm * 1000:.0f} ms")

        env = {"FRAMEFARM_REMOTION_CACHE": str(cache)}
        os.environ.update(env)  # the pinned nodes are started with this environment
        cli_times: list[float] = []
        farm_times: list[float] = []
        peaks: dict[str, int] = {}
        with serving(0, env=env, pinned=2) as (base, key):
            with httpx.Client(base_url=base, headers=_auth(key), timeout=120) as client:
                me = client.get("/v1/me").json()
                client.put(f"/v1/admin/tenants/{me['tenant_id']}/plan",
                           json={"code_templates": True}).raise_for_status()
                project_id = client.post("/v1/projects", json={"name": "card"}).json()["id"]
                client.post(f"/v1/projects/{project_id}/archive", files={
                    "archive": ("card.zip", project_zip(folder))}).raise_for_status()
                # The CLI renders a prepared project; so do the nodes: a snapshot makes the
                # tenant's own build (bundled for its sandbox user) before the rounds.
                began = time.perf_counter()
                client.post("/v1/snapshots", json={
                    "project_id": project_id, "frame": 0, "wait": 120,
                    "document": {"engine": "remotion", "composition": "Card", "props": {}},
                }).raise_for_status()
                print(f"the farm's own preparation (a snapshot): "
                      f"{time.perf_counter() - began:.1f} s")
            for round_ in range(args.repeat):
                out = OUT / f"remotion-cli-{args.seconds}s.mp4"
                cli_times.append(remotion_cli(ready, out))
                farm_times.append(farm_render(base, key, project_id, peaks, args.timeline))
                print(f"round {round_ + 1}: remotion CLI {cli_times[-1]:.1f} s, farm "
                      f"{farm_times[-1]:.1f} s, {cli_times[-1] / farm_times[-1]:.2f}x")
        cli, farm = statistics.median(cli_times), statistics.median(farm_times)
        frames = args.seconds * FPS
        print()
        print(f"{args.seconds} s of 1920x1080 at {FPS} fps ({frames} frames), "
              f"median of {args.repeat}:")
        print(f"  {'Remotion CLI, 1 core':32} {cli:8.1f} s  {frames / cli:6.1f} fps")
        print(f"  {'framefarm, 2 nodes x 1 core':32} {farm:8.1f} s  {frames / farm:6.1f} fps")
        print(f"  speed-up {cli / farm:.2f}x (target 1.8x)")
        for name, peak in sorted(peaks.items()):
            print(f"  peak memory of {name}: {peak / 1024**2:.0f} MiB")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
