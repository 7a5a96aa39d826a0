"""Memory of the API process (`framefarm serve`) per job: does it leak or only warm up?

    python bench/memory.py                          # 5 batches of 200 tiny jobs, 2 nodes
    python bench/memory.py --batches 4 --jobs 100   # a shorter run (~3 min on 2 cores)

Starts `framefarm serve` with local nodes, submits batches of tiny renders (1 s, 360p)
from several tenants, waits until every job of a batch has finished, then records the RSS
of the serve process alone (its nodes are child processes and not counted). Prints the
RSS series and the growth per job between the end of the first batch (warm-up) and the
end of the last one. Timings on a shared machine are noisy; this measures memory only.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import _api_pid
from service import _auth, serving, tiny_doc

_FINISHED = ("succeeded", "failed", "cancelled")


def _memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid``, in KiB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _submit(base: str, keys: list[str], count: int, start: int) -> list[tuple[str, int]]:
    """``count`` jobs spread over the tenants, one client thread per tenant."""
    jobs: list[tuple[str, int]] = []
    lock = threading.Lock()

    def run(tenant: int) -> None:
        mine = []
        with httpx.Client(base_url=base, headers=_auth(keys[tenant]), timeout=120) as client:
            for i in range(tenant, count, len(keys)):
                response = client.post("/v1/renders", json={"document": tiny_doc(start + i)})
                response.raise_for_status()
                mine.append((response.json()["id"], tenant))
        with lock:
            jobs.extend(mine)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return jobs


def _wait(base: str, admin: str, keys: list[str], jobs: list[tuple[str, int]],
          timeout: float) -> dict[str, int]:
    """Wait until the queue has no unfinished task, then read every job's final state."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=120) as client:
        while time.monotonic() < deadline:
            tasks = client.get("/v1/admin/queue", headers=_auth(admin)).json()["tasks"]
            if not any(tasks.get(s, 0) for s in ("waiting", "queued", "running")):
                break
            time.sleep(1.0)
        states: dict[str, int] = {}
        for job, tenant in jobs:
            state = client.get(f"/v1/renders/{job}", headers=_auth(keys[tenant])).json()["state"]
            states[state] = states.get(state, 0) + 1
    if sum(states.get(s, 0) for s in _FINISHED) < len(jobs):
        raise RuntimeError(f"batch not finished after {timeout:.0f} s: {states}")
    return states


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per batch")
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per batch")
    args = parser.parse_args()
    if args.batches < 2:
        parser.error("--batches must be at least 2 (the first one is warm-up)")

    series: list[tuple[int, dict[str, int]]] = []
    bad = 0
    started = time.monotonic()
    with serving(workers=args.nodes) as (base, admin):
        pid = _api_pid(int(base.rsplit(":", 1)[1]))
        keys = [httpx.post(f"{base}/v1/admin/tenants", headers=_auth(admin),
                           json={"name": f"tenant{i}", "max_concurrent_jobs": 100000}
                           ).json()["api_key"] for i in range(args.tenants)]
        series.append((0, _memory_kib(pid)))
        print(f"start: RSS {series[0][1]['VmRSS'] / 1024:.1f} MiB", flush=True)
        for batch in range(args.batches):
            jobs = _submit(base, keys, args.jobs, batch * args.jobs)
            states = _wait(base, admin, keys, jobs, args.timeout)
            bad += len(jobs) - states.get("succeeded", 0)
            done = (batch + 1) * args.jobs
            series.append((done, _memory_kib(pid)))
            mem = series[-1][1]
            print(f"after {done:5d} jobs: RSS {mem['VmRSS'] / 1024:6.1f} MiB, peak "
                  f"{mem['VmHWM'] / 1024:6.1f} MiB  ({time.monotonic() - started:.0f} s)"
                  + (f"  states {states}" if states.get("succeeded", 0) != len(jobs) else ""),
                  flush=True)

    (first_jobs, first), (last_jobs, last) = series[1], series[-1]
    per_job = (last["VmRSS"] - first["VmRSS"]) / (last_jobs - first_jobs)
    steps = [(b["VmRSS"] - a["VmRSS"]) / 1024 for (_, a), (_, b) in zip(series[1:], series[2:])]
    print(f"RSS after warm-up (batch 1 -> {args.batches}): {first['VmRSS'] / 1024:.1f} -> "
          f"{last['VmRSS'] / 1024:.1f} MiB over {last_jobs - first_jobs} jobs = "
          f"{per_job:+.2f} KiB/job; per batch: " + ", ".join(f"{s:+.1f}" for s in steps)
          + " MiB")
    if bad:
        print(f"{bad} job(s) did not succeed")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
