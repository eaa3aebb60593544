"""Searching folders and glob matches for media files so that no entry is passed over in silence.

Every entry whose name says image or video ends as a file to read or as a problem that names it: symbolic link
loops, dangling links, FIFOs and devices (never opened: reading a FIFO blocks), folders that cannot be listed,
formats this Pillow cannot decode. Other files (text, annotations) are passed over, and counted where the caller
asks. Links to folders are followed, once each; a link back up to a folder that holds it is a problem.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import stat
from collections.abc import Callable

from maskwatch.data.images import file_type
from maskwatch.errors import MaskwatchError


def link_problem(path: str, exc: OSError) -> str:
    """Why the link (or file) at ``path`` cannot be followed, given the ``os.stat`` error."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (it points back to itself)"
    if os.path.islink(path) and exc.errno == errno.ENOENT:
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"dangling symbolic link (its target {target} does not exist)"
    return f"cannot read ({exc.strerror or exc})"


def not_a_file(path: str) -> str:
    """Why a path that exists but is neither a regular file nor a folder cannot be read (a FIFO, a device, a link
    that leads nowhere)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return link_problem(path, exc)
    return f"not a file or folder: {file_type(st.st_mode)}"


class Walk:
    """Collects ``files`` (media by ``is_media``, regular, decodable) and ``problems`` ((path, reason)) from
    ``folder`` and ``entry`` calls; ``unsupported(suffix)`` gives the reason a format cannot be decoded, or None.
    Paths passed over (not media by name) go to ``ignored`` when given."""

    def __init__(
        self,
        is_media: Callable[[str], bool],
        unsupported: Callable[[str], str | None],
        ignored: list[str] | None = None,
    ) -> None:
        self.is_media, self.unsupported, self.ignored = is_media, unsupported, ignored
        self.files: list[str] = []
        self.problems: list[tuple[str, str]] = []
        self._seen: set[str] = set()
        self._ancestors: list[tuple[int, int]] = []  # (device, inode) of the folders being listed

    def folder(self, path: str) -> Walk:
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
            if key in self._ancestors:
                self.problems.append((path, "symbolic link loop (it points to a folder that holds it)"))
                return self
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
        except OSError as exc:
            self.problems.append((path, f"cannot list folder ({exc.strerror or exc})"))
            return self
        self._ancestors.append(key)
        try:
            for name in names:
                self.entry(os.path.join(path, name))
        finally:
            self._ancestors.pop()
        return self

    def entry(self, path: str) -> None:
        try:
            mode = os.lstat(path).st_mode
        except OSError as exc:  # gone since it was listed
            self.problems.append((path, f"cannot read ({exc.strerror or exc})"))
            return
        media = self.is_media(path)
        if stat.S_ISLNK(mode):
            try:
                mode = os.stat(path).st_mode
            except OSError as exc:
                if media or exc.errno == errno.ELOOP or not os.path.splitext(path)[1]:  # (it may be a folder's)
                    self.problems.append((path, link_problem(path, exc)))
                elif self.ignored is not None:
                    self.ignored.append(path)
                return
        if stat.S_ISDIR(mode):
            self.folder(path)
        elif not media:
            if self.ignored is not None:
                self.ignored.append(path)
        elif not stat.S_ISREG(mode):  # a FIFO called photo.jpg is never opened
            self.problems.append((path, f"not a regular file: {file_type(mode)}"))
        elif reason := self.unsupported(os.path.splitext(path)[1]):
            self.problems.append((path, reason))
        elif path not in self._seen:
            self._seen.add(path)
            self.files.append(path)


# ----------------------------------------------------------------------------------------- manifests and URLs

MANIFEST_SUFFIXES = frozenset({".txt", ".csv", ".parquet"})
MANIFEST_COLUMN = "path"  # the column of a CSV or Parquet manifest that holds the paths or URLs
SCALE_HINT = "pip install 'maskwatch[scale]'"
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


def is_manifest(path: str) -> bool:
    """A SOURCE named by itself that lists the inputs: a .txt (one path or URL a line), a .csv or .parquet (a
    ``path`` column). Inside folders and globs such files are passed over like any other non-media file."""
    return os.path.splitext(path)[1].lower() in MANIFEST_SUFFIXES


def url_scheme(location: str) -> str | None:
    """The scheme of a URL (``s3``, ``file``, ...) in lower case; None for a path."""
    match = _URL.match(location)
    return match.group(1).lower() if match else None


def read_manifest(path: str) -> list[str]:
    """The entries of a manifest, in order: paths (relative ones are relative to the manifest's folder) and URLs.
    A .txt skips blank lines and lines starting with #. Raises ``MaskwatchError`` (one line) when it cannot be read."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".parquet":
            entries = _parquet_column(path)
        else:
            with open(path, encoding="utf-8", newline="") as f:
                if suffix == ".csv":
                    reader = csv.DictReader(f)
                    if MANIFEST_COLUMN not in (reader.fieldnames or []):
                        raise MaskwatchError(f"{path}: a CSV manifest needs a '{MANIFEST_COLUMN}' column")
                    entries = [row[MANIFEST_COLUMN] or "" for row in reader]
                else:
                    entries = [line for line in f.read().splitlines() if not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MaskwatchError(f"{path}: cannot read manifest ({getattr(exc, 'strerror', None) or exc})") from None
    base = os.path.dirname(path)
    out = []
    for entry in (e.strip() for e in entries):
        if entry:
            out.append(entry if url_scheme(entry) or os.path.isabs(entry) else os.path.join(base, entry))
    return out


def _parquet_column(path: str) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MaskwatchError(f"{path}: a Parquet manifest needs pyarrow: {SCALE_HINT}") from None
    try:
        table = pq.read_table(path, columns=[MANIFEST_COLUMN])
    except (OSError, ValueError, KeyError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        first = (str(exc).splitlines() or [""])[0]
        reason = f"cannot read a '{MANIFEST_COLUMN}' column of this Parquet file ({first})"
        raise MaskwatchError(f"{path}: {reason}") from None
    return [str(v) if v is not None else "" for v in table.column(MANIFEST_COLUMN).to_pylist()]


def read_url(url: str) -> bytes:
    """The bytes at ``url`` through pyarrow's file systems (file://, s3://, gs://, hdfs://, ...), or fsspec's for
    the schemes pyarrow lacks (http(s), ...) where fsspec is installed. Raises ``OSError`` with the reason."""
    try:
        from pyarrow import fs
    except ImportError:
        raise OSError(f"reading URLs needs pyarrow: {SCALE_HINT}") from None
    try:
        filesystem, where = fs.FileSystem.from_uri(url)
    except ValueError:  # a scheme pyarrow has no file system for
        try:
            import fsspec
        except ImportError:
            reason = f"no file system for {url_scheme(url)}:// (pyarrow has none, fsspec is not installed)"
            raise OSError(reason) from None
        with fsspec.open(url, "rb") as f:
            return f.read()
    with filesystem.open_input_stream(where) as stream:
        return stream.read()


def expand_manifest(spec: str, resolve: Callable, url_input: Callable, error: Callable) -> tuple[list, list]:
    """A manifest's (inputs, errors): each path ``resolve``d as a SOURCE argument is (a manifest in a manifest is
    not read), each URL an image (``url_input``); ``error(source, reason)`` makes an error."""
    try:
        entries = read_manifest(spec)
    except MaskwatchError as exc:
        return [], [error(spec, str(exc).removeprefix(f"{spec}: "))]
    if not entries:
        return [], [error(spec, "empty manifest")]
    inputs: list = []
    errors: list = []
    for entry in entries:
        if url_scheme(entry):
            inputs.append(url_input(entry))
        elif is_manifest(entry):
            errors.append(error(entry, "a manifest inside a manifest is not read"))
        else:
            found, failed = resolve(entry)
            inputs += found
            errors += failed
    return inputs, errors
