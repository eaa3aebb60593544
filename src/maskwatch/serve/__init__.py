"""``maskwatch serve``: the detection pipeline behind a REST API, a WebSocket for live webcams, three web pages
(upload, live, dashboard) and an SQLite log of every detection served.

- ``settings.py``: the server's limits and options (one dataclass, filled by the CLI).
- ``store.py``: the event log (SQLite in WAL mode), counts over time, CSV export.
- ``inference.py``: runs the pipeline off the event loop in a bounded queue (503 when saturated).
- ``app.py``: ``create_app``, the FastAPI application put together (state, middleware, error handlers, routers).
- ``deps.py``: the shared ``ServerState`` as FastAPI dependencies; uploads, decoding, model calls and the log
  within the limits.
- ``guard.py``: the API key and the origin rule (HTTP middleware; the WebSocket asks the same).
- ``schemas.py``: the response models, error answers and upload body of the OpenAPI schema.
- ``routes/``: one ``APIRouter`` per resource: ``detect``, ``classify``, ``health``, ``events`` (stats, CSV),
  ``live`` (WebSocket), ``pages``; ``static/`` holds the pages' files.
- ``local.py``: a server of its own in a subprocess (benchmarks, screenshots, tests).
"""
