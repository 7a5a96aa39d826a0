"""Claim throughput of the queue: N processes claiming and completing tasks at once.

    python bench/claims.py                       # PostgreSQL on 127.0.0.1, 8 processes
    python bench/claims.py --sqlite              # the same against SQLite (WAL)
    python bench/claims.py --processes 4 --tasks 4000

Prints claims per second (claim + complete, each its own transaction), checks that every
task was claimed exactly once, and prints PostgreSQL's plan for the claim query.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from framefarm.application.accounts import Accounts
from framefarm.application.queue import Queue, TaskPlan
from framefarm.db import migrate
from framefarm.db import schema as t
from framefarm.db.database import Database, open_database
from framefarm.queue.states import TaskKind
from framefarm.repos import jobs, nodes

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _worker(url: str, barrier: multiprocessing.synchronize.Barrier,
            out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    db = open_database(url)
    store = Queue(db)
    node = _register(db, f"bench-{uuid.uuid4().hex[:6]}")
    claimed: list[str] = []
    latencies: list[float] = []
    barrier.wait()
    while True:
        started = time.perf_counter()
        task = store.claim(node)
        latencies.append(time.perf_counter() - started)
        if task is None:
            break
        assert task.lease_token is not None
        store.complete(task.id, task.lease_token, None)
        claimed.append(task.id)
    out.put((claimed, latencies))
    db.close()


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
    node = _register(db, "explain")
    query = jobs.claim_candidates(node, db.now()).with_for_update(skip_locked=True,
                                                                  of=t.tasks)
    compiled = query.compile(dialect=postgresql.dialect(),
                             compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(f"EXPLAIN ANALYZE {compiled}")).all()
    return "\n".join(row[0] for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="ff-claims-")
    if args.sqlite:
        url = f"sqlite:///{Path(scratch) / 'queue.db'}"
    else:
        name = f"ff_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate.upgrade(url)
        store = open_database(url)
        _fill(store, args.tasks)
        if not args.sqlite:
            print("claim query plan (PostgreSQL, EXPLAIN ANALYZE, "
                  f"{args.tasks} queued tasks):")
            print(explain(store))
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(args.processes + 1)
        results = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(url, barrier, results))
                 for _ in range(args.processes)]
        for proc in procs:
            proc.start()
        barrier.wait()
        started = time.perf_counter()
        outputs = [results.get(timeout=600) for _ in procs]
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.join()
        claimed = [task for ids, _ in outputs for task in ids]
        latencies = sorted(x for _, lat in outputs for x in lat)
        unique = len(set(claimed))
        backend = "SQLite" if args.sqlite else "PostgreSQL"
        print(f"\n{backend}: {args.processes} processes claimed and completed {len(claimed)} "
              f"tasks in {elapsed:.2f} s = {len(claimed) / elapsed:.0f} claims/s")
        print(f"claim latency: median {statistics.median(latencies) * 1000:.1f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")
        print(f"claimed twice: {len(claimed) - unique}; never claimed: "
              f"{args.tasks - unique}")
        store.close()
        return 0 if unique == len(claimed) == args.tasks else 1
    finally:
        if not args.sqlite:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
