"""Model calls off the event loop: a thread pool behind a counter of pending calls.

A request that would make more than ``max_pending`` calls wait gets ``Busy`` at once (the API answers 503
with Retry-After) instead of queueing without bound: latency stays bounded under overload.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Every slot of the queue is taken."""


class InferenceQueue:
    def __init__(self, max_pending: int = 16, workers: int = 1) -> None:
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="maskwatch-infer")
        self._lock = threading.Lock()
        self.pending = 0
        self.served = 0
        self.rejected = 0

    async def run(self, func: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self.pending >= self.max_pending:
                self.rejected += 1
                raise Busy
            self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)
        finally:
            with self._lock:
                self.pending -= 1
                self.served += 1

    def full(self) -> bool:
        return self.pending >= self.max_pending

    def stats(self) -> dict[str, int]:
        names = ("pending", "max_pending", "served", "rejected")
        return {name: getattr(self, name) for name in names}

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
