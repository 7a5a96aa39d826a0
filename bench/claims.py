"""Claim throughput of the queue: N processes claiming and completing tasks at once.

    python bench/claims.py                       # PostgreSQL on 127.0.0.1, 8 processes
    python bench/claims.py --sqlite              # the same against SQLite (WAL)
    python bench/claims.py --processes 4 --tasks 4000
    python bench/claims.py --backlog 100000 --tenants 100   # and again behind a big queue

Prints claims per second (claim + complete, each its own transaction), the claim's
latency and the CPU time a claim + complete costs (the nodes', and PostgreSQL's: figures
that hold however busy the machine is), and checks that no task was claimed twice. With
``--backlog``, the same is measured twice in one run: with only the claimed tasks queued
(the baseline), then with that many tasks queued across ``--tenants`` tenants, with the
ratio: a claim should cost the same however long the queue is. On PostgreSQL it also
prints the plans of the statements inside a claim (the function ``framefarm_claim``,
migration 0009).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from framefarm.application import queue as queue_module
from framefarm.application.accounts import Accounts
from framefarm.application.queue import Queue, TaskPlan
from framefarm.db import migrate
from framefarm.db.database import Database, open_database
from framefarm.queue.states import TaskKind
from framefarm.repos import claims, nodes

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _worker(url: str, count: int, barrier: multiprocessing.synchronize.Barrier,
            out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    db = open_database(url)
    store = Queue(db)
    node = _register(db, f"bench-{uuid.uuid4().hex[:6]}")
    backend = _backend_pid(db)
    claimed: list[str] = []
    latencies: list[float] = []
    barrier.wait()
    cpu, server = time.process_time(), _cpu_seconds(backend)
    while len(claimed) < count:
        started = time.perf_counter()
        task = store.claim(node)
        latencies.append(time.perf_counter() - started)
        if task is None:
            break
        assert task.lease_token is not None
        store.complete(task.id, task.lease_token, None)
        claimed.append(task.id)
    cpu, server = time.process_time() - cpu, _cpu_seconds(backend) - server
    out.put((claimed, latencies, cpu, server))
    db.close()


def _backend_pid(db: Database) -> int | None:
    """The PostgreSQL backend serving this process (its pool holds the one connection a
    single-threaded node uses); None on SQLite."""
    if db.engine.dialect.name != "postgresql":
        return None
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _cpu_seconds(pid: int | None) -> float:
    """CPU-seconds (user + system) a local process has used so far (0 for None)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _register(db: Database, name: str) -> str:
    with db.tx() as conn:
        return nodes.register(conn, name, {}, now=db.now())[0]


def _fill(db: Database, tasks: int, tenants: int = 4, per_job: int = 10) -> None:
    accounts, queue = Accounts(db), Queue(db)
    ids = [accounts.create_tenant(f"tenant{i}-{uuid.uuid4().hex[:6]}",
                                  max_concurrent_jobs=10**6)[0] for i in range(tenants)]
    plan = [TaskPlan(TaskKind.RENDER, i, i * 30, (i + 1) * 30) for i in range(per_job)]
    for n in range(tasks // per_job):
        queue.submit(ids[n % tenants], kind="render", document={}, options={}, assets={},
                     frames_total=per_job * 30, fps=30, plan=plan, priority=n % 3)


def explain(db: Database) -> str:
    """PostgreSQL's plans of the statements inside one claim (``framefarm_claim``, as a node
    runs it), from auto_explain, with their times; the claim is rolled back."""
    node = _register(db, "explain")
    now = db.now()
    plans: list[str] = []

    def keep(notice: psycopg.errors.Diagnostic) -> None:
        plans.append(notice.message_primary or "")

    with db.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        driver.add_notice_handler(keep)
        try:
            for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                            "SET auto_explain.log_nested_statements = on",
                            "SET auto_explain.log_analyze = on",
                            "SET client_min_messages = log"):
                conn.exec_driver_sql(setting)
            claims.claim_in_database(conn, node, now, token="explain", expires=now,
                                     log=queue_module.CLAIMED)
        finally:
            conn.rollback()
            driver.remove_notice_handler(keep)
        conn.invalidate()  # its settings stay with it: no other use of this connection
    # The function's own statement comes last: the ones before it are the claim's.
    return "\n".join(plans[:-1])


def run(url: str, processes: int, count: int) -> dict[str, float]:
    """``processes`` nodes claim and complete ``count`` tasks in all."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, count // processes, barrier, results))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    outputs = [results.get(timeout=900) for _ in procs]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    claimed = [task for ids, *_ in outputs for task in ids]
    latencies = sorted(x for _, lat, *_ in outputs for x in lat)
    per_claim = 1000 / max(len(claimed), 1)
    return {"claims": len(claimed), "twice": len(claimed) - len(set(claimed)),
            "rate": len(claimed) / elapsed,
            "median_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "client_cpu_ms": sum(o[2] for o in outputs) * per_claim,
            "server_cpu_ms": sum(o[3] for o in outputs) * per_claim}


def _database(sqlite: bool, scratch: str, label: str) -> str:
    if sqlite:
        return f"sqlite:///{Path(scratch) / f'{label}.db'}"
    name = f"ff_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=3000, help="tasks claimed per case")
    parser.add_argument("--backlog", type=int, default=0,
                        help="also measure with this many tasks queued")
    parser.add_argument("--tenants", type=int, default=100,
                        help="tenants the backlog is spread across")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="ff-claims-")
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    cases = [("only the claimed tasks queued", args.tasks, 4)]
    if args.backlog:
        cases.append((f"{args.backlog} queued across {args.tenants} tenants",
                      max(args.backlog, args.tasks), args.tenants))
    figures = []
    for label, queued, tenants in cases:
        url = _database(args.sqlite, scratch, f"c{len(figures)}")
        try:
            migrate.upgrade(url)
            db = open_database(url)
            _fill(db, queued, tenants=tenants, per_job=10 if queued < 10_000 else 100)
            if not args.sqlite:
                print(f"the claim's plans (PostgreSQL, auto_explain, {label}):")
                print(explain(db))
            db.close()
            found = run(url, args.processes, args.tasks)
            figures.append((label, found))
        finally:
            _drop(url)
    print(f"\n{backend}, {args.processes} processes, claim + complete of {args.tasks} tasks:")
    print(f"{'case':<40} {'claims/s':>9} {'median ms':>10} {'p99 ms':>8} {'twice':>6} "
          f"{'CPU ms/claim: nodes':>20} {'database':>9}")
    for label, f in figures:
        print(f"{label:<40} {f['rate']:>9.0f} {f['median_ms']:>10.1f} {f['p99_ms']:>8.1f} "
              f"{f['twice']:>6.0f} {f['client_cpu_ms']:>20.2f} {f['server_cpu_ms']:>9.2f}")
    print("(CPU per claim + complete: the node processes', and their PostgreSQL backends'; "
          "on SQLite the database runs inside the nodes)")
    if len(figures) == 2:
        print(f"behind the backlog: {figures[1][1]['rate'] / figures[0][1]['rate']:.2f}x the "
              "baseline's claims/s")
    return 0 if all(f["twice"] == 0 and f["claims"] > 0 for _, f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
