"""The server's options and limits; the CLI fills them, tests build them directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from maskwatch.detect.config import DetectorConfig
from maskwatch.errors import MaskwatchError


@dataclass
class ServeSettings:
    model: str | None = None  # None: the shipped classifier (or $MASKWATCH_MODEL)
    db: Path = Path("runs/serve/events.sqlite")
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # when set, /api/* (but health) needs header X-API-Key; the WebSocket ?api_key=
    cors_origins: list[str] = field(default_factory=list)  # empty: CORS off
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000  # larger images are refused (413) before they are decoded
    max_pending: int = 16  # requests running or waiting for the model; more get 503
    workers: int = 1  # inference threads (onnxruntime already uses every core in each)
    live_log_seconds: float = 5.0  # a live stream logs the counts of its latest frame at most this often
    store_images: Path | None = None  # save every uploaded image here (off by default)
    detector: DetectorConfig = field(default_factory=DetectorConfig)  # face detection and crop settings
    read_timeout: float = 30.0  # seconds to receive an upload (408 after)

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
        ]
        for ok, message in checks:
            if not ok:
                raise MaskwatchError(message)

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's own limits. No cap on connections (``limit_concurrency``): uvicorn counts idle sockets and open
        live pages too, so a few dozen of them shut everyone out with a plain-text 503; the inference queue
        refuses work instead (JSON 503 with Retry-After). WebSocket messages may be up to 4 times the upload
        limit, so a frame over the limit gets the per-frame JSON error and the stream goes on; uvicorn closes the
        stream (1009) only beyond that."""
        return {"ws_max_size": 4 * self.max_upload_bytes}
