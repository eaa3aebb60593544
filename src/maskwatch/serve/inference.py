"""Model calls off the event loop: a thread pool behind a bounded count of pending calls, and a short line in front.

``max_pending`` calls may run or wait for the model. A request that finds them all taken waits in a line (FIFO)
for up to ``wait`` seconds, before its body is read, costing nothing but a socket; when a call ends, the first in
line is promised its place and goes on to read its upload. Only a request still in line after ``wait`` seconds is
refused (503 with a Retry-After that grows with the line): latency stays bounded under overload, and clients
that retry a 503 at once can retry at most once per ``wait`` instead of spinning the CPU the model needs.

``Admission`` is the ASGI middleware that keeps the line in front of the model routes, ``InferenceQueue.run`` the
call itself (a request that was let in uses its promised place; any other call, such as a live frame, gets
``Busy`` at once when the queue is full).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


class _Ticket:
    """A place promised to one request: ``run`` or ``settle`` gives it up, once (an object, not a flag in the
    context, so that a copy of the context made by a task in between still sees it used)."""

    __slots__ = ("open", "queue")

    def __init__(self, queue: InferenceQueue) -> None:
        self.queue, self.open = queue, True


_TICKET: ContextVar[_Ticket | None] = ContextVar("maskwatch_ticket", default=None)


class Busy(Exception):
    """Every slot of the queue is taken."""


class InferenceQueue:
    """Not thread-safe: every method is called from the event loop (the model calls run in the pool)."""

    def __init__(self, max_pending: int = 16, workers: int = 1) -> None:
        self.max_pending = max_pending
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="maskwatch-infer")
        self.pending = 0  # calls running or waiting in the pool
        self.promised = 0  # requests let out of the line that have not reached ``run`` yet
        self._line: deque[asyncio.Future[None]] = deque()
        self.served = 0
        self.rejected = 0
        self._seconds = 0.1  # moving average of one call, for Retry-After

    # ----------------------------------------------------------------------------------------------- the line
    def _room(self) -> int:
        return self.max_pending - self.pending - self.promised

    def full(self) -> bool:
        return self._room() <= 0 or bool(self._line)

    async def admit(self, wait: float) -> bool:
        """Whether a request may go on to read its upload: at once if there is room, else after waiting up to
        ``wait`` seconds in line. True promises it a place in the queue until ``settle``."""
        if not self.full():
            return True
        if wait <= 0:
            self.rejected += 1
            return False
        turn = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        try:
            async with asyncio.timeout(wait):
                await turn
        except TimeoutError:
            if not (turn.done() and not turn.cancelled()):  # else: its turn came just as its time ran out
                self._drop(turn)
                self.rejected += 1
                return False
        except BaseException:  # cancelled (shutdown): give a place it was handed to the next
            if turn.done() and not turn.cancelled():
                self.promised -= 1
                self._next()
            else:
                self._drop(turn)
            raise
        _TICKET.set(_Ticket(self))
        return True

    def _take(self) -> bool:
        """Give up this request's promised place (True if it had one)."""
        ticket = _TICKET.get()
        if ticket is None or ticket.queue is not self or not ticket.open:
            return False
        ticket.open = False
        self.promised -= 1
        return True

    def settle(self) -> None:
        """End of a request let out of the line: a place it was promised and never used (its upload was refused,
        say) goes to the next in line."""
        if self._take():
            self._next()
        _TICKET.set(None)

    def _drop(self, turn: asyncio.Future[None]) -> None:
        if turn in self._line:  # _next may have passed over it (cancelled) already
            self._line.remove(turn)

    def _next(self) -> None:
        while self._line and self._room() > 0:
            turn = self._line.popleft()
            if not turn.done():
                turn.set_result(None)
                self.promised += 1

    def retry_after(self) -> int:
        """Seconds until the requests now in line would have had their turn, at least 1, with jitter so that
        refused clients do not come back together. Not until the whole backlog is done: a client that comes back
        then still finds the queue's own work ahead of it, so the model never waits for it."""
        ahead = len(self._line) * self._seconds / self.workers
        return min(60, max(1, math.ceil(ahead * random.uniform(1.0, 1.5))))

    # ----------------------------------------------------------------------------------------------- the call
    async def run(self, func: Callable[..., T], *args: object) -> T:
        if not self._take() and self.full():  # a request let in by Admission has its place kept
            self.rejected += 1
            raise Busy
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._timed, func, args)
        finally:
            self.pending -= 1
            self.served += 1
            self._next()

    def _timed(self, func: Callable[..., T], args: tuple) -> T:
        start = time.perf_counter()
        try:
            return func(*args)
        finally:
            self._seconds += 0.2 * (time.perf_counter() - start - self._seconds)

    def stats(self) -> dict[str, int]:
        names = ("pending", "max_pending", "served", "rejected")
        return {**{name: getattr(self, name) for name in names}, "waiting": len(self._line)}

    def shutdown(self) -> None:
        for turn in self._line:
            turn.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


class Admission:
    """ASGI middleware: a POST to one of ``paths`` waits in the queue's line before anything reads it; refused, it
    gets a 503 written straight to the socket (no routing, no body read, no model, no log). (``Connection: close``
    on it, to make clients that retry at once reconnect, was measured and left out: no gain once the line is in.)"""

    def __init__(self, app: ASGIApp, *, queue: InferenceQueue, paths: Collection[str], wait: float) -> None:
        self.app, self.queue, self.paths, self.wait = app, queue, frozenset(paths), wait

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        if not await self.queue.admit(self.wait):
            return await self._refuse(send)
        try:
            await self.app(scope, receive, send)
        finally:
            self.queue.settle()

    async def _refuse(self, send: Callable) -> None:
        body = BUSY_BODY
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.queue.retry_after()).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


BUSY = "server busy: too many requests waiting for the model"
BUSY_BODY = b'{"detail":"' + BUSY.encode() + b'"}'
