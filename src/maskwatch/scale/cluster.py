"""Ray, the optional engine for more than one machine: importing it (one line naming the extra when it is missing)
and starting a local Ray or joining a cluster.

Ray is never the default: ``ray.init`` takes seconds and about 750 MB for its daemons (docs/results/scale.md).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from types import ModuleType

import maskwatch
from maskwatch.errors import MaskwatchError

RAY_HINT = "pip install 'maskwatch[scale]'"
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before saying it cannot be reached


def require_ray() -> ModuleType:
    """The ``ray`` module, or a ``MaskwatchError`` that says what to install."""
    try:
        import ray
    except ImportError:
        raise MaskwatchError(f"this needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


def _check_reachable(address: str) -> None:
    """A ``host:port`` address that does not answer is one line, at once (Ray itself retries for a long while)."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise MaskwatchError(f"--address {address}: expected HOST:PORT of a Ray head node (or auto)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise MaskwatchError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})") from None


def connect(address: str | None, num_cpus: int | None) -> None:
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of ``ray start --head``, or ``auto``), or without one start
    a Ray of this process's own on this machine with ``num_cpus`` CPUs (None: all); no dashboard, quiet logs.
    Nothing happens when this process is connected already."""
    ray = require_ray()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            hint = " (its token authentication: see docs/detect.md, Ray engine)" if "uth" in first else ""
            raise MaskwatchError(f"cannot join the Ray cluster at {address}: {first}{hint}") from None
    else:  # "local": a new Ray of its own, never one that `ray start` left running on this machine
        # its workers inherit this environment: they import the maskwatch this process runs, wherever it lies
        here = str(Path(maskwatch.__file__).resolve().parents[1])
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if here not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([here, *filter(None, paths)])
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)


def disconnect() -> None:
    """Leave the cluster (a local Ray of this process's own stops)."""
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()
