"""A real, throwaway PostgreSQL for the tests (as tests/rtsp_camera.py is a real RTSP camera): ``postgres_server()``
finds the Debian binaries (PATH, /usr/local/bin, /usr/lib/postgresql/*/bin), runs ``initdb`` into a temporary
folder and ``postgres`` on a free 127.0.0.1 port (its unix socket in that folder too), as ``nobody`` when the tests
run as root (PostgreSQL refuses root), waits until it accepts connections, and stops it (and removes the folder) on
exit. ``new_database(url)`` makes an empty database on it for one test. setup.sh installs ``postgresql`` where no
binary is found; without one the ``postgres_url`` fixture (tests/conftest.py) skips."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

USER = "maskwatch"
NOBODY = 65534


def postgres_bin() -> Path | None:
    """The folder with ``initdb`` and ``postgres``, or None."""
    found = shutil.which("postgres")
    candidates = [Path(found).parent] if found else []
    candidates += [
        Path("/usr/local/bin"),
        *(Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)),
    ]
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "postgres").is_file()), None)


def _as_user() -> list[str]:
    """The prefix that runs a command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    return ["runuser", "-u", "nobody", "--"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[str]:
    """A running server; yields its URL (``postgresql://maskwatch@127.0.0.1:PORT/postgres``, trust auth)."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL binaries (initdb, postgres) found")
    root = Path(tempfile.mkdtemp(prefix="maskwatch-pg-"))
    data = root / "data"
    prefix = _as_user()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    proc = None
    try:
        if prefix:
            os.chown(root, NOBODY, NOBODY)
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, env=env, cwd=root, timeout=120,
        )  # fmt: skip
        port = _free_port()
        log = (root / "server.log").open("ab")
        proc = subprocess.Popen(
            [*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True,
        )  # fmt: skip
        url = f"postgresql://{USER}@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + timeout
        while not _accepts(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # "fast" shutdown: rolls back sessions, stops at once
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _accepts(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def new_database(url: str) -> str:
    """A fresh empty database on the server at ``url``; its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name
