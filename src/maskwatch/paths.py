"""Where maskwatch keeps caches (face crops, file index, backbone features)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$MASKWATCH_CACHE``, else ``$XDG_CACHE_HOME/maskwatch``, else ``~/.cache/maskwatch``."""
    env = os.environ.get("MASKWATCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "maskwatch"
