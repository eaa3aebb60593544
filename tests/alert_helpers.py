"""What the alert tests share (tests/test_alerts.py, tests/test_store_alerts.py): a real loopback webhook receiver,
polls with a deadline, and person events as ``Alerter.consider`` takes them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

T0 = 1_800_000_000.0  # a fixed "now" for person events: 2027-01-15T08:00:00Z


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def person(pid: int = 1, camera: str = "door", label: str = "without_mask", **kw) -> dict:
    p = {
        "id": pid,
        "camera": camera,
        "label": label,
        "vote_share": 0.8,
        "frames": 12,
        "first_seen": T0 - 4,
        "last_seen": T0,
        "face_px": 64.0,
        "snapshot": f"/api/monitor/snapshots/{pid}.jpg",
    }
    p.update(kw)
    return p


class Receiver:
    """A loopback HTTP receiver: answers ``statuses`` in turn (the last one repeats), after ``delay`` seconds. The
    first ``hold`` requests get no answer until ``release`` is set (then a 503): a sender stuck mid-delivery."""

    def __init__(self, statuses=(200,), delay: float = 0.0, hold: int = 0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.hold = hold
        self.bodies: list[dict] = []
        self.requests = 0
        self.release = threading.Event()  # ends any delay or hold at once (teardown)
        self._count = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._count:
                    receiver.requests += 1
                    held = receiver.requests <= receiver.hold
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                if held:
                    receiver.release.wait(60)
                    status = 503
                elif receiver.delay:
                    receiver.release.wait(receiver.delay)
                if 200 <= status < 300:
                    assert self.headers["Content-Type"] == "application/json"
                    with receiver._count:
                        receiver.bodies.append(json.loads(body))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
