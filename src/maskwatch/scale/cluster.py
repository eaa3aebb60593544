"""Joining Ray, once per process: ``require_ray()`` (the one-line error when the ``scale`` extra is missing) and
``connect(address, num_cpus)`` (a running cluster at ``address``, or a Ray of this machine's own when it is None).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from maskwatch.errors import MaskwatchError

INSTALL = "pip install 'maskwatch[scale]'"
PROBE_SECONDS = 5.0  # a head node that does not accept a connection this soon is not there (Ray would retry minutes)


def require_ray() -> Any:
    """The ``ray`` module, or a one-line ``MaskwatchError`` saying what to install."""
    try:
        import ray
    except ImportError:
        raise MaskwatchError(f"--engine ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def connect(address: str | None, num_cpus: int | None) -> None:
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of its head node, or ``auto``), or start a Ray of this
    machine's own with ``num_cpus`` CPUs when ``address`` is None. Nothing happens when this process already joined
    one. A cluster that cannot be reached is a one-line ``MaskwatchError``."""
    ray = require_ray()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {"log_to_driver": True, "configure_logging": False}
    if address is None:
        options |= {"num_cpus": num_cpus, "include_dashboard": False}
    else:
        _probe(address)
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "of this machine"
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        hint = "" if address is None else " (a cluster with token authentication also needs RAY_AUTH_MODE=token here)"
        raise MaskwatchError(f"cannot reach the Ray cluster {where}: {detail}{hint}") from None


def _probe(address: str) -> None:
    """A TCP connection to the head node's port, so that a wrong address fails in seconds, not Ray's minutes."""
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise MaskwatchError(f"--address must be HOST:PORT of the Ray head node (got {address!r})")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise MaskwatchError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None
