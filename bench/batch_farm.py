"""A spreadsheet of rows through a real `framefarm serve`: one CSV upload, a video per
row, billed and with the frames every row shares rendered once.

    python bench/batch_farm.py                  # 1,000 rows, 2 local nodes
    python bench/batch_farm.py --rows 100       # a quicker look

The template is small on purpose (320x180, 4 s at 24 fps: a 1.5 s intro and a 1.5 s
outro the same for everyone, 1 s with the row's name): the figure is the service's —
creating the batch, claiming, sharing, assembling, billing — more than the encoder's.
Printed: seconds to create the batch (every row checked), to finish it, rows per second,
the render tasks the nodes ran against what rendering each row alone would take, and
the tenant's credits: charged, and the balance against the sum of its ledger.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import _auth, serving

TEMPLATE: dict[str, Any] = {
    "output": {"width": 320, "height": 180, "fps": 24, "quality": "medium"},
    "variables": {"name": {"type": "text", "required": True}},
    "scenes": [
        {"duration": 1.5, "background": "#203040", "layers": [
            {"type": "text", "text": "Your year with us", "position": "center",
             "keyframes": {"opacity": [{"time": 0, "value": 0}, {"time": 1, "value": 1}]}}]},
        {"duration": 1, "background": "#402020", "layers": [
            {"type": "text", "text": "Thank you, {{name}}", "position": "center"}]},
        {"duration": 1.5, "background": "#204020", "layers": [
            {"type": "text", "text": "See you next year", "position": "center"}]},
    ],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["name"])
    writer.writerows([f"Customer {i:05d}"] for i in range(1, args.rows + 1))

    with serving(args.nodes) as (base, admin_key), \
            httpx.Client(base_url=base, timeout=600) as c:
        admin = _auth(admin_key)
        made = c.post("/v1/admin/tenants", headers=admin, json={"name": "shop"}).json()
        key, tenant = made["api_key"], made["id"]
        c.put(f"/v1/admin/tenants/{tenant}/plan", headers=admin,
              json={"credits_per_second": 1}).raise_for_status()
        credits = args.rows * 4 + 100
        c.post(f"/v1/admin/tenants/{tenant}/credits", headers=admin,
               json={"amount": credits}).raise_for_status()
        auth = _auth(key)
        template = c.post("/v1/templates", headers=auth,
                          json={"name": "thanks", "document": TEMPLATE}).json()["id"]
        started = time.perf_counter()
        response = c.post(f"/v1/templates/{template}/batches", content=table.getvalue(),
                          headers={**auth, "Content-Type": "text/csv"})
        response.raise_for_status()
        created = time.perf_counter() - started
        batch = response.json()
        while not batch["finished_at"]:
            time.sleep(1)
            batch = c.get(f"/v1/batches/{batch['id']}", headers=auth).json()
        finished = time.perf_counter() - started
        tasks = sum(int(n["tasks_done"]) for n in c.get("/v1/admin/nodes", headers=admin).json())
        frames = sum(float(line.split()[-1]) for line in c.get("/metrics").text.splitlines()
                     if line.startswith("framefarm_frames_rendered_total"))
        usage = c.get("/v1/usage", headers=auth).json()
        ledger: list[dict[str, Any]] = []
        while True:  # newest first, a page at a time
            page = c.get(f"/v1/admin/tenants/{tenant}/ledger", headers=admin,
                         params={"limit": 1000, **({"before": ledger[-1]["id"]}
                                                   if ledger else {})}).json()
            ledger += page
            if len(page) < 1000:
                break

    counts = batch["counts"]
    alone = args.rows * 96  # every row's 4 s at 24 fps rendered on its own
    print(f"{args.rows} rows, {args.nodes} local nodes, 320x180, 4 s each:")
    print(f"  batch created (every row checked) in {created:.1f} s")
    print(f"  finished in {finished:.1f} s: {counts['succeeded']} succeeded, "
          f"{counts['failed']} failed ({args.rows / finished:.1f} rows/s)")
    print(f"  frames the nodes rendered: {frames:.0f} (each row alone: {alone}, "
          f"{alone / max(frames, 1):.2f}x more), in {tasks} tasks")
    print(f"  credits: granted {credits}, balance {usage['balance']}, ledger sum "
          f"{sum(e['amount'] for e in ledger)} over {len(ledger)} rows")
    return 0 if counts["succeeded"] == args.rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
