"""Where maskwatch keeps caches (face crops, file index, backbone features), and checks on output paths."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from maskwatch.errors import MaskwatchError


def cache_dir() -> Path:
    """``$MASKWATCH_CACHE``, else ``$XDG_CACHE_HOME/maskwatch``, else ``~/.cache/maskwatch``."""
    env = os.environ.get("MASKWATCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "maskwatch"


def is_stdout(path: Path | str | None) -> bool:
    """``-`` given as an output file (``--jsonl -``) means standard output; messages and progress bars go to
    stderr."""
    return path is not None and str(path) == "-"


def check_output_path(option: str, path: Path | None, folder: bool = True) -> None:
    """Refuse, before any work, an output folder (``folder``) or file that cannot be written (None: not given)."""
    if path is None:
        return
    if path.exists() and path.is_dir() != folder:
        kind, want = ("a file", "a folder") if folder else ("a folder", "a file")
        raise MaskwatchError(f"{option} {path} is {kind}; give {want}")
    full = path.absolute()
    start = full if folder else full.parent  # an existing output file is written over, as a re-run does
    existing = next(p for p in (start, *start.parents) if p.exists())  # the root always exists
    if not existing.is_dir():
        raise MaskwatchError(f"{option} {path}: cannot create it, {existing} is a file")
    try:  # the real test (permissions, read-only or pseudo file systems): make and remove a folder there
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as exc:
        raise MaskwatchError(f"{option} {path}: cannot write in {existing} ({exc.strerror})") from None
