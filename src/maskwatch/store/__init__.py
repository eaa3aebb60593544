"""The event store both the server's image log (``serve/store.py``) and the camera monitor's person events
(``monitor/store.py``) keep their rows in: SQLAlchemy Core on SQLite (a file, WAL) or PostgreSQL (psycopg 3, the
``scale`` extra).

- ``engine.py``: a store URL (``sqlite:///PATH``, a bare path, ``postgresql://...``) → ``Database``: the engine, one
  writer lock per process on SQLite, ``read()`` / ``write()`` connections; one-line errors that never show a
  password.
- ``schema.py``: one ``MetaData`` for every table, the numbered migrations (a ``maskwatch_schema`` table, applied in
  one transaction, under an advisory lock on PostgreSQL), SQL that differs between the two (time buckets).
- ``export.py``: the CSV exports' keyset pages and formula-safe cells.
"""
