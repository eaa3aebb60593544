"""A ``maskwatch serve`` of its own in a subprocess, on a free port: for the load benchmark, the screenshots and
the tests that need a real server (a real socket, a real process to kill). Also a fake-camera video for Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from maskwatch.errors import MaskwatchError

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class LocalServer:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 5) -> dict:
    """GET a JSON document, bypassing any proxy settings (the server is local)."""
    with _NO_PROXY.open(url, timeout=timeout) as response:
        return json.load(response)


@contextmanager
def local_server(db: Path, *args: str, timeout: float = 90, log: Path | None = None) -> Iterator[LocalServer]:
    """Start ``maskwatch serve --db DB ARGS...`` on a free port, wait until its health answers, yield it, stop it.
    Its output goes to ``log`` (default: beside the database)."""
    port = free_port()
    log = log or Path(db).with_suffix(".log")
    cmd = [sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port), "--db", str(db), *args]
    with Path(log).open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "MASKWATCH_QUIET": "1"})
        server = LocalServer(f"http://127.0.0.1:{port}", proc)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    tail = Path(log).read_text(errors="replace")[-1000:]
                    raise MaskwatchError(f"server exited with {proc.returncode}: {tail}")
                try:
                    if get_json(f"{server.url}/api/v1/health", timeout=2).get("status") == "ok":
                        break
                except (OSError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise MaskwatchError(f"server did not answer within {timeout:g} s (log: {log})")
                time.sleep(0.25)
            yield server
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def chromium_args(camera: Path) -> list[str]:
    """Headless Chromium flags: no sandbox (containers), camera allowed without asking, fed from ``camera`` (Y4M)."""
    return [
        "--no-sandbox",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]


def fake_camera_video(image: Path, out: Path, width: int = 640, frames: int = 2) -> Path:
    """``image`` as a still Y4M video (4:2:0), the format Chromium's ``--use-file-for-fake-video-capture`` plays."""
    from PIL import Image

    with Image.open(image) as im:
        rgb = im.convert("RGB")
    height = round(rgb.height * width / rgb.width) // 2 * 2
    y, cb, cr = rgb.resize((width, height)).convert("YCbCr").split()
    half = (width // 2, height // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    out.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return out
