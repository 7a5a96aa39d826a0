"""Load: many tiny renders from several tenants at once, through `framefarm serve`.

    python bench/load.py                     # 1000 jobs (1 s, 360p), 4 tenants, 2 nodes
    python bench/load.py --jobs 200          # a shorter run

Checks and prints: every job succeeded; none was rendered twice (each job's assemble task
completed exactly once, from its logs); fairness (how the tenants' completions interleave:
the share of each tenant among the first quarter of completions); the API's latency for
GET /v1/renders/{id} while the farm works (p50/p99); and the API process's memory (RSS)
at the start, middle and end of the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import _auth, _pct, serving, tiny_doc


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _api_pid(port: int) -> int:
    """The `framefarm serve` process listening on ``port`` (its nodes are its children)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmd and str(port).encode() in cmd:
            return int(proc.name)
    raise RuntimeError("serve process not found")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()

    with serving(workers=args.nodes) as (base, admin):
        pid = _api_pid(int(base.rsplit(":", 1)[1]))
        keys = [httpx.post(f"{base}/v1/admin/tenants", headers=_auth(admin),
                           json={"name": f"tenant{i}", "max_concurrent_jobs": 100000}
                           ).json()["api_key"] for i in range(args.tenants)]
        memory = [("start", _rss_mib(pid))]
        jobs: dict[str, int] = {}
        lock = threading.Lock()

        def submit(tenant: int) -> None:
            with httpx.Client(base_url=base, headers=_auth(keys[tenant]), timeout=120) as c:
                for i in range(args.jobs // args.tenants):
                    job = c.post("/v1/renders", json={"document": tiny_doc(i)}).json()["id"]
                    with lock:
                        jobs[job] = tenant

        started = time.perf_counter()
        submitters = [threading.Thread(target=submit, args=(t,)) for t in range(args.tenants)]
        for thread in submitters:
            thread.start()
        for thread in submitters:
            thread.join()
        submitted = time.perf_counter() - started
        print(f"submitted {len(jobs)} jobs from {args.tenants} tenants in {submitted:.1f} s",
              flush=True)

        latencies: list[float] = []
        finished: dict[str, str] = {}
        order: list[int] = []
        ids = list(jobs)
        with httpx.Client(base_url=base, timeout=120) as client:
            while len(finished) < len(ids):
                for job in ids:
                    if job in finished:
                        continue
                    t0 = time.perf_counter()
                    view = client.get(f"/v1/renders/{job}",
                                      headers=_auth(keys[jobs[job]])).json()
                    latencies.append(time.perf_counter() - t0)
                    if view["state"] in ("succeeded", "failed", "cancelled"):
                        finished[job] = view["state"]
                        order.append(jobs[job])
                        if len(finished) == len(ids) // 2:
                            memory.append(("middle", _rss_mib(pid)))
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            memory.append(("end", _rss_mib(pid)))
            assembled = Counter()
            for job in ids:
                logs = client.get(f"/v1/renders/{job}/logs",
                                  headers=_auth(keys[jobs[job]])).json()
                assembled[job] = sum(1 for entry in logs
                                     if entry["message"].startswith("assemble ")
                                     and entry["message"].endswith(" done"))

    states = Counter(finished.values())
    twice = [job for job, n in assembled.items() if n != 1]
    quarter = Counter(order[: len(order) // 4])
    print(f"{len(ids)} jobs in {elapsed:.0f} s ({len(ids) / elapsed:.2f} jobs/s): {dict(states)}")
    print(f"assembled exactly once: {len(ids) - len(twice)}; otherwise: {len(twice)}")
    print("first quarter of completions by tenant: " +
          ", ".join(f"tenant{t} {quarter[t]}" for t in range(args.tenants)))
    print(f"GET /v1/renders/{{id}} during the run: p50 {_pct(latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {_pct(latencies, 0.99) * 1000:.1f} ms, median "
          f"{statistics.median(latencies) * 1000:.1f} ms (n={len(latencies)})")
    print("API process RSS: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in memory))
    return 0 if states == Counter({"succeeded": len(ids)}) and not twice else 1


if __name__ == "__main__":
    raise SystemExit(main())
