"""Schemathesis over the whole API, bounded: every operation of ``/openapi.json`` with every
check (no 5xx, no undocumented status or content type, answers matching their schema,
schema-invalid input refused, auth not ignored, 405 with ``Allow``...), against the
in-process app under uvicorn on a loopback port, with a tenant key, an admin key (for
``/v1/admin``) and a node credential (for ``/internal``).

A few examples per operation and a fixed seed keep it to well under a minute.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from support.farm import Farm, clear_framefarm_env
from support.polling import wait_for
from support.server import free_port

EXAMPLES = 5
SEED = 20240601

# Operations whose bodies are checked beyond what a JSON schema can say (a video document,
# template data, a webhook's reachable public URL, "one of document/project_id/template_id",
# "only one of frame/at/scene", base64 preview frames): a schema-valid body may rightly be
# refused 422 there, so positive_data_acceptance also accepts 422 for them. Every other
# check stays on for them, and every check for every other operation.
SEMANTIC_422 = (
    "POST /v1/renders",
    "POST /v1/snapshots",
    "POST /v1/webhooks",
    "POST /v1/templates",
    "POST /v1/templates/{template_id}/renders",
    "POST /v1/templates/{template_id}/previews",
    "POST /v1/templates/{template_id}/batches",
    "PUT /v1/projects/{project_id}/document",
    "POST /v1/projects/{project_id}/archive",  # bytes that are not a ZIP or a tar
    "POST /internal/tasks/{task_id}/heartbeat",
    # Usage ranges: "to not before from, at most 366 days"; credits: "amount not 0".
    "GET /v1/usage",
    "GET /v1/admin/usage",
    "POST /v1/admin/tenants/{tenant_id}/credits",
)
# Operations left out of the run (none: POST /v1/admin/tenants was, until its body got an
# upper bound on max_concurrent_jobs and strict types, both found by this run).
EXCLUDED: tuple[str, ...] = ()
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]


class Served:
    def __init__(self, farm: Farm) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(farm.app, host="127.0.0.1", port=self.port, lifespan="off",
                                log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, interval=0.02, what="uvicorn")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Farm, Served]]:
    clear_framefarm_env(monkeypatch)
    farm = Farm.open("sqlite", tmp_path / "farm", public_url="http://testserver",
                     lease_seconds=10.0)
    served = Served(farm)
    try:
        yield farm, served
    finally:
        served.stop()
        farm.close()


def config(path: Path, api_key: str, node: str) -> Path:
    lines = [f'[auth.openapi.ApiKey]\nbearer = "{api_key}"',
             f'[auth.openapi.NodeCredential]\nbearer = "{node}"']
    for name in SEMANTIC_422:
        lines.append(f'[[operations]]\ninclude-name = "{name}"\n'
                     f'checks.positive_data_acceptance.expected-statuses = {ACCEPTED!r}')
    path.write_text("\n\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return path


def schemathesis(url: str, settings: Path, *selection: str) -> tuple[int, str]:
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(settings), "run",
            f"{url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
            "--seed", str(SEED), "--max-response-time", "30", "--no-color", *selection]
    for name in EXCLUDED:
        argv += ["--exclude-name", name]
    # In the test's folder: schemathesis keeps a cache (.schemathesis/) where it runs.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=110,
                          stdin=subprocess.DEVNULL, check=False, cwd=settings.parent)
    return done.returncode, done.stdout + done.stderr


def figures(output: str) -> dict[str, int]:
    found = {"operations": 0, "generated": 0, "failures": 0}
    if match := re.search(r"Tested:\s+(\d+)", output):
        found["operations"] = int(match.group(1))
    if match := re.search(r"(\d+) generated", output):
        found["generated"] = int(match.group(1))
    if match := re.search(r"found (\d+) unique failures?", output):
        found["failures"] = int(match.group(1))
    return found


def test_schemathesis_finds_nothing(served: tuple[Farm, Served], tmp_path: Path) -> None:
    farm, server = served
    tenant = farm.tenant("acme")
    registered = farm.svc.farm.register(farm.svc.ctx.enrolment_token, "fuzz-node", {})
    node = f"{registered.node_id}:{registered.secret}"
    runs = {
        "tenant": schemathesis(server.url, config(tmp_path / "tenant.toml", tenant, node),
                               "--exclude-path-regex", "^/v1/admin"),
        "admin": schemathesis(server.url, config(tmp_path / "admin.toml", farm.admin_key,
                                                 node),
                              "--include-path-regex", "^/v1/admin"),
    }
    for name, (code, output) in runs.items():
        found = figures(output)
        print(f"schemathesis {name} run: {found}")
        assert code == 0 and found["failures"] == 0, f"{name} run: {found}\n{output[-8000:]}"
        assert found["operations"] > 0 and found["generated"] > 0, output[-3000:]
        assert "Server error" not in output and "Undocumented" not in output, output[-8000:]
