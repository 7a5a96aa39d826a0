"""Memory of the API process (`framefarm serve`) per job: does it leak or only warm up?

    python bench/memory.py                          # 5 batches of 200 tiny jobs, 2 nodes (~4 min)
    python bench/memory.py --batches 4 --jobs 100   # a shorter run (~2 min on 2 cores)
    python bench/memory.py --probe                  # also: what the RSS is made of

Starts `framefarm serve` with local nodes, submits batches of tiny renders (1 s, 360p)
from several tenants, waits until every job of a batch has finished, then records the RSS
of the serve process alone (its nodes are child processes and not counted). Prints the
RSS series and the growth per job between the end of the first batch (warm-up) and the
end of the last one. Timings on a shared machine are noisy; this measures memory only.
What runs is submissions, job reads and the node protocol; no live-event streams.

--probe (Linux, glibc): serve also loads a small probe (a ``sitecustomize`` module put on
its PYTHONPATH) that answers SIGUSR1 after each batch, following a full garbage
collection, with: live Python objects (``gc``), blocks held by Python's allocator
(``sys.getallocatedblocks``), SQLite's heap (``sqlite3_memory_used``) and glibc malloc's
bytes in use and free-but-kept (``mallinfo2``); at the end, the RSS before and after
``malloc_trim(0)``. Objects that pile up per job show in the first three; memory that was
freed but that malloc keeps (fragmentation across its per-thread arenas) in the last one
and in what ``malloc_trim`` gives back.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import _api_pid

from service import _auth, serving, tiny_doc

_FINISHED = ("succeeded", "failed", "cancelled")

# Loaded by every process started with the probe's folder on PYTHONPATH; acts only in serve.
_PROBE = '''
import os, sys
if "serve" in sys.argv and os.environ.get("FF_MEMORY_PROBE"):
    import ctypes, gc, json, signal

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                    "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    def _rss():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    def _report(signum, frame):
        gc.collect()
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
        import _sqlite3
        sqlite = ctypes.CDLL(_sqlite3.__file__)
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        out = {"objects": len(gc.get_objects()), "blocks": sys.getallocatedblocks(),
               "sqlite": sqlite.sqlite3_memory_used(), "malloc_used": info.uordblks,
               "malloc_free": info.fordblks, "malloc_mmap": info.hblkhd}
        if signum == signal.SIGUSR2:
            out["rss_before_trim"] = _rss()
            libc.malloc_trim(0)
            out["rss_after_trim"] = _rss()
        path = os.environ["FF_MEMORY_PROBE"]
        with open(path + ".tmp", "w") as f:
            json.dump(out, f)
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR1, _report)
    signal.signal(signal.SIGUSR2, _report)
'''


def _ask_probe(pid: int, answer: Path, sig: signal.Signals = signal.SIGUSR1) -> dict[str, int]:
    answer.unlink(missing_ok=True)
    os.kill(pid, sig)
    deadline = time.monotonic() + 60
    while not answer.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the probe in serve did not answer")
        time.sleep(0.1)
    result: dict[str, int] = json.loads(answer.read_text())
    return result


def _probe_line(p: dict[str, int]) -> str:
    mib = 1024**2
    return (f"    objects {p['objects']}, Python blocks {p['blocks']}, SQLite "
            f"{p['sqlite'] / mib:.1f} MiB, malloc in use {p['malloc_used'] / mib:.1f} MiB, "
            f"free but kept {p['malloc_free'] / mib:.1f} MiB, mmapped "
            f"{p['malloc_mmap'] / mib:.1f} MiB")


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
    parser.add_argument("--probe", action="store_true",
                        help="also report what the RSS is made of (see above)")
    args = parser.parse_args()
    if args.batches < 2:
        parser.error("--batches must be at least 2 (the first one is warm-up)")

    series: list[tuple[int, dict[str, int]]] = []
    bad = 0
    started = time.monotonic()
    env: dict[str, str] = {}
    probe_dir = Path(tempfile.mkdtemp(prefix="ff-bench-memory-"))
    answer = probe_dir / "answer.json"
    if args.probe:
        (probe_dir / "sitecustomize.py").write_text(_PROBE)
        env = {"FF_MEMORY_PROBE": str(answer), "PYTHONPATH": os.pathsep.join(
            p for p in (str(probe_dir), os.environ.get("PYTHONPATH")) if p)}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, probe_dir, ignore_errors=True)
        base, admin = stack.enter_context(serving(workers=args.nodes, env=env))
        pid = _api_pid(int(base.rsplit(":", 1)[1]))
        keys = [httpx.post(f"{base}/v1/admin/tenants", headers=_auth(admin),
                           json={"name": f"tenant{i}", "max_concurrent_jobs": 100000}
                           ).json()["api_key"] for i in range(args.tenants)]
        series.append((0, _memory_kib(pid)))
        print(f"start: RSS {series[0][1]['VmRSS'] / 1024:.1f} MiB", flush=True)
        if args.probe:
            print(_probe_line(_ask_probe(pid, answer)), flush=True)
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
            if args.probe:
                print(_probe_line(_ask_probe(pid, answer)), flush=True)
        if args.probe:
            trim = _ask_probe(pid, answer, signal.SIGUSR2)
            print(f"malloc_trim(0) at the end: RSS {trim['rss_before_trim'] / 1024:.1f} -> "
                  f"{trim['rss_after_trim'] / 1024:.1f} MiB", flush=True)

    (first_jobs, first), (last_jobs, last) = series[1], series[-1]
    per_job = (last["VmRSS"] - first["VmRSS"]) / (last_jobs - first_jobs)
    steps = [(b["VmRSS"] - a["VmRSS"]) / 1024 for (_, a), (_, b) in itertools.pairwise(series[1:])]
    print(f"RSS after warm-up (batch 1 -> {args.batches}): {first['VmRSS'] / 1024:.1f} -> "
          f"{last['VmRSS'] / 1024:.1f} MiB over {last_jobs - first_jobs} jobs = "
          f"{per_job:+.2f} KiB/job; per batch: " + ", ".join(f"{s:+.1f}" for s in steps)
          + " MiB")
    if bad:
        print(f"{bad} job(s) did not succeed")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
