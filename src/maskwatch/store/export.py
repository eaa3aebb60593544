"""What the event log's and the monitor's CSV exports share: keyset pages over the store and cells spreadsheets
will not run as formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Column, Row, Select, tuple_

from maskwatch.store.engine import Database


def keyset_pages(db: Database, sql: Select, keys: Sequence[Column], chunk: int) -> Iterator[Sequence[Row]]:
    """The rows of ``sql`` in the order of ``keys`` (which it must select), ``chunk`` at a time: each page starts
    after the last row's keys, which an index on them serves directly, however deep the page."""
    last: tuple[Any, ...] = (-1.0, 0)
    with db.read() as conn:
        while True:
            page = sql.where(tuple_(*keys) > tuple_(*last)).order_by(*keys).limit(chunk)
            rows = conn.execute(page).all()
            if not rows:
                return
            yield rows
            last = tuple(rows[-1]._mapping[key] for key in keys)


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def safe_cell(text: str) -> str:
    """A text cell spreadsheets will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
