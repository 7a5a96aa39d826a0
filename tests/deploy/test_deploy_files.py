"""The deployment files agree with the code they deploy.

Dockerfile, docker-compose.yml and deploy/k8s/ are checked without a container engine:
every file parses, every ``FRAMEFARM_*`` variable they set is one framefarm reads, every
``framefarm ...`` command they run parses with the real CLI (options, values, required
options satisfied from the container's environment), the image installs what the code
imports, and the manifests have what a cluster needs (resources, probes, one image, nodes
without database or storage credentials). Nothing here builds an image or starts a
container: docs/deployment.md says what was and was not run.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import fnmatch
import importlib.metadata
import json
import os
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import typer.main
import yaml
from packaging.requirements import Requirement

from framefarm import cli
from framefarm.db import migrate, schema
from framefarm.limits import Limits
from framefarm.queue.states import TaskState
from framefarm.settings import Settings
from framefarm.worker import health
from support.database import fresh_database, require_postgres

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
OFFLINE = ROOT / "docker-compose.offline.yml"
K8S = ROOT / "deploy" / "k8s"
KEDA = ROOT / "deploy" / "keda"
SRC = ROOT / "src" / "framefarm"

YAML_FILES = sorted({*ROOT.joinpath("deploy").rglob("*.yaml"),
                     *ROOT.joinpath("deploy").rglob("*.yml"), COMPOSE, OFFLINE})
# Files that set variables or run commands: the ones whose names must be real.
DEPLOY_FILES = [DOCKERFILE, *YAML_FILES]

# What only the API may hold: render nodes get the server's address and the enrolment token.
SERVER_ONLY = {"FRAMEFARM_DATABASE_URL", "FRAMEFARM_SECRET_KEY", "FRAMEFARM_S3_ACCESS_KEY_ID",
               "FRAMEFARM_S3_SECRET_ACCESS_KEY"}
# Settings the deployment uses for S3 storage; the brief of the deployment asks for them
# ahead of the code, so their absence from Settings is reported on its own.
S3_NAMES = re.compile(r"FRAMEFARM_(S3_[A-Z0-9_]+|STORAGE_BACKEND)$")
VAR = re.compile(r"\bFRAMEFARM_[A-Z0-9_]*[A-Z0-9]\b")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


# -- reading the files ------------------------------------------------------------------------

def load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def instruction(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start:]


def build_args() -> dict[str, str]:
    """The Dockerfile's global ARGs (before the first FROM) and their defaults."""
    found: dict[str, str] = {}
    for word, args in dockerfile():
        if word == "FROM":
            break
        if word == "ARG":
            name, _, default = args.partition("=")
            found[name] = default.strip('"')
    return found


def image_argv() -> tuple[list[str], list[str]]:
    """The image's ENTRYPOINT and CMD (exec form)."""
    entry = json.loads(instruction("ENTRYPOINT")[-1])
    cmd = json.loads(instruction("CMD")[-1])
    return entry, cmd


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in instruction("ENV"):
        for key, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", args):
            env[key] = value
    return env


def compose() -> dict[str, Any]:
    [doc] = load_all(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def framefarm_image() -> str:
    """The image compose builds from ./Dockerfile."""
    images = {str(s["image"]) for s in compose()["services"].values() if "build" in s}
    assert len(images) == 1, f"compose builds several images: {images}"
    return images.pop()


def framefarm_services() -> dict[str, dict[str, Any]]:
    image = framefarm_image()
    return {name: s for name, s in compose()["services"].items() if s.get("image") == image}


def kustomization() -> dict[str, Any]:
    [doc] = load_all(K8S / "kustomization.yaml")
    assert isinstance(doc, dict)
    return doc


def k8s_docs(*, optional: bool = True) -> list[dict[str, Any]]:
    """Every manifest in deploy/k8s (the optional/ folder and the KEDA overlay in
    deploy/keda too, unless told not to)."""
    paths = sorted(K8S.rglob("*.yaml")) + (sorted(KEDA.rglob("*.yaml")) if optional else [])
    docs = []
    for path in paths:
        if path.name == "kustomization.yaml" or (not optional and path.parent != K8S):
            continue
        docs.extend(load_all(path))
    return docs


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in k8s_docs() if doc.get("kind") == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def image_name(ref: str) -> str:
    """registry/name:tag@digest -> registry/name"""
    ref = ref.split("@", 1)[0]
    head, _, tail = ref.rpartition("/")
    return f"{head}/{tail.split(':', 1)[0]}" if head else tail.split(":", 1)[0]


def k8s_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in k8s_docs():
        if doc.get("kind") in WORKLOADS:
            spec = pod_spec(doc)
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                yield doc, container


def k8s_container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as far as the manifests tell: literal values, and a
    stand-in for values taken from a Secret or ConfigMap of these manifests."""
    maps = {(d["kind"], d["metadata"]["name"]): {**d.get("data", {}), **d.get("stringData", {})}
            for d in k8s_docs() if d.get("kind") in ("ConfigMap", "Secret")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                ref = source[key]["name"]
                assert (kind, ref) in maps, f"{container['name']}: envFrom {kind} {ref} not found"
                env.update({k: str(v) for k, v in maps[(kind, ref)].items()})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        source = var.get("valueFrom", {})
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in source:
                ref = source[key]
                values = maps.get((kind, ref["name"]))
                assert values is not None, f"{var['name']}: {kind} {ref['name']} not found"
                assert ref["key"] in values, f"{var['name']}: no key {ref['key']} in {ref['name']}"
                env[var["name"]] = str(values[ref["key"]])
        if "fieldRef" in source or "resourceFieldRef" in source:
            env[var["name"]] = "from-the-pod"
    return env


# -- the commands the deployment runs -----------------------------------------------------------

@dataclass
class Invocation:
    where: str
    argv: list[str]                    # after "framefarm"
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.where}: framefarm {' '.join(self.argv)}"


def invocations() -> list[Invocation]:
    entry, cmd = image_argv()
    assert entry and entry[-1] == "framefarm", f"ENTRYPOINT {entry} does not end in framefarm"
    base_env = image_env()
    found = [Invocation("Dockerfile CMD", cmd, base_env)]
    for name, service in framefarm_services().items():
        assert "entrypoint" not in service, f"compose {name}: keep the image's entrypoint"
        command = service.get("command", cmd)
        assert isinstance(command, list), f"compose {name}: use the exec (list) form"
        found.append(Invocation(f"compose {name}", command,
                                {**base_env, **compose_env(service)}))
    for doc, container in k8s_containers():
        if image_name(container["image"]) != image_name(k8s_image()):
            continue
        where = f"k8s {doc['kind']} {doc['metadata']['name']}/{container['name']}"
        assert "command" not in container, f"{where}: keep the image's entrypoint, set args"
        found.append(Invocation(where, container.get("args", cmd),
                                {**base_env, **k8s_container_env(container)}))
    return found


def k8s_image() -> str:
    images = {str(c["image"]) for _, c in k8s_containers()}
    assert len(images) == 1, f"the manifests use several images: {sorted(images)}"
    return images.pop()


def parse(invocation: Invocation, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """Parse the invocation with the real CLI in the container's environment; returns the
    command's path ("serve", "admin create-tenant") and its parsed parameters."""
    command: Any = typer.main.get_command(cli.app)
    args = list(invocation.argv)
    path: list[str] = []
    while _is_group(command):
        assert args and not args[0].startswith("-"), f"{invocation}: no subcommand"
        name = args.pop(0)
        assert name in command.commands, f"{invocation}: no command {' '.join([*path, name])!r}"
        command = command.commands[name]
        path.append(name)
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("FRAMEFARM_")]:
            patch.delenv(key)
        for key, value in invocation.env.items():
            patch.setenv(key, value)
        try:
            ctx = command.make_context(f"framefarm {' '.join(path)}", args)
        except Exception as exc:  # click's usage errors (typer vendors its own click)
            message = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
            pytest.fail(f"{invocation}: {message}")
    return " ".join(path), dict(ctx.params)


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


# -- every YAML file parses ---------------------------------------------------------------------

@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


def test_deployment_files_exist() -> None:
    for path in (DOCKERFILE, DOCKERIGNORE, COMPOSE, K8S / "kustomization.yaml"):
        assert path.is_file(), path


# -- FRAMEFARM_* variables are ones framefarm reads ---------------------------------------------

def known_variables() -> set[str]:
    """Settings and Limits fields by their environment names, the options' envvars, and
    the names the code reads from os.environ itself (FRAMEFARM_DEBUG, FRAMEFARM_FFMPEG...)."""
    names: set[str] = set()
    for model in (Settings, Limits):
        prefix = str(model.model_config.get("env_prefix", ""))
        names |= {f"{prefix}{name}".upper() for name in model.model_fields}
    stack: list[Any] = [typer.main.get_command(cli.app)]
    while stack:
        command = stack.pop()
        if _is_group(command):
            stack.extend(command.commands.values())
        for param in command.params:
            envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
            names |= {e for e in envvars if isinstance(e, str)}
    environ = re.compile(r"environ(?:\.get\(|\[)\s*[\"'](FRAMEFARM_[A-Z0-9_]+)[\"']")
    for path in SRC.rglob("*.py"):
        names |= set(environ.findall(path.read_text(encoding="utf-8")))
    return names


def used_variables() -> dict[str, list[str]]:
    """FRAMEFARM_* name -> the deployment files that mention it."""
    used: dict[str, list[str]] = {}
    for path in DEPLOY_FILES:
        for name in sorted(set(VAR.findall(path.read_text(encoding="utf-8")))):
            used.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return used


def test_the_deployment_sets_framefarm_variables() -> None:
    used = used_variables()
    for name in ("FRAMEFARM_DATABASE_URL", "FRAMEFARM_ENROLMENT_TOKEN", "FRAMEFARM_SECRET_KEY",
                 "FRAMEFARM_PUBLIC_URL", "FRAMEFARM_DATA_DIR"):
        assert name in used, name


def test_every_variable_is_a_setting() -> None:
    known = known_variables()
    unknown = {name: where for name, where in used_variables().items()
               if name not in known and not S3_NAMES.match(name)}
    assert not unknown, (
        "FRAMEFARM_* variables in the deployment files that framefarm does not read "
        f"(not a field of Settings or Limits, nor read from os.environ): {unknown}")


def test_s3_storage_variables_are_settings() -> None:
    """The S3 variables the deployment sets ahead of S3 storage must become Settings fields."""
    known = known_variables()
    missing = {name: where for name, where in used_variables().items()
               if S3_NAMES.match(name) and name not in known}
    assert not missing, (
        "not yet supported: the deployment sets these S3 storage variables, but "
        f"framefarm.settings.Settings has no such fields: {sorted(missing)} (used in {missing})")


# -- the commands exist, with the options used ---------------------------------------------------

@pytest.mark.parametrize("argv, env, problem", [
    (["serve", "--hots", "0.0.0.0"], {}, "--hots"),
    (["serve", "--workers", "none"], {}, "--workers"),
    (["worker", "--server", "http://api:8700"], {}, "--token"),
    (["render-farm"], {}, "render-farm"),
    (["admin", "create-tenant"], {}, "'name'"),
])
def test_the_command_check_catches_mistakes(argv: list[str], env: dict[str, str],
                                            problem: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises((pytest.fail.Exception, AssertionError), match=problem):
        parse(Invocation("example", argv, env), monkeypatch)


def test_a_token_from_the_environment_satisfies_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    path, params = parse(Invocation("example", ["worker", "--server", "http://api:8700"],
                                    {"FRAMEFARM_ENROLMENT_TOKEN": "t0k"}), monkeypatch)
    assert (path, params["token"]) == ("worker", "t0k")


def test_every_command_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    found = invocations()
    assert len(found) >= 7, [str(i) for i in found]
    for invocation in found:
        parse(invocation, monkeypatch)


def test_servers_listen_on_all_interfaces_without_local_nodes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In a container `serve` must bind 0.0.0.0 and start no render nodes of its own."""
    serves = 0
    for invocation in invocations():
        path, params = parse(invocation, monkeypatch)
        if path == "serve":
            serves += 1
            assert params["host"] in ("0.0.0.0", "::"), invocation
            assert params["workers"] == 0, invocation
            assert params["port"] == 8700, invocation
    assert serves >= 3  # the image's default, compose, Kubernetes


def test_the_image_defaults() -> None:
    entry, cmd = image_argv()
    assert entry[-1] == "framefarm"
    assert cmd == ["serve", "--host", "0.0.0.0", "--workers", "0"]


# -- the Dockerfile ----------------------------------------------------------------------------

def test_dockerfile() -> None:
    stage = final_stage()
    words = [word for word, _ in stage]
    runtime = {word: [a for w, a in stage if w == word] for word in words}
    # Real users build on the public Python image; machines without a registry pass a
    # local base (scripts/deploy/base-image). Every stage starts from the same base.
    assert build_args()["BASE"] == "python:3.11-slim"
    assert runtime["FROM"] == ["${BASE} AS runtime"]
    assert [a.split()[0] for a in instruction("FROM")] == ["${BASE}", "${BASE}"]
    assert "syntax=" not in DOCKERFILE.read_text(encoding="utf-8").split("\n")[0], \
        "a syntax line makes BuildKit fetch its frontend from a registry"
    assert any("libfribidi0" in run and "apt-get install" in run for run in runtime["RUN"])
    assert runtime["USER"][-1].split(":")[0] not in ("root", "0")
    assert runtime["EXPOSE"] == ["8700"]
    [health] = runtime["HEALTHCHECK"]
    assert "/healthz" in health and "python" in health and "curl" not in health
    assert image_env()["FRAMEFARM_DATA_DIR"] == "/data"
    installs = [run for word, run in dockerfile() if word == "RUN" and "pip install" in run]
    assert installs, "no pip install"
    for run in installs:
        assert re.search(r"pip install \.(\s|$)", run), f"install the package alone: {run}"
        assert not re.search(r"pip install [^&]*(\.\[|-e )", run), \
            f"no extras, no editable install: {run}"
    # Nothing the image runs is left to pip's own CA bundle or to a registry name.
    assert "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" in " ".join(instruction("ENV"))


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    for required in (".venv", ".git", "framefarm-data", "examples/media", "bench/out"):
        assert required in patterns, required
    copied = [part for args in instruction("COPY") if "--from" not in args
              for part in args.split()[:-1]]
    assert copied, "the Dockerfile copies nothing from the context"
    for source in copied:
        for pattern in patterns:
            assert not fnmatch.fnmatch(source.rstrip("/"), pattern), f"{pattern} hides {source}"
        assert (ROOT / source).exists(), source


# -- `pip install .` brings what the code imports -------------------------------------------------

def _third_party_imports() -> dict[str, list[str]]:
    """Top-level modules imported by src/framefarm outside `if TYPE_CHECKING:` and
    `try: ... except ImportError:` blocks -> the files importing them."""
    found: dict[str, list[str]] = {}

    def visit(node: ast.AST, path: Path) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Try) and any(
                h.type is not None and re.search(r"ImportError|ModuleNotFoundError",
                                                 ast.unparse(h.type)) for h in node.handlers):
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("framefarm", "__future__"):
                found.setdefault(top, []).append(str(path.relative_to(ROOT)))
        for child in ast.iter_child_nodes(node):
            visit(child, path)

    for path in SRC.rglob("*.py"):
        visit(ast.parse(path.read_text(encoding="utf-8")), path)
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str]) -> set[str]:
    """The distributions `pip install` brings for these requirements (as installed here)."""
    todo = [Requirement(line) for line in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req = todo.pop()
        key = (_normal(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            lines = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in lines:
            sub = Requirement(line)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return {name for name, _ in seen}


def test_the_image_installs_what_the_code_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _closure(project["dependencies"])
    distributions = importlib.metadata.packages_distributions()
    needed: dict[str, list[str]] = {}
    imports = _third_party_imports()
    assert imports, "found no third-party import in src/framefarm: the scan is broken"
    for module, files in imports.items():
        dists = distributions.get(module)
        assert dists, f"{module} (imported by {files[0]}) is not installed here"
        needed.setdefault(_normal(dists[0]), []).extend(files)
    # The database URLs the deployment uses name their driver (postgresql+psycopg://).
    for path in DEPLOY_FILES:
        for driver in re.findall(r"postgresql\+(\w+)://", path.read_text(encoding="utf-8")):
            needed.setdefault(_normal(driver), []).append(str(path.relative_to(ROOT)))
    missing = {dist: sorted(set(files))[:3] for dist, files in needed.items()
               if dist not in declared}
    assert not missing, ("`pip install .` in the Dockerfile would not install these, but "
                         f"the code or the deployment needs them: {missing}; add them to "
                         "[project].dependencies in pyproject.toml")


# -- docker compose ------------------------------------------------------------------------------

def test_compose_services() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].split(":")[1].startswith("16")
    assert "minio" in services["minio"]["image"]
    ours = framefarm_services()
    assert {"migrate", "api", "node"} <= set(ours)
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["healthcheck"]["test"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    assert services["node"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "/healthz" in json.dumps(services["api"]["healthcheck"]["test"])
    assert services["node"].get("deploy", {}).get("replicas", 1) == 2
    assert "api-data:/data" in services["api"]["volumes"]
    env = compose_env(services["api"])
    assert env["FRAMEFARM_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["FRAMEFARM_DATABASE_URL"]


def test_compose_nodes_hold_no_credentials() -> None:
    workers = {name: service for name, service in framefarm_services().items()
               if (service.get("command") or [""])[0] == "worker"}
    assert workers, "compose runs no `framefarm worker`"
    for name, service in workers.items():
        env = compose_env(service)
        assert "FRAMEFARM_ENROLMENT_TOKEN" in env, name
        assert not SERVER_ONLY & set(env), f"compose {name} gets {SERVER_ONLY & set(env)}"


def test_compose_nodes_reach_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    parsed = [(invocation, *parse(invocation, monkeypatch)) for invocation in invocations()
              if invocation.where.startswith("compose ")]
    workers = [(invocation, params) for invocation, path, params in parsed if path == "worker"]
    assert workers, "compose runs no `framefarm worker`"
    for invocation, params in workers:
        url = urlsplit(params["server"])
        assert url.hostname in services, f"{invocation}: no service {url.hostname}"
        target = services[url.hostname]
        assert (target.get("command") or [""])[0] == "serve", invocation
        assert str(url.port) in " ".join(target["command"]), invocation


# -- Kubernetes --------------------------------------------------------------------------------

def test_kustomization_lists_the_manifests() -> None:
    kust = kustomization()
    listed = kust["resources"]
    assert listed, "the kustomization lists no resources"
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization lists a missing file: {name}"
    top = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(n for n in listed if "/" not in n) == top, "list every manifest in deploy/k8s"
    docs = k8s_docs()
    assert docs, "no manifests in deploy/k8s"
    for doc in docs:
        assert doc["metadata"].get("namespace", kust["namespace"]) == kust["namespace"], doc
    [image] = kust["images"]
    assert image["name"] == image_name(k8s_image())


def test_k8s_has_every_piece() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in k8s_docs(optional=False)}
    for piece in (("Namespace", "framefarm"), ("Secret", "framefarm-secrets"),
                  ("ConfigMap", "framefarm-config"), ("Job", "framefarm-migrate"),
                  ("Deployment", "framefarm-api"), ("Service", "framefarm-api"),
                  ("Deployment", "framefarm-node")):
        assert piece in kinds, piece


def test_k8s_one_image() -> None:
    images = {image_name(c["image"]) for _, c in k8s_containers()}
    assert len(images) == 1, images
    assert image_name(framefarm_image()) == "framefarm" == images.pop()


def test_k8s_containers_have_resources() -> None:
    containers = list(k8s_containers())
    assert containers, "no containers in deploy/k8s"
    for doc, container in containers:
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            for what in ("cpu", "memory"):
                assert what in resources.get(part, {}), \
                    f"{doc['metadata']['name']}/{container['name']}: no {part}.{what}"


def _by_args(first: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(d, c) for d, c in k8s_containers() if (c.get("args") or [""])[0] == first]


def _port(container: dict[str, Any], ref: str | int) -> int:
    for port in container.get("ports", []):
        if ref in (port.get("name"), port["containerPort"]):
            return int(port["containerPort"])
    raise AssertionError(f"{container['name']}: no port {ref}")


def test_k8s_api_probes() -> None:
    apis = _by_args("serve")
    assert apis and all(d["kind"] == "Deployment" for d, _ in apis)
    for _, container in apis:
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            http = container[probe]["httpGet"]
            assert http["path"] == path, probe
            assert _port(container, http["port"]) == 8700, probe


def test_k8s_api_service_selects_the_api() -> None:
    [(deployment, container)] = _by_args("serve")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [service] = [s for s in k8s_kind("Service") if s["metadata"]["name"] == "framefarm-api"]
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    assert _port(container, port["targetPort"]) == 8700


def test_k8s_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = _by_args("worker")
    assert len(nodes) == 1
    [(deployment, container)] = nodes
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 4
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= 300
    env = k8s_container_env(container)
    assert "FRAMEFARM_ENROLMENT_TOKEN" in env
    assert not SERVER_ONLY & set(env), f"render nodes get {SERVER_ONLY & set(env)}"
    assert not any("secretRef" in s for s in container.get("envFrom", [])), \
        "nodes take single keys from the Secret, never all of it"
    services = {s["metadata"]["name"]: s for s in k8s_kind("Service")}
    [invocation] = [i for i in invocations() if i.where.endswith(
        f"{deployment['metadata']['name']}/{container['name']}")]
    _, params = parse(invocation, monkeypatch)
    url = urlsplit(params["server"])
    assert url.hostname in services, f"the nodes' --server {url.hostname} is no Service"
    assert url.port in [p["port"] for p in services[url.hostname]["spec"]["ports"]]


def test_k8s_migration_job() -> None:
    [(job, container)] = _by_args("migrate")
    assert job["kind"] == "Job"
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert "FRAMEFARM_DATABASE_URL" in k8s_container_env(container)


def test_k8s_pods_run_as_non_root() -> None:
    workloads = [doc for doc in k8s_docs() if doc.get("kind") in WORKLOADS]
    assert workloads, "no workloads in deploy/k8s"
    for doc in workloads:
        assert pod_spec(doc)["securityContext"]["runAsNonRoot"] is True, doc["metadata"]


def test_k8s_optional_autoscaler_targets_the_nodes() -> None:
    hpas = k8s_kind("HorizontalPodAutoscaler")
    assert hpas, "no HorizontalPodAutoscaler in deploy/k8s/optional"
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", "framefarm-node")


# -- render nodes report readiness through their work folder -------------------------------------

def _health_args(argv: list[str]) -> argparse.Namespace:
    """Parse a node health command with the real module's parser."""
    assert argv[:3] == ["python", "-m", "framefarm.worker.health"], argv
    parser = health_parser()
    return parser.parse_args(argv[3:])


def health_parser() -> argparse.ArgumentParser:
    captured: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        captured.append(self)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign]
    try:
        with contextlib.suppress(SystemExit):
            health.main([])
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return captured[0]


def test_compose_nodes_are_checked_by_their_state_file(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    node = services["node"]
    [invocation] = [i for i in invocations() if i.where == "compose node"]
    _, params = parse(invocation, monkeypatch)
    test = node["healthcheck"]["test"]
    assert test[0] == "CMD"
    args = _health_args(test[1:])
    assert args.workdir == params["workdir"] and not args.drain and not args.live
    assert "disable" not in node["healthcheck"]


def test_k8s_nodes_probe_and_drain_through_their_state_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    [(deployment, container)] = _by_args("worker")
    [invocation] = [i for i in invocations() if i.where.endswith("framefarm-node/node")]
    _, params = parse(invocation, monkeypatch)
    ready = _health_args(container["readinessProbe"]["exec"]["command"])
    live = _health_args(container["livenessProbe"]["exec"]["command"])
    hook = _health_args(container["lifecycle"]["preStop"]["exec"]["command"])
    for args in (ready, live, hook):
        assert args.workdir == params["workdir"]
    assert not ready.live and not ready.drain
    assert live.live and live.max_age >= 120  # a long upload is not a hang
    assert hook.drain and hook.wait > 0
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    # The hook's wait and the SIGTERM after it both fit in the grace period.
    assert hook.wait + 20 <= grace, (hook.wait, grace)


# -- Kubernetes: what an operator needs to scale with the queue ---------------------------------

def test_the_api_has_a_disruption_budget() -> None:
    [(deployment, _)] = _by_args("serve")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [pdb] = k8s_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] >= 1
    assert "api-pdb.yaml" in kustomization()["resources"]


def _keda_kustomization() -> dict[str, Any]:
    [doc] = load_all(KEDA / "kustomization.yaml")
    assert isinstance(doc, dict)
    return doc


def test_keda_scales_the_node_deployment_on_the_queue() -> None:
    [scaled] = k8s_kind("ScaledObject")
    [(deployment, _)] = _by_args("worker")
    target = scaled["spec"]["scaleTargetRef"]
    assert (target.get("kind", "Deployment"), target["name"]) == (
        "Deployment", deployment["metadata"]["name"])
    assert scaled["spec"]["minReplicaCount"] == 0  # scale to zero (documented in the file)
    assert scaled["spec"]["maxReplicaCount"] >= 1
    # Scale-down waits longer than a node's drain is allowed to take.
    assert scaled["spec"]["cooldownPeriod"] >= pod_spec(deployment)[
        "terminationGracePeriodSeconds"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert "FROM tasks" in trigger["metadata"]["query"]
    assert int(trigger["metadata"]["targetQueryValue"]) >= 1
    [auth] = [a for a in k8s_kind("TriggerAuthentication")
              if a["metadata"]["name"] == trigger["authenticationRef"]["name"]]
    secrets = {(d["metadata"]["name"]): d.get("stringData", {}) for d in k8s_kind("Secret")}
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in secrets[ref["name"]], ref
        assert secrets[ref["name"]][ref["key"]].startswith("postgresql://"), \
            "KEDA takes a libpq URL, not SQLAlchemy's postgresql+psycopg://"


def test_the_keda_overlay_builds_on_the_base_and_frees_the_replica_count() -> None:
    kust = _keda_kustomization()
    assert "../k8s" in kust["resources"]
    for name in kust["resources"]:
        assert (KEDA / name).exists(), name
    listed = {name for name in kust["resources"] if name != "../k8s"}
    assert listed == {p.name for p in KEDA.glob("*.yaml") if p.name != "kustomization.yaml"}
    [patch] = kust["patches"]
    assert patch["target"]["name"] == "framefarm-node"
    assert yaml.safe_load(patch["patch"]) == [{"op": "remove", "path": "/spec/replicas"}]


def test_the_keda_query_runs_on_the_migrated_schema() -> None:
    """The trigger's SQL against a real PostgreSQL at the newest schema: it names real
    columns and states, and counts a claimable task, a running one, and nothing else."""
    [scaled] = k8s_kind("ScaledObject")
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    states = set(re.findall(r"state = '(\w+)'", query))
    assert states <= {s.value for s in TaskState}, states
    with fresh_database("keda", require_postgres()) as url:
        migrate.upgrade(url)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                assert conn.execute(sa.text(query)).scalar_one() == 0
                _tasks_in(conn, ["queued", "running", "waiting", "succeeded", "failed"])
                # Claimable (queued, due) and running: 2; a queued task still backing off
                # after a failure is not claimable yet.
                assert conn.execute(sa.text(query)).scalar_one() == 2
                conn.execute(sa.text("UPDATE tasks SET not_before = now() + interval '1 hour'"
                                     " WHERE state = 'queued'"))
                assert conn.execute(sa.text(query)).scalar_one() == 1
        finally:
            engine.dispose()


def _tasks_in(conn: sa.Connection, states: list[str]) -> None:
    """A job with one task in each of these states, every required column filled."""
    now = dt.datetime.now(dt.UTC)
    conn.execute(schema.tenants.insert().values(id="ten_keda", name="keda", created_at=now))
    job_columns = {c.name for c in schema.jobs.c}
    job: dict[str, Any] = {"id": "job_keda", "tenant_id": "ten_keda"}
    for column in schema.jobs.c:
        if column.name in job or column.nullable or column.default is not None \
                or column.server_default is not None:
            continue
        job[column.name] = _value_for(column, now)
    assert job_columns >= set(job)
    conn.execute(schema.jobs.insert().values(**job))
    for i, state in enumerate(states):
        task: dict[str, Any] = {"id": f"tsk_keda{i}", "job_id": "job_keda",
                                "tenant_id": "ten_keda", "idx": i, "state": state,
                                "not_before": now - dt.timedelta(seconds=1)}
        for column in schema.tasks.c:
            if column.name in task or column.nullable or column.default is not None \
                    or column.server_default is not None:
                continue
            task[column.name] = _value_for(column, now)
        conn.execute(schema.tasks.insert().values(**task))


def _value_for(column: sa.Column[Any], now: dt.datetime) -> Any:
    kind = column.type
    if isinstance(kind, schema.UtcDateTime):
        return now
    if isinstance(kind, sa.Integer):
        return 0
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.JSON):
        return {}
    return "x"


def test_the_resource_quota_fits_the_farm_at_its_largest() -> None:
    [quota] = k8s_kind("ResourceQuota")
    [scaled] = k8s_kind("ScaledObject")
    most = scaled["spec"]["maxReplicaCount"]
    [(_, node_container)] = _by_args("worker")
    [(_, api_container)] = _by_args("serve")
    hard = quota["spec"]["hard"]

    def total(part: str, what: str) -> float:
        nodes = _quantity(node_container["resources"][part][what]) * most
        return nodes + _quantity(api_container["resources"][part][what])

    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            assert _quantity(hard[f"{part}.{what}"]) >= total(part, what), (part, what)
    assert int(hard["pods"]) >= most + 2


def _quantity(text: str | int) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match, text
    return float(match[1]) * units.get(match[2], 1)


def test_the_one_shot_render_job() -> None:
    [(job, container)] = _by_args("render")
    assert job["kind"] == "Job" and job["metadata"]["name"] == "framefarm-render"
    spec = job["spec"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0
    # An invalid document (exit 2) is not worth a retry.
    [rule] = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    args = container["args"]
    document = args[1]
    output = args[args.index("-o") + 1]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert str(Path(document).parent) in mounts and mounts[str(Path(document).parent)].get(
        "readOnly")
    assert str(Path(output).parent) in mounts and not mounts[str(Path(output).parent)].get(
        "readOnly")
    assert not SERVER_ONLY & set(k8s_container_env(container))
