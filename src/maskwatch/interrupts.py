"""SIGTERM (``kill``, ``timeout``, a job scheduler) ends a long command as Ctrl-C does."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Inside, SIGTERM raises KeyboardInterrupt (the trainer then stops at the next batch); the handler that was
    there before is back afterwards."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
