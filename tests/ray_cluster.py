"""A real local Ray cluster for the tests: ``ray start --head`` on 127.0.0.1, once per test session.

Tests that need Ray take the ``ray_address`` fixture (conftest.py); it skips with a reason where Ray is not installed
(it comes with ``pip install '.[scale]'``). The cluster runs in its own temporary folder and is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli() -> str | None:
    """The ``ray`` command of this Python's environment (None: Ray is not installed)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return None
    path = Path(sys.executable).with_name("ray")
    return str(path) if path.exists() else shutil.which("ray")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def head_node(num_cpus: int = 2) -> Iterator[str]:
    """Start a Ray head node on 127.0.0.1 and yield its address (``127.0.0.1:PORT``); stop it afterwards."""
    cli = ray_cli()
    if cli is None:
        raise RuntimeError("ray is not installed")
    # a short temp folder: Ray's socket paths must stay under the kernel's 107-byte limit
    tmp = tempfile.mkdtemp(prefix="mwray-", dir="/tmp")
    port = free_port()
    # token auth off: a test cluster on this machine only (a token file in ~/.ray would otherwise switch it on)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_IMPORT_WARNING": "1"}
    cmd = [
        cli, "start", "--head", f"--port={port}", f"--num-cpus={num_cpus}",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}",
    ]  # fmt: skip
    # --block keeps `ray start` in the foreground as the parent of the cluster's processes, in a process group of
    # its own: stopping that group stops this cluster only (`ray stop` would stop every Ray on the machine)
    started = time.monotonic()
    log = open(Path(tmp) / "ray-start.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([*cmd, "--block"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() - started > 120:
                text = (Path(tmp) / "ray-start.log").read_text(errors="replace").strip()[-500:]
                raise RuntimeError(f"ray start failed (exit {proc.poll()}): {text}")
            time.sleep(0.2)
        os.environ["MASKWATCH_TEST_RAY_START_S"] = f"{time.monotonic() - started:.1f}"
        yield address
    finally:
        _stop_group(proc)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
