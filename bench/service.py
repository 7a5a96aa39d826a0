"""The render service's figures, on loopback, against a real `framefarm serve`.

    python bench/service.py                  # everything below, 60 s 1080p render
    python bench/service.py --quick          # 10 s 720p render, fewer requests
    python bench/service.py --only api       # snapshot latency and API throughput only
    python bench/service.py --only scaling --seconds 120 --size 720p   # 1 node vs 2 nodes
    python bench/service.py --only scaling --pin ...   # nodes pinned to one CPU each

- snapshot: submit-to-image latency of POST /v1/snapshots (each a new frame, so no cache),
  median and p90 over N;
- API throughput: GET /v1/renders/{id} and POST /v1/renders from 8 client threads,
  requests per second with p50/p99 latency (submissions go to a server with no nodes);
- render: the benchmark's slideshow through `serve` with 2 local nodes, against
  `framefarm render` of the same document in the same run (the service's overhead);
- scaling: the same render through `serve` with 1 node and with 2 nodes sharing the
  machine; with --pin, each node pinned to a CPU of its own (`framefarm worker --cpus`),
  which is how nodes on separate one-core machines behave, so the figure shows what the
  farm's splitting gains when nodes do not compete for the same cores.

Each figure is printed with the command's own baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from framefarm.ffmpeg import runner

OUT = Path(__file__).resolve().parent / "out"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_process(command: list[str], base: str, log_path: Path,
                env: dict[str, str] | None = None) -> Iterator[TextIO]:
    """Run an API server ``command`` in a session of its own, its output in ``log_path``;
    yield that log once ``base``/readyz answers 200, and stop the whole session after."""
    log = log_path.open("w+")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{command[2:4]} did not start:\n{log.read()}")
            time.sleep(0.2)
        yield log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def admin_key(log: Path) -> str:
    """The admin key a first `framefarm serve` prints, from its log."""
    lines = log.read_text().splitlines()
    for i, line in enumerate(lines):
        if "shown once" in line and i + 1 < len(lines):
            return lines[i + 1].strip()
    raise RuntimeError(f"no admin key in {log}")


@contextmanager
def serving(workers: int, env: dict[str, str] | None = None,
            pinned: int = 0) -> Iterator[tuple[str, str]]:
    """A `framefarm serve` subprocess: yields (base URL, admin key). ``pinned``: instead
    of serve's own nodes, that many `framefarm worker` processes, node i on CPU i."""
    data = Path(tempfile.mkdtemp(prefix="ff-bench-serve-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "framefarm", "serve", "--port", str(port), "--workers",
               str(workers), "--data-dir", str(data)]
    with api_process(command, base, data / "serve.log",
                     {"FRAMEFARM_MAX_CONCURRENT_JOBS": "100000", **(env or {})}) as log:
        key = admin_key(data / "serve.log")
        token = (data / "enrolment.token").read_text().strip()
        nodes = [subprocess.Popen(
            [sys.executable, "-m", "framefarm", "worker", "--server", base, "--token", token,
             "--name", f"pinned-{cpu}", "--workdir", str(data / f"node{cpu}"), "--cpus",
             str(cpu), "--poll-seconds", "0.1"], stdout=log, stderr=subprocess.STDOUT)
            for cpu in range(pinned)]
        try:
            if workers or pinned:
                _wait_nodes(base, key, workers or pinned)
            yield base, key
        finally:
            for node in nodes:
                node.kill()


def _wait_nodes(base: str, key: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        nodes = httpx.get(f"{base}/v1/admin/nodes", headers=_auth(key)).json()
        if sum(n["status"] in ("online", "busy") for n in nodes) >= count:
            return
        time.sleep(0.3)
    raise RuntimeError("local nodes did not come online")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- figures ---------------------------------------------------------------------------------


def snapshot_latency(base: str, key: str, count: int) -> dict[str, float]:
    doc = {"output": {"size": "1080p"}, "scenes": [{"duration": 60, "background": "#203040",
           "layers": [{"type": "text", "text": "Snapshot", "style": {"size": 96}},
                      {"type": "shape", "shape": "circle", "width": 300, "height": 300,
                       "keyframes": {"x": [{"time": 0, "value": 0},
                                           {"time": 60, "value": 1600}]}}]}]}
    times = []
    with httpx.Client(base_url=base, headers=_auth(key), timeout=60) as client:
        for i in range(count):
            started = time.perf_counter()
            response = client.post("/v1/snapshots", json={"document": doc, "frame": 17 * i + 1})
            times.append(time.perf_counter() - started)
            assert response.status_code == 200 and response.headers["x-cache"] == "miss", \
                response.text
    return {"median_ms": statistics.median(times) * 1000, "p90_ms": _pct(times, 0.9) * 1000,
            "n": count}


def throughput(call: Callable[[httpx.Client], httpx.Response], base: str, key: str,
               total: int, threads: int = 8) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = total // threads

    def run() -> None:
        mine = []
        with httpx.Client(base_url=base, headers=_auth(key), timeout=60) as client:
            for _ in range(per_thread):
                started = time.perf_counter()
                response = call(client)
                mine.append(time.perf_counter() - started)
                assert response.status_code < 300, response.text
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"rps": len(latencies) / elapsed, "p50_ms": _pct(latencies, 0.5) * 1000,
            "p99_ms": _pct(latencies, 0.99) * 1000, "n": len(latencies)}


def tiny_doc(i: int) -> dict[str, Any]:
    return {"output": {"size": "360p", "quality": "draft"},
            "scenes": [{"duration": 1, "layers": [{"type": "text", "text": f"job {i}"}]}]}


def render_through_service(base: str, key: str, document: dict[str, Any],
                           media: Path) -> tuple[float, dict[str, Any]]:
    """Upload the workload's media, submit, wait; seconds from submit to export."""
    with httpx.Client(base_url=base, headers=_auth(key), timeout=600) as client:
        project = client.post("/v1/projects", json={"name": "bench"}).json()["id"]
        for path in sorted(media.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                with path.open("rb") as handle:
                    client.post(f"/v1/projects/{project}/assets", data={"folder": "media"},
                                files=[("files", (path.name, handle))]).raise_for_status()
        client.put(f"/v1/projects/{project}/document", json=document).raise_for_status()
        started = time.perf_counter()
        job = client.post("/v1/renders", json={"project_id": project}).json()
        while True:
            view = client.get(f"/v1/renders/{job['id']}").json()
            if view["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
    if view["state"] != "succeeded":
        raise RuntimeError(f"render {view['state']}: {view['error']}")
    return elapsed, view


def print_timeline(base: str, key: str, view: dict[str, Any]) -> None:
    """The job's log, each line timed from its submission, with the node that wrote it."""
    lines = httpx.get(f"{base}/v1/renders/{view['id']}/logs", headers=_auth(key)).json()
    submitted = datetime.fromisoformat(view["created_at"])
    for line in lines:
        at = (datetime.fromisoformat(line["at"]) - submitted).total_seconds()
        node = (line.get("node_id") or "")[-6:]
        print(f"  {at:7.2f} s  {node:>6}  {line['message']}")


def render_locally(doc_path: Path, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "framefarm", "render", str(doc_path), "-o", str(out),
                    "-q"], check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("api", "render", "scaling"))
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--size", default=None)
    parser.add_argument("--quality", default="high")
    parser.add_argument("--timeline", action="store_true",
                        help="scaling: print each job's log, timed from its submission")
    parser.add_argument("--pin", action="store_true",
                        help="scaling: pin node i to CPU i (as if on separate machines)")
    parser.add_argument("--repeat", type=int, default=1, help="scaling: runs per node count "
                        "(the median is reported)")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    size = args.size or ("720p" if args.quick else "1080p")
    results: dict[str, Any] = {"seconds": seconds, "size": size}

    if args.only in (None, "api"):
        with serving(workers=2) as (base, key):
            results["snapshot"] = snapshot_latency(base, key, 10 if args.quick else 30)
            print(f"snapshot submit-to-image: median {results['snapshot']['median_ms']:.0f} ms,"
                  f" p90 {results['snapshot']['p90_ms']:.0f} ms", flush=True)
        with serving(workers=0) as (base, key):
            job = httpx.post(f"{base}/v1/renders", headers=_auth(key),
                             json={"document": tiny_doc(0)}).json()["id"]
            n = 800 if args.quick else 4000
            results["get_render"] = throughput(
                lambda c: c.get(f"/v1/renders/{job}"), base, key, n)
            counter = iter(range(10**9))
            results["submit"] = throughput(
                lambda c: c.post("/v1/renders", json={"document": tiny_doc(next(counter))}),
                base, key, n // 4)
            for name in ("get_render", "submit"):
                r = results[name]
                print(f"{name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                      f"p99 {r['p99_ms']:.1f} ms (n={r['n']}, 8 client threads)", flush=True)

    if args.only in (None, "render", "scaling"):
        width, height = _size(size)
        work = OUT / f"service-{int(seconds)}s-{size}"
        # x264 and font only matter to the other contenders of bench/run.py.
        workload.build(work, seconds=seconds, size=size, width=width, height=height, fps=30,
                       quality=args.quality, ffmpeg=runner.ffmpeg_binary(), x264={},
                       font=Path())
        doc_path = work / "document.json"
        document = json.loads(doc_path.read_text())
        media = doc_path.parent / "media"
        if args.only in (None, "render"):
            local = render_locally(doc_path, work / "local.mp4")
            with serving(workers=2) as (base, key):
                served, view = render_through_service(base, key, document, media)
            results["render"] = {"local_s": local, "service_2_nodes_s": served,
                                 "overhead": served / local - 1,
                                 "frames": view["frames"]["total"]}
            print(f"render {seconds:g} s {size}: framefarm render {local:.1f} s; through serve "
                  f"with 2 nodes {served:.1f} s (overhead {100 * (served / local - 1):+.1f}%)",
                  flush=True)
        if args.only in (None, "scaling"):
            times = {}
            how = "each pinned to a CPU of its own" if args.pin else "sharing all cores"
            for count in (1, 2):
                runs = []
                for _ in range(args.repeat):
                    with serving(workers=0 if args.pin else count,
                                 pinned=count if args.pin else 0) as (base, key):
                        elapsed, view = render_through_service(base, key, document, media)
                        runs.append(elapsed)
                        if args.timeline:
                            print_timeline(base, key, view)
                times[count] = statistics.median(runs)
                print(f"scaling: {count} node(s) {how}: median {times[count]:.1f} s of "
                      f"{', '.join(f'{r:.1f}' for r in runs)}", flush=True)
            results["scaling"] = {"pinned": args.pin, "1_node_s": times[1],
                                  "2_nodes_s": times[2], "speedup": times[1] / times[2]}
            print(f"scaling: 2 nodes are {times[1] / times[2]:.2f}x as fast as 1 ({how})",
                  flush=True)

    OUT.mkdir(exist_ok=True)
    (OUT / "service-results.json").write_text(json.dumps(results, indent=2))
    print(f"results in {OUT / 'service-results.json'}")
    return 0


def _size(name: str) -> tuple[int, int]:
    short = int(name.rstrip("p"))
    return round(short * 16 / 9) // 2 * 2, short


if __name__ == "__main__":
    raise SystemExit(main())
