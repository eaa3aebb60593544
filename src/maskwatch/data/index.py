"""Per-file facts (readable?, size, byte digest, perceptual hashes), computed once and cached.

Inspection, duplicate grouping and splitting all read this index, so each image is decoded once
per change of the file (the cache is keyed by path, size and modification time).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import imagehash

from maskwatch.data.images import BadImageError, open_rgb
from maskwatch.io import read_json, write_json
from maskwatch.progress import track

INDEX_VERSION = 1


@dataclass
class FileInfo:
    ok: bool
    reason: str | None = None
    width: int = 0
    height: int = 0
    md5: str | None = None
    phash: str | None = None  # 64-bit DCT perceptual hash (imagehash.phash), hex


def file_stamp(path: Path) -> str:
    """What says a file is unchanged since it was cached: its size and modification time."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _describe(path: Path) -> FileInfo:
    try:
        image = open_rgb(path)
    except BadImageError as exc:
        return FileInfo(ok=False, reason=exc.reason)
    digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    return FileInfo(ok=True, width=image.width, height=image.height, md5=digest, phash=str(imagehash.phash(image)))


def index_files(paths: list[Path], cache_root: Path, name: str = "files") -> dict[Path, FileInfo]:
    """Describe every file in ``paths`` (absolute), reusing cached entries whose stat is unchanged."""
    key = hashlib.sha1(name.encode()).hexdigest()[:12]
    cache_file = cache_root / "index" / f"{Path(name).name or 'files'}-{key}.json"
    cached: dict[str, dict] = {}
    if cache_file.is_file():
        try:
            data = read_json(cache_file)
            if data.get("version") == INDEX_VERSION:
                cached = data["files"]
        except (OSError, ValueError, KeyError):
            cached = {}
    result: dict[Path, FileInfo] = {}
    todo: list[tuple[Path, str]] = []
    for path in paths:
        try:
            stamp = file_stamp(path)
        except OSError:
            result[path] = FileInfo(ok=False, reason="cannot read file")
            continue
        entry = cached.get(str(path))
        if entry and entry.get("stamp") == stamp:
            result[path] = FileInfo(**entry["info"])
        else:
            todo.append((path, stamp))
    if todo:
        for path, stamp in track(todo, f"reading {len(todo)} images"):
            info = _describe(path)
            result[path] = info
            cached[str(path)] = {"stamp": stamp, "info": asdict(info)}
        write_json(cache_file, {"version": INDEX_VERSION, "files": cached})
    return result
