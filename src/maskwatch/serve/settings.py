"""The server's options and limits; the CLI fills them, tests build them directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from maskwatch.detect.config import DetectorConfig
from maskwatch.errors import MaskwatchError
from maskwatch.monitor.config import MonitorSettings
from maskwatch.store.engine import StoreTarget, parse_store

ENGINES = ("local", "ray")  # where the cameras run: in this server, or as Ray actors (scale/cameras.py)
WILDCARD = ("0.0.0.0", "::", "")  # bind addresses meaning every interface
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServeSettings:
    model: str | None = None  # None: the shipped classifier (or $MASKWATCH_MODEL)
    db: Path = Path("runs/serve/events.sqlite")
    store: str | None = None  # the event store's URL (sqlite:///PATH, postgresql://...); None: SQLite at db
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # when set, /api/* (but health) needs header X-API-Key; the WebSocket ?api_key=
    cors_origins: list[str] = field(default_factory=list)  # empty: CORS off
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000  # larger images are refused (413) before they are decoded
    max_pending: int = 16  # requests running or waiting for the model; more wait in line (queue_wait), then 503
    queue_wait: float = 1.0  # seconds a request beyond max_pending waits in line (before its body is read)
    workers: int = 1  # inference threads (onnxruntime already uses every core in each)
    live_log_seconds: float = 5.0  # a live stream logs the counts of its latest frame at most this often
    store_images: Path | None = None  # save every uploaded image here (off by default)
    detector: DetectorConfig = field(default_factory=DetectorConfig)  # face detection and crop settings
    monitor: MonitorSettings | None = None  # cameras and person events (cli/monitor.py); None: the kept cameras only
    read_timeout: float = 30.0  # seconds to receive an upload (408 after)
    allowed_hosts: list[str] = field(default_factory=list)  # Host names answered besides loopback and host; "*": any
    engine: str = "local"  # "ray": each camera in a Ray actor (needs the scale extra)
    address: str | None = None  # the Ray cluster's head (HOST:PORT, or "auto"); None: a Ray of this machine's own
    camera_cpus: float = 0.5  # with --engine ray: CPUs Ray reserves for each camera's actor (fractional)

    def validate(self) -> None:
        checks = [
            (self.max_upload_bytes > 0, "--max-upload-mb must be positive"),
            (self.max_pixels > 0, "--max-pixels must be positive"),
            (
                self.max_pixels < 2 * Image.MAX_IMAGE_PIXELS,  # Pillow refuses to open larger images at all
                f"--max-pixels must be under {2 * Image.MAX_IMAGE_PIXELS:,} (Pillow's decompression-bomb limit)",
            ),
            (self.max_pending >= 1, "--queue must be at least 1"),
            (self.workers >= 1, "--workers must be at least 1"),
            (self.live_log_seconds >= 0, "--live-log-seconds must be 0 or more"),
            (0 < self.port < 65536, "--port must be between 1 and 65535"),
            (
                self.api_key is None
                or (len(self.api_key) >= 8 and self.api_key.isascii() and self.api_key.strip() == self.api_key),
                "--api-key must be at least 8 ASCII characters, without surrounding spaces",
            ),
            (self.read_timeout > 0, "--read-timeout must be positive"),
            (self.engine in ENGINES, f"--engine must be one of {', '.join(ENGINES)} (got {self.engine!r})"),
            (self.address is None or self.engine == "ray", "--address is the Ray cluster of --engine ray"),
            (0 < self.camera_cpus <= 64, "--camera-cpus must be above 0 and at most 64"),
            (0 <= self.queue_wait <= 60, "--queue-wait must be between 0 and 60 seconds"),
            (
                all(h and h.strip() == h and "/" not in h and " " not in h for h in self.allowed_hosts),
                "--allowed-host takes a host name or address (no scheme, path or spaces), or '*'",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise MaskwatchError(message)
        self.store_target()  # a bad --store URL, or psycopg missing: one line before anything loads
        if self.engine == "ray":
            from maskwatch.scale.cluster import require_ray

            require_ray()  # not installed: one line saying what to install, before the model loads

    def store_target(self) -> StoreTarget:
        """Where the events go: ``store`` parsed, or the SQLite file ``db``."""
        return parse_store(self.store) if self.store else StoreTarget(path=self.db)

    def trusted_hosts(self) -> frozenset[str]:
        """The Host names the server answers (without port): loopback, the bound address, --allowed-host."""
        names = {"localhost", "127.0.0.1", "::1", "[::1]", *self.allowed_hosts}
        if self.host not in WILDCARD:  # 0.0.0.0 is no name a client sends: name the server with --allowed-host
            names.add(self.host)
        names |= {f"[{n}]" for n in names if ":" in n and not n.startswith("[")}  # IPv6 in a Host is bracketed
        return frozenset(n.lower() for n in names)

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's own limits. No cap on connections (``limit_concurrency``): uvicorn counts idle sockets and open
        live pages too, so a few dozen of them shut everyone out with a plain-text 503; the inference queue
        refuses work instead (JSON 503 with Retry-After). WebSocket messages may be up to 4 times the upload
        limit, so a frame over the limit gets the per-frame JSON error and the stream goes on; uvicorn closes the
        stream (1009) only beyond that."""
        return {"ws_max_size": 4 * self.max_upload_bytes}
