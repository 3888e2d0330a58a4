"""Serve the dashboard: check the runs directory, bind the address (loopback unless
asked otherwise), and run uvicorn on the socket bound here, so a port in use is a
message, not a traceback."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from sparring.errors import SparringError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a SparringError that says what to change."""
    if not 0 <= port <= 65535:
        raise SparringError(f"--port {port} is not a port: give one from 1 to 65535 (0 picks a free one)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise SparringError(f"--host {host} is not an address this machine can bind ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SparringError(f"port {port} on {host} is in use (another dashboard?): stop it, or give "
                                f"another one with --port, e.g. --port {port + 1 if port else 8081}") from None
        raise SparringError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def serve(directory: str | Path, host: str = "127.0.0.1", port: int = 8080,
          say: Callable[[str], None] = print, warn: Callable[[str], None] = print) -> None:
    """Serve the runs under `directory` until interrupted (Ctrl+C)."""
    try:
        import uvicorn

        from sparring.dashboard.app import create_app
    except ImportError as exc:
        raise SparringError(f"the dashboard needs its web packages ({exc.name} is missing): "
                            "pip install 'sparring[dashboard]'") from None
    from sparring.dashboard.runs import RunsRoot

    root = RunsRoot.at(directory)
    runs = root.find()
    if not runs:
        raise SparringError(f"no runs under {directory}: a run is a directory holding run.sqlite. "
                            "Give the directory your runs are in (e.g. runs/), or play one first")
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    loopback = is_loopback(host)
    if not loopback:
        warn(f"warning: serving on {host}, not the loopback address: anyone who can reach this machine on port "
             f"{bound_port} can read every prompt and answer of these runs, with no password. Stop it (Ctrl+C) "
             "unless that is what you want")
    url_host = f"[{host}]" if ":" in host else host
    allowed = ("127.0.0.1", "localhost", "[::1]", url_host) if loopback else ("*",)
    play_off = None if loopback else (f"play is off: the dashboard serves on {host}, not the loopback address, and "
                                      "a match runs agents on this machine for whoever asks")
    app = create_app(root, allowed_hosts=allowed, play_off=play_off)
    say(f"sparring dashboard: http://{url_host}:{bound_port}  ({len(runs)} run{'s' if len(runs) != 1 else ''} "
        f"under {root.scope}; read-only; Ctrl+C stops it)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
