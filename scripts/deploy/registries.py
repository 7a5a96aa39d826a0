"""The package registries this machine is configured to use, as shell assignments.

Image builds run on the machine that starts them and must fetch Debian packages, wheels
and npm packages from wherever that machine does: its apt sources, its pip configuration,
its npm configuration. Nothing here names a registry; an empty value means "the tool's
own default".

    eval "$(python3 scripts/deploy/registries.py)"
    # DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, PIP_INDEX_URL, NPM_REGISTRY
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

APT = Path("/etc/apt")


def apt_uris(sources: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(archive mirror, security mirror) from (name, text) of apt source files, in
    one-line (``deb URI suite ...``) or deb822 (``URIs:`` / ``Suites:``) form."""
    mirror = security = ""
    for name, text in sources:
        entries: list[tuple[str, str]] = []
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
                if fields.get("Enabled", "yes").lower() == "no":
                    continue
                if "deb" not in fields.get("Types", "").split():
                    continue
                for uri in fields.get("URIs", "").split():
                    for suite in fields.get("Suites", "").split():
                        entries.append((uri, suite))
        else:
            for line in text.splitlines():
                match = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
                if match:
                    entries.append((match[1], match[2]))
        for uri, suite in entries:
            if not uri.startswith(("http://", "https://")):
                continue
            if suite.endswith("-security"):
                security = security or uri.rstrip("/")
            else:
                mirror = mirror or uri.rstrip("/")
    return mirror, security


def _apt_sources(root: Path) -> list[tuple[str, str]]:
    files = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list")),
             *sorted((root / "sources.list.d").glob("*.sources"))]
    return [(path.name, path.read_text(encoding="utf-8", errors="replace"))
            for path in files if path.is_file()]


def _ask(argv: list[str]) -> str:
    if not shutil.which(argv[0]):
        return ""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def pip_index() -> str:
    """PIP_INDEX_URL, else pip's configured index-url (any scope); "" for pip's default.
    Only an http(s) index can serve a build inside a container."""
    value = os.environ.get("PIP_INDEX_URL", "")
    if not value:
        listing = _ask([sys.executable, "-m", "pip", "config", "list"])
        for line in listing.splitlines():
            key, _, raw = line.partition("=")
            if key.strip().endswith(".index-url"):
                value = raw.strip().strip("'\"")
                break
    return value if value.startswith(("http://", "https://")) else ""


def npm_registry() -> str:
    value = os.environ.get("NPM_CONFIG_REGISTRY") or _ask(["npm", "config", "get", "registry"])
    return value if value.startswith(("http://", "https://")) else ""


def main() -> None:
    mirror, security = apt_uris(_apt_sources(APT))
    values = {"DEBIAN_MIRROR": mirror, "DEBIAN_SECURITY_MIRROR": security,
              "PIP_INDEX_URL": pip_index(), "NPM_REGISTRY": npm_registry()}
    for key, value in values.items():
        print(f"{key}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
