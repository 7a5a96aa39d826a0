"""``framefarm serve``: the API with its database and storage, plus local render nodes that
talk to it over loopback exactly like remote ones."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console

from framefarm import application, engine, logs, studio
from framefarm.api.app import create_app
from framefarm.db import migrate
from framefarm.settings import Settings


def start_nodes(
    server: str, token: str, count: int, workdir: Path
) -> list[subprocess.Popen[bytes]]:
    """Local render nodes: the ``framefarm worker`` command, one process each. Several
    nodes share the machine's cores: each gets an equal thread budget, as in-process
    ``--chunks`` does, rather than every encoder assuming it has the whole machine."""
    threads = ["--threads", str(max(1, engine.cores() // count))] if count > 1 else []
    nodes = []
    for i in range(count):
        folder = workdir / f"node{i}"
        folder.mkdir(parents=True, exist_ok=True)
        nodes.append(subprocess.Popen(
            [sys.executable, "-m", "framefarm", "worker", "--server", server, "--token", token,
             "--name", f"local-{i}", "--workdir", str(folder),
             # Local nodes ask often: on loopback a claim is cheap and snapshots start sooner.
             "--poll-seconds", "0.1", "--exit-with-parent", *threads],
            stdout=(folder / "node.log").open("ab"), stderr=subprocess.STDOUT))
    return nodes


def _wait_healthy(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def serve(settings: Settings, *, host: str, port: int, workers: int | None,
          console: Console) -> None:
    logs.setup(settings.log_json)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.db_url)
    app = application.build(settings)
    if app.accounts.count_tenants() == 0:
        tenant_id, key = app.accounts.create_tenant("admin", admin=True)
        console.print(f"[bold]created the admin tenant {tenant_id}; its API key (shown once):"
                      f"[/]\n{key}")
        studio.seed_example(app, tenant_id)  # a template to fill and render at once
    api = create_app(settings, app)
    # Live event streams never end by themselves: a shutdown waits this long for them,
    # then closes them (their clients reconnect to another process or after the restart).
    server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=5))
    count = engine.cores() if workers is None else workers
    local = f"http://127.0.0.1:{port}"
    nodes: list[subprocess.Popen[bytes]] = []

    def launch() -> None:
        if count and _wait_healthy(local):
            nodes.extend(start_nodes(local, app.ctx.enrolment_token, count,
                                     settings.data_dir.resolve() / "nodes"))
            console.print(f"started {count} local render node(s)")

    threading.Thread(target=launch, daemon=True).start()
    console.print(f"framefarm serving on http://{host}:{port} (docs at /docs), data in "
                  f"{settings.data_dir.resolve()}")
    console.print(f"studio: open http://{host}:{port}/ and sign in with an API key")
    try:
        server.run()
    finally:
        # The API is gone, so there is no point in the nodes draining: a second SIGTERM
        # stops each at once (its task is requeued by lease when the server is back).
        for node in nodes:
            node.terminate()
        time.sleep(0.2)
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                node.terminate()
        for node in nodes:
            try:
                node.wait(10)
            except subprocess.TimeoutExpired:
                node.kill()
        app.close()
