"""Readiness probe run by generated launch scripts: exit 0 once the frontend lists the model and every
worker's system server reports healthy. On the way it says (on stderr) what it is still waiting for.

Usage:
  ready_probe.py [--owner PID] FRONTEND_URL SERVED_NAME [HEALTH ...]
  ready_probe.py [--owner PID] --workers HEALTH ...
  ready_probe.py --free [LABEL=]HOST:PORT ...

HEALTH is a worker's system port (checked on 127.0.0.1) or a full http://host:port/health URL, optionally
prefixed ``NAME=`` to name the worker in messages. With ``--owner PID`` (Linux) the frontend's and the
workers' ports must be served by PID's own process tree: a port another process listens on (a leftover
deployment, anything else) exits 3 at once, so readiness can't be answered by someone else.
``--workers`` checks the workers alone (for scripts that start the frontend once every worker serves).
``--free`` exits 1, one line per port, when a port the deployment will listen on is taken.

Standalone on purpose: it is shipped beside the scripts and runs with the Python that has Dynamo.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

NOT_READY = 1
FOREIGN = 3
UNSPECIFIED = {"0.0.0.0", "::"}


class Foreign(Exception):
    """A port of the deployment is served by a process outside it."""


def get(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read()


def printable(text: str) -> str:
    """Text from other processes (their command lines) may hold control characters: never echo them raw."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


# --- who listens where (Linux /proc) ----------------------------------------------------------------


def _address(hex_address: str) -> str:
    # /proc/net/tcp* print addresses as 32-bit words in host (little-endian) byte order.
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listeners() -> dict[int, list[tuple[str, int]]] | None:
    """port -> [(address, socket inode)] of every listening TCP socket; None where /proc/net is missing."""
    found: dict[int, list[tuple[str, int]]] = {}
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: TCP_LISTEN
                continue
            address, port = fields[1].rsplit(":", 1)
            found.setdefault(int(port, 16), []).append((_address(address), int(fields[9])))
    return found if readable else None


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the command name in (...) may hold spaces


def process_tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        parent = _parent(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[len("socket:[") : -1]))
    return inodes


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return "?"
    return printable(" ".join(w.decode("utf-8", "replace") for w in words if w))[:160]


def holder(inode: int) -> str:
    """'pid N (command)' of the process holding a socket, or a note that it can't be seen (another user's)."""
    for pid in _pids():
        if inode in socket_inodes(pid):
            return f"pid {pid} ({command_line(pid)})"
    return "a process this user cannot inspect"


def _could_answer(listening: str, probed: str) -> bool:
    return listening == probed or listening in UNSPECIFIED


def check_owned(ports: list[tuple[str, str, int]], owner: int) -> None:
    """Raise Foreign when a listener that could answer a probe of (what, address, port) is not owner's."""
    table = listeners()
    if table is None:
        return  # no /proc/net: nothing to check against
    ours: set[int] | None = None
    for what, address, port in ports:
        candidates = [inode for listening, inode in table.get(port, ()) if _could_answer(listening, address)]
        if not candidates:
            continue
        if ours is None:
            ours = set().union(*(socket_inodes(pid) for pid in process_tree(owner)))
        for inode in candidates:
            if inode not in ours:
                raise Foreign(f"{what} port {port} is served by {holder(inode)}, not by this deployment")


# --- readiness --------------------------------------------------------------------------------------


def _health_target(item: str) -> tuple[str, str]:
    name, _, target = item.partition("=") if "=" in item.split("://")[0] else ("", "", item)
    url = target if "://" in target else f"http://127.0.0.1:{target}/health"
    return (name or url), url


def _url_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    return host, parts.port or 80


def not_ready(url: str | None, served_name: str, health: list[str]) -> str | None:
    """What is not ready yet, or None when everything is. Without ``url`` only the workers are checked."""
    if url is not None:
        problem = not_ready_frontend(url, served_name)
        if problem is not None:
            return problem
    for item in health:
        name, target = _health_target(item)
        problem = not_ready_worker(target)
        if problem is not None:
            return f"{name} {problem}"
    return None


def not_ready_frontend(url: str, served_name: str) -> str | None:
    try:
        status, body = get(url + "/v1/models")
        models = [m.get("id") for m in json.loads(body).get("data", [])]
    except (OSError, ValueError, AttributeError) as exc:
        return f"frontend {url}: {printable(str(exc))}"
    if status != 200 or served_name not in models:
        return f"frontend {url} does not list {served_name} yet"
    return None


def not_ready_worker(target: str) -> str | None:
    """Why the worker whose /health is ``target`` does not serve yet, or None when it does."""
    try:
        status = get(target)[0]
    except urllib.error.HTTPError as exc:
        return None if _generate_ready(exc.read()) else f"{target}: {printable(str(exc))}"
    except (OSError, ValueError) as exc:
        return f"{target}: {printable(str(exc))}"
    return None if status == 200 else f"{target}: HTTP {status}"


def _generate_ready(body: bytes) -> bool:
    """A worker whose generate endpoint is ready. Dynamo 1.6.1 answers /health 503 "notready" unless the
    deprecated DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS is set, yet lists each endpoint's own state."""
    try:
        endpoints = json.loads(body).get("endpoints") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(endpoints, dict) and endpoints.get("generate") == "ready"


def ready(argv: list[str]) -> int:
    owner = None
    if argv[:1] == ["--owner"]:
        owner, argv = int(argv[1]), argv[2:]
    url: str | None
    if argv[:1] == ["--workers"]:
        url, served_name, health = None, "", argv[1:]
    else:
        url, served_name, health = argv[0], argv[1], argv[2:]
    if owner is not None:
        ports = [("frontend", *_url_port(url))] if url is not None else []
        ports += [(name, *_url_port(target)) for name, target in map(_health_target, health)]
        try:
            check_owned(ports, owner)
        except Foreign as exc:
            print(str(exc), file=sys.stderr)
            return FOREIGN
    reason = not_ready(url, served_name, health)
    if reason is not None:
        print(reason, file=sys.stderr)
        return NOT_READY
    return 0


# --- ports free before starting ---------------------------------------------------------------------


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on host:port now (as Dynamo's servers bind: SO_REUSEADDR), or None."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            return exc
    return None


def port_holder(port: int) -> str | None:
    table = listeners() or {}
    inodes = [inode for _, inode in table.get(port, ())]
    return holder(inodes[0]) if inodes else None


def taken(host: str, port: int) -> str | None:
    """A sentence saying who holds host:port, or None when it is free."""
    error = bind_error(host, port)
    if error is None:
        return None
    who = port_holder(port)
    reason = f"in use by {who}" if who else printable(error.strerror or str(error))
    return f"{host}:{port} is {reason}"


def free(argv: list[str]) -> int:
    problems = []
    for item in argv:
        label, _, address = item.rpartition("=")
        host, _, port = address.rpartition(":")
        problem = taken(host.strip("[]"), int(port))
        if problem:
            problems.append(f"{label + ': ' if label else ''}{problem}")
    for problem in problems:
        print(f"dyncc: port {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if argv[1:2] == ["--free"]:
        return free(argv[2:])
    return ready(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
