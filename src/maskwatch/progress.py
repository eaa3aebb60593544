"""Progress bars and user-facing console output (rich), shared by the library and the CLI.

Set ``MASKWATCH_QUIET=1`` to silence progress bars (tests and logs); messages still print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
console = Console(stderr=True, highlight=False, soft_wrap=True)


# C0 and C1 control characters, DEL, the bidirectional overrides and isolates (which reorder what a terminal shows),
# and lone surrogates (the bytes of a file name that is not UTF-8, which a terminal cannot even be sent)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that os.fsdecode could not decode: show that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` (a file name, a URL, a reason) safe to print to a terminal: control characters, bidirectional
    overrides and undecodable bytes written as escapes (``\\n``, ``\\x1b``, ``\\u202e``), all else as it is.
    Every human-readable line that shows a name goes through this (or ``shown``); JSON needs nothing
    (``json.dumps`` escapes them already)."""
    return _UNPRINTABLE.sub(_escape_char, str(text))


def shown(text: object) -> str:
    """``printable`` and escaped for rich markup: a name to put inside a ``console.print`` markup string (a file
    called ``IMG [party].jpg`` is no markup, one called ``a\\x1b[31mb.jpg`` no colour)."""
    return escape(printable(text))


def quiet() -> bool:
    return os.environ.get("MASKWATCH_QUIET", "") not in ("", "0")


def make_progress(*extra_columns: TextColumn) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet(),
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (rich), or silently when quiet."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def info(message: str) -> None:
    console.print(message)
