"""Drop published ports from host-networked services of a rendered compose file.

    docker-compose -f docker-compose.yml -f docker-compose.offline.yml config \
        | python3 scripts/deploy/hostnet.py > stack.yml

With host networking a container's ports are the host's; Docker discards published ports
for such a container, but docker-compose 1.x refuses the combination outright, and an
override file cannot take a list away from the file it extends. This does what Docker
would. It reads the normalised output of ``config`` line by line (services at two spaces,
their keys at four), so it needs no YAML library.
"""

from __future__ import annotations

import re
import sys

_SERVICE = re.compile(r"^  ([A-Za-z0-9._-]+):\s*$")
_KEY = re.compile(r"^    ([A-Za-z0-9_-]+):")


def drop_ports(text: str) -> str:
    lines = text.splitlines(keepends=True)
    host: set[str] = set()
    service = None
    in_services = False
    for line in lines:
        if not line.startswith(" "):
            in_services = line.startswith("services:")
            service = None
        elif in_services and (match := _SERVICE.match(line)):
            service = match[1]
        elif service and re.match(r"^    network_mode:\s*['\"]?host['\"]?\s*$", line):
            host.add(service)
    out: list[str] = []
    service, skipping = None, False
    for line in lines:
        if skipping:
            # The list under ports: items at four spaces ("- ...") or deeper.
            if line.startswith("    -") or line.startswith("     ") or not line.strip():
                continue
            skipping = False
        if not line.startswith(" "):
            in_services = line.startswith("services:")
            service = None
        elif in_services and (match := _SERVICE.match(line)):
            service = match[1]
        elif service in host and (match := _KEY.match(line)) and match[1] == "ports":
            skipping = True
            continue
        out.append(line)
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(drop_ports(sys.stdin.read()))
