"""The sandbox around a code template's programs: ``npm ci``, and Node.js with the
Chromium it starts (``bridge.mjs``). A Remotion project is code from a tenant; on a node
it runs

- as an unprivileged user (``FRAMEFARM_SANDBOX_USER``, default ``nobody``; on the farm a
  user of each tenant's own, :func:`owned_by`), with no supplementary groups and no way
  to gain privileges (``setpriv --no-new-privs``): it cannot read the node's secret, its
  work folder or other jobs' task folders (all owned by the node's user, mode 0700), nor
  another tenant's prepared projects (readable by their owner's group only), and it can
  write only where it is handed a folder;
- with a scrubbed environment: ``PATH``, the locale, and its own ``HOME`` and ``TMPDIR``
  (nothing of the node's settings, tokens or cloud credentials);
- in a network namespace of its own with only a loopback interface (``unshare --net``)
  when it draws or bundles: Remotion's bundle server and Chromium talk over that
  loopback, which is not the node's, so neither the API nor any other host is
  reachable. Installing is the one step with the network (the package registry, for the
  lockfile's exact versions, with install scripts off);
- under a memory limit (``FRAMEFARM_SANDBOX_MEMORY_MB``, default 4096, for the whole
  process tree) and the engine's time limits; past either it is stopped, with a message
  that says which.

``FRAMEFARM_SANDBOX``: ``auto`` (the default: on when the node runs as root and
``unshare``, ``setpriv`` and ``ip`` are installed, as in the image), ``on`` (refuse to run
code templates without it), or ``off`` (a developer's machine running their own project).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os
import pwd
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from framefarm.engines.remotion import errors as remotion_errors

_TOOLS = ("unshare", "setpriv", "ip")
_KEPT = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclasses.dataclass(frozen=True)
class Policy:
    """How the engine's programs are run: as ``uid``/``gid`` (None: as this process,
    unconfined), with at most ``memory_bytes`` for the process tree."""

    uid: int | None = None
    gid: int | None = None
    memory_bytes: int | None = None
    owned: bool = False  # one owner's user: what it prepares is its group's alone

    @property
    def confined(self) -> bool:
        return self.uid is not None

    def command(self, argv: Sequence[str], *, network: bool) -> list[str]:
        """``argv`` run inside the sandbox (as itself when the policy is off)."""
        if not self.confined:
            return list(argv)
        drop = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--no-new-privs", "--inh-caps=-all", "--"]
        if network:
            return [*drop, *argv]
        # A namespace of its own: loopback only, brought up before dropping privileges.
        return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"',
                "sandbox", *drop, *argv]

    def environment(self, scratch: Path, extra: Mapping[str, str]) -> dict[str, str]:
        """What the programs see: the node's own environment when unconfined; else only
        PATH, the locale, their own HOME and TMPDIR, and ``extra``."""
        if not self.confined:
            return {**os.environ, **extra}
        kept = {k: os.environ[k] for k in _KEPT if k in os.environ}
        return {**kept, "HOME": str(scratch), "TMPDIR": str(scratch), **extra}

    def check_reachable(self, folder: Path) -> None:
        """Refuse a cache the sandbox user cannot get to (a folder inside root's home,
        say), naming it and what to do."""
        if not self.confined:
            return
        for parent in (folder, *folder.parents):
            if parent.exists() and not parent.stat().st_mode & 0o001:
                raise remotion_errors.ToolMissing(
                    f"the Remotion cache {folder} is inside {parent}, which the sandbox's "
                    "user cannot enter; set FRAMEFARM_REMOTION_CACHE to a folder outside "
                    "it (the default for root is /var/cache/framefarm/remotion)")

    def hand_over(self, path: Path) -> None:
        """Let the sandbox write into ``path`` (it becomes the sandbox user's)."""
        if self.confined:
            _chown_tree(path, self.uid, self.gid)

    def take_back(self, path: Path, *, shared: bool = False) -> None:
        """Make ``path`` the node's again, not writable by anyone else: what the sandbox
        made there (a prepared project later jobs reuse) cannot be changed by them. It
        stays readable by the owner's group alone when the policy is an owner's (unless
        ``shared``: installed dependencies, the lockfile's public packages), else by
        every sandbox."""
        if not self.confined:  # readable all the same: a confined node may share it later
            _chown_tree(path, None, None, readable="all")
        elif self.owned and not shared:
            _chown_tree(path, os.getuid(), self.gid, readable="group")
        else:
            _chown_tree(path, os.getuid(), os.getgid(), readable="all")


def _chown_tree(path: Path, uid: int | None, gid: int | None, *,
                readable: str | None = None) -> None:
    """Give ``path`` and everything in it to uid:gid (None: keep the owner); with
    ``readable`` "all", readable and enterable by anyone, "group" by the group alone;
    writable by the owner alone either way."""
    grant, keep = {"all": (0o755, 0o7755), "group": (0o750, 0o7750)}.get(readable or "",
                                                                       (0, 0o7777))

    def own(target: str, folder: bool) -> None:
        if uid is not None and gid is not None:
            os.chown(target, uid, gid, follow_symlinks=False)
        if readable and not os.path.islink(target):
            mode = os.stat(target).st_mode & 0o7777
            # Files get the read bits only (an executable keeps its execute bits).
            os.chmod(target, (mode | (grant if folder else grant & 0o444)) & keep)

    own(str(path), path.is_dir())
    for root, dirs, files in os.walk(path):
        for name in dirs:
            own(os.path.join(root, name), True)
        for name in files:
            own(os.path.join(root, name), False)


_OWNER: contextvars.ContextVar[int | None] = contextvars.ContextVar("owner", default=None)


@contextlib.contextmanager
def owned_by(number: int | None) -> Iterator[None]:
    """Within it, :func:`policy` runs programs as owner ``number``'s user (uid and gid
    ``FRAMEFARM_SANDBOX_UID_BASE`` + number, default 1,500,000,000 + number: ids no
    account of the machine has), so one tenant's code cannot read what was prepared for
    another. ``number``: a tenant's own on this machine (``project.owner_number``)."""
    token = _OWNER.set(number)
    try:
        yield
    finally:
        _OWNER.reset(token)


def policy() -> Policy:
    """The node's sandbox: its base (:func:`base_policy`), as the current owner's user
    inside :func:`owned_by`."""
    base, number = base_policy(), _OWNER.get()
    if number is None or not base.confined:
        return base
    uid = int(os.environ.get("FRAMEFARM_SANDBOX_UID_BASE", "1500000000")) + number
    return dataclasses.replace(base, uid=uid, gid=uid, owned=True)


@functools.cache
def base_policy() -> Policy:
    """The node's sandbox, from ``FRAMEFARM_SANDBOX*`` (read once)."""
    mode = os.environ.get("FRAMEFARM_SANDBOX", "auto").lower()
    if mode not in ("auto", "on", "off"):
        raise remotion_errors.ToolMissing(f"FRAMEFARM_SANDBOX={mode}: use auto, on or off")
    memory = int(os.environ.get("FRAMEFARM_SANDBOX_MEMORY_MB", "4096")) * 1024**2
    if mode == "off":
        return Policy(memory_bytes=memory)
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    able = os.geteuid() == 0 and not missing
    if not able:
        if mode == "on":
            why = (f"{', '.join(missing)} not installed" if missing
                   else "the node does not run as root, which dropping to another user needs")
            raise remotion_errors.ToolMissing(f"the code-template sandbox cannot start: {why}; "
                                              "install util-linux and iproute2 and run the "
                                              "node as root, or set FRAMEFARM_SANDBOX=off")
        return Policy(memory_bytes=memory)
    name = os.environ.get("FRAMEFARM_SANDBOX_USER", "nobody")
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise remotion_errors.ToolMissing(f"FRAMEFARM_SANDBOX_USER={name}: no such user") \
            from None
    if user.pw_uid == 0:
        raise remotion_errors.ToolMissing("FRAMEFARM_SANDBOX_USER must not be root")
    return Policy(user.pw_uid, user.pw_gid, memory)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Chromium and its helpers, whatever their group)."""
    children, _ = _processes()
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process below it (Chromium's helpers too)."""
    children, rss = _processes()
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, ()))
    return total


def _processes() -> tuple[dict[int, list[int]], dict[int, int]]:
    """Each process's children, and each one's resident bytes, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        child, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(child)
        rss[child] = int(fields[21]) * page
    return children, rss
