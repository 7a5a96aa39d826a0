"""API throughput of a real `framefarm serve` on loopback, measured with wrk.

    python bench/api.py                       # SQLite and PostgreSQL, 32 connections, 10 s each
    python bench/api.py --only postgresql --seconds 20 --connections 64
    python bench/api.py --api-processes 2     # PostgreSQL behind `uvicorn --workers 2`

For each database: ``GET /healthz`` (the baseline: the server's own floor for a request),
``GET /v1/renders/{id}`` and ``POST /v1/renders`` of a small document (to a server with no
nodes, so nothing renders), each for the same time at the same concurrency, one after the
other in one run, 3 rounds; medians of requests per second and of p99 latency. Prints the
ratio of each endpoint's rate to /healthz's and the targets: GET at least 70% of /healthz
with p99 under 50 ms; POST at least 300/s with p99 under 100 ms.

Needs wrk (Debian: ``apt-get install wrk``); the server runs with ``--workers 0``. With
``--api-processes N`` (N > 1) PostgreSQL is served as docs/deployment.md recommends: N
processes of ``uvicorn --factory framefarm.api.asgi:create --workers N`` on one socket, the
database migrated and the tenant created by the CLI first; SQLite stays one process
(``framefarm serve``: its live events do not cross processes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from events import ADMIN_URL, _admin_key, serving

from service import api_process, free_port

DOCUMENT = {"output": {"size": "360p", "quality": "draft"},
            "scenes": [{"duration": 1, "layers": [{"type": "text", "text": "api"}]}]}
_POST_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.body = '{body}'
"""
_GET_SCRIPT = """
wrk.headers["Authorization"] = "Bearer {key}"
"""
# wrk's summary: "Requests/sec:   1234.56" and the --latency distribution's "99%  12.34ms".
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def wrk(url: str, script: str, seconds: float, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
             "--latency", "-s", handle.name, url],
            capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(handle.name)
    rate = float(_RATE.search(out).group(1))  # type: ignore[union-attr]
    value, unit = _P99.search(out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    failed = _NON_2XX.search(out)
    if failed:
        raise RuntimeError(f"{url}: {failed.group(1)} responses were errors:\n{out}")
    return {"rps": rate, "p99_ms": p99}


@contextmanager
def processes(data: Path, env: dict[str, str], count: int) -> Iterator[tuple[str, str]]:
    """``count`` API processes under ``uvicorn --workers`` (PostgreSQL): yields the base URL
    and an admin key made with the CLI."""
    full = {**os.environ, **env, "FRAMEFARM_DATA_DIR": str(data)}
    cli = [sys.executable, "-m", "framefarm"]
    subprocess.run([*cli, "migrate"], env=full, check=True, capture_output=True)
    made = subprocess.run([*cli, "admin", "create-tenant", "bench", "--admin"], env=full,
                          check=True, capture_output=True, text=True).stdout
    key = next(line.removeprefix("api key ").strip() for line in made.splitlines()
               if line.startswith("api key "))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with api_process([sys.executable, "-m", "uvicorn", "--factory", "framefarm.api.asgi:create",
                      "--host", "127.0.0.1", "--port", str(port), "--workers", str(count),
                      "--log-level", "warning"], base, data / "uvicorn.log", full):
        yield base, key


@contextmanager
def server(data: Path, env: dict[str, str], count: int) -> Iterator[tuple[str, str]]:
    if count > 1:
        with processes(data, env, count) as found:
            yield found
    else:
        with serving(data, env) as base:
            yield base, _admin_key(data)


def measure(data: Path, env: dict[str, str], seconds: float, connections: int,
            rounds: int, count: int = 1) -> dict[str, dict[str, float]]:
    with server(data, env, count) as (base, key):
        job = httpx.post(f"{base}/v1/renders", headers={"Authorization": f"Bearer {key}"},
                         json={"document": DOCUMENT}).json()["id"]
        get = _GET_SCRIPT.format(key=key)
        post = _POST_SCRIPT.format(key=key, body=json.dumps({"document": DOCUMENT}))
        cases = {"GET /healthz": (f"{base}/healthz", get),
                 "GET /v1/renders/{id}": (f"{base}/v1/renders/{job}", get),
                 "POST /v1/renders": (f"{base}/v1/renders", post)}
        found: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, (url, script) in cases.items():
                found[name].append(wrk(url, script, seconds, connections))
    return {name: {"rps": statistics.median(r["rps"] for r in runs),
                   "p99_ms": statistics.median(r["p99_ms"] for r in runs)}
            for name, runs in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--api-processes", type=int, default=1,
                        help="PostgreSQL's API processes (uvicorn --workers); SQLite: one")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    # Submissions are bounded per tenant; this measures the API, not that limit.
    env = {"FRAMEFARM_MAX_CONCURRENT_JOBS": "100000000"}
    results = {}
    for backend in ("sqlite", "postgresql"):
        if args.only and backend != args.only:
            continue
        data = Path(tempfile.mkdtemp(prefix="ff-bench-api-"))
        if backend == "sqlite":
            results[backend] = measure(data, env, args.seconds, args.connections, args.rounds)
            continue
        name = f"ff_bench_api_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
            results[backend] = measure(data, {**env, "FRAMEFARM_DATABASE_URL": url},
                                       args.seconds, args.connections, args.rounds,
                                       args.api_processes)
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"\n{args.connections} connections, {args.seconds:g} s per case, median of "
          f"{args.rounds} rounds; PostgreSQL with {args.api_processes} API process(es)")
    print(f"{'database':<11} {'endpoint':<22} {'req/s':>8} {'p99 ms':>8} {'vs /healthz':>12}")
    for backend, figures in results.items():
        floor = figures["GET /healthz"]["rps"]
        for name, f in figures.items():
            print(f"{backend:<11} {name:<22} {f['rps']:>8.0f} {f['p99_ms']:>8.1f} "
                  f"{f['rps'] / floor:>11.2f}x")
    print("targets: GET /v1/renders/{id} >= 0.70x /healthz with p99 < 50 ms; "
          "POST /v1/renders >= 300/s with p99 < 100 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
