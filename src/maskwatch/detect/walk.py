"""Searching folders and glob matches for media files so that no entry is passed over in silence.

Every entry whose name says image or video ends as a file to read or as a problem that names it: symbolic link
loops, dangling links, FIFOs and devices (never opened: reading a FIFO blocks), folders that cannot be listed,
formats this Pillow cannot decode. Other files (text, annotations) are passed over, and counted where the caller
asks. Links to folders are followed, once each; a link back up to a folder that holds it is a problem.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from maskwatch.data.images import file_type


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
