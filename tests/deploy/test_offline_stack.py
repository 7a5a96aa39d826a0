"""The compose stack as scripts/test-deploy runs it: docker-compose.yml with
docker-compose.offline.yml on top, checked against the CLI and the settings without a
container engine; and the helpers that script uses (this machine's registries, the
rendered file without published ports on host networking).

The merge below is Compose's for these files: mappings merged key by key, ``command`` and
``entrypoint`` replaced, ``${NAME:-default}`` filled with its default.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from test_deploy_files import (
    COMPOSE,
    OFFLINE,
    ROOT,
    SERVER_ONLY,
    Invocation,
    _health_args,
    compose_env,
    image_env,
    load_all,
    parse,
)

REPLACED = {"command", "entrypoint"}
# Registry hosts never named in the project's files: builds read this machine's own.
REGISTRY_HOSTS = ("registry.npmjs.org", "pypi.org", "pythonhosted.org", "deb.debian.org",
                  "security.debian.org")


def merge(base: Any, over: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(over, dict) and key not in REPLACED:
        out = dict(base)
        for name, value in over.items():
            out[name] = merge(base[name], value, name) if name in base else value
        return out
    return over


def interpolate(value: Any) -> Any:
    if isinstance(value, str):
        filled = re.sub(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}",
                        lambda m: m[2] if m[2] is not None else "", value)
        return filled.replace("$$", "$")
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def offline() -> dict[str, Any]:
    [base] = load_all(COMPOSE)
    [over] = load_all(OFFLINE)
    merged: dict[str, Any] = interpolate(merge(base, over))
    return merged


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = offline()["services"]
    return found


def ours() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if s.get("image") == "framefarm:local"}


def invocation(name: str) -> Invocation:
    service = ours()[name]
    return Invocation(f"offline {name}", service["command"],
                      {**image_env(), **compose_env(service)})


def script(name: str) -> ModuleType:
    path = ROOT / "scripts" / "deploy" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- the merged stack --------------------------------------------------------------------------

def test_every_service_is_replaced_or_adapted_and_on_host_networking() -> None:
    [base] = load_all(COMPOSE)
    found = services()
    assert set(found) == set(base["services"])
    for name, service in found.items():
        assert service.get("network_mode") == "host", name
    # No image that only a registry has is left.
    for name, service in found.items():
        assert service["image"].endswith(":local"), (name, service["image"])
        assert "build" in service, name


def test_the_offline_commands_parse_and_connect_on_loopback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    path, serve = parse(invocation("api"), monkeypatch)
    assert path == "serve" and serve["host"] == "127.0.0.1" and serve["workers"] == 0
    api = f"http://127.0.0.1:{serve['port']}"
    path, worker = parse(invocation("node"), monkeypatch)
    assert path == "worker" and worker["server"] == api
    assert parse(invocation("migrate"), monkeypatch)[0] == "migrate"

    env = compose_env(ours()["api"])
    assert env["FRAMEFARM_PUBLIC_URL"] == api
    database = urlsplit(env["FRAMEFARM_DATABASE_URL"])
    postgres = compose_env(services()["postgres"])
    assert (database.hostname, str(database.port)) == ("127.0.0.1", postgres["PGPORT"])
    assert postgres["PG_LISTEN"] == "127.0.0.1"
    assert compose_env(ours()["migrate"])["FRAMEFARM_DATABASE_URL"] == \
        env["FRAMEFARM_DATABASE_URL"]
    s3 = urlsplit(env["FRAMEFARM_S3_ENDPOINT_URL"])
    store = services()["minio"]["command"]
    assert s3.hostname == "127.0.0.1"
    assert store[store.index("--address") + 1] == "127.0.0.1"
    assert str(s3.port) == store[store.index("--port") + 1] == \
        compose_env(services()["minio"])["S3_PORT"] == \
        compose_env(services()["minio-bucket"])["S3_PORT"]
    bucket = store[store.index("--configure-bucket") + 1]
    assert env["FRAMEFARM_S3_BUCKET"] == bucket
    # The API's own health check asks the port it serves on.
    assert env["API_PORT"] == str(serve["port"])
    assert "API_PORT" in " ".join(ours()["api"]["healthcheck"]["test"])
    # The node's health check reads the folder the node writes.
    args = _health_args(ours()["node"]["healthcheck"]["test"][1:])
    assert args.workdir == worker["workdir"]


def test_offline_nodes_still_hold_no_credentials() -> None:
    env = compose_env(ours()["node"])
    assert "FRAMEFARM_ENROLMENT_TOKEN" in env
    assert not SERVER_ONLY & set(env)


def test_the_substitution_is_documented_where_it_is_made() -> None:
    text = OFFLINE.read_text(encoding="utf-8")
    assert "substitution" in text and "MinIO" in text
    [base] = load_all(COMPOSE)
    assert "minio" in base["services"]["minio"]["image"], "users keep MinIO"


def test_builds_fetch_from_this_machines_registries_and_name_none() -> None:
    over = yaml.safe_load(OFFLINE.read_text(encoding="utf-8"))
    for name, service in over["services"].items():
        build = service["build"]
        assert build["network"] == "host", name
        assert "BASE" in build["args"], name
    files = [ROOT / "Dockerfile", COMPOSE, OFFLINE, ROOT / "scripts" / "test-deploy",
             *ROOT.joinpath("deploy").rglob("*"), *ROOT.joinpath("scripts", "deploy").rglob("*"),
             ROOT / "docs" / "deployment.md"]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            text = path.read_text(encoding="utf-8")
            for host in REGISTRY_HOSTS:
                assert host not in text, f"{path.relative_to(ROOT)} names {host}"


# -- the helpers of scripts/test-deploy ----------------------------------------------------------

CONFIG = """\
services:
  api:
    command:
    - serve
    network_mode: host
    ports:
    - published: 8700
      target: 8700
    restart: unless-stopped
  web:
    image: nginx
    ports:
    - 8080:80/tcp
version: '3.9'
volumes:
  ports: {}
"""


def test_published_ports_are_dropped_from_host_networked_services_only() -> None:
    out = yaml.safe_load(script("hostnet").drop_ports(CONFIG))
    assert "ports" not in out["services"]["api"]
    assert out["services"]["api"]["restart"] == "unless-stopped"
    assert out["services"]["web"]["ports"] == ["8080:80/tcp"]
    assert out["volumes"] == {"ports": {}}


def test_apt_mirrors_are_read_from_either_source_format() -> None:
    apt_uris = script("registries").apt_uris
    deb822 = ("debian.sources", "Types: deb\nURIs: http://mirror.test/debian\n"
              "Suites: bookworm bookworm-updates\nComponents: main\n\n"
              "Types: deb-src\nURIs: http://src.test/debian\nSuites: bookworm\n\n"
              "Types: deb\nURIs: http://mirror.test/debian-security/\n"
              "Suites: bookworm-security\nComponents: main\n")
    assert apt_uris([deb822]) == ("http://mirror.test/debian",
                                  "http://mirror.test/debian-security")
    one_line = ("sources.list", "# deb http://old.test/debian bookworm main\n"
                "deb [arch=amd64] https://one.test/debian bookworm main\n"
                "deb https://one.test/security bookworm-security main\n")
    assert apt_uris([one_line]) == ("https://one.test/debian", "https://one.test/security")
    disabled = ("x.sources", "Enabled: no\nTypes: deb\nURIs: http://off.test/d\n"
                "Suites: bookworm\n")
    assert apt_uris([disabled, deb822])[0] == "http://mirror.test/debian"
    assert apt_uris([("cdrom.list", "deb cdrom:[Debian]/ bookworm main\n")]) == ("", "")


def test_a_pip_index_is_passed_on_only_when_a_container_can_use_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    registries = script("registries")
    monkeypatch.setenv("PIP_INDEX_URL", "https://index.test/simple")
    assert registries.pip_index() == "https://index.test/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "file:///somewhere/simple")
    assert registries.pip_index() == ""


def test_the_deploy_script_and_its_helpers_are_wired(tmp_path: Path) -> None:
    text = (ROOT / "scripts" / "test-deploy").read_text(encoding="utf-8")
    for needed in ("scripts/deploy/base-image", "scripts/deploy/registries.py",
                   "scripts/deploy/hostnet.py", "scripts/deploy/e2e.py",
                   "docker-compose.offline.yml", "down -v"):
        assert needed in text, needed
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec bash scripts/test" not in ci, "the deploy step must run after the tests"
    assert ci.index("bash scripts/test\n") < ci.index("bash scripts/test-deploy")
    assert "dockerd" in ci and "debootstrap" in ci
