"""``maskwatch serve``: the detection pipeline behind a REST API, a WebSocket for live webcams, three web pages
(upload, live, dashboard) and an SQLite log of every detection served.

- ``settings.py``: the server's limits and options (one dataclass, filled by the CLI).
- ``store.py``: the event log (SQLite in WAL mode), counts over time, CSV export.
- ``inference.py``: runs the pipeline off the event loop in a bounded queue, with a short line in front of it
  (503 when that too is full, before the upload is read).
- ``app.py``: ``create_app``, the FastAPI application put together (state, middleware, error handlers, routers).
- ``deps.py``: the shared ``ServerState`` as FastAPI dependencies; uploads, decoding, model calls and the log
  within the limits.
- ``guard.py``: the Host check (DNS rebinding), the API key and the origin rule (ASGI middleware; the WebSocket
  asks the key and origin questions itself).
- ``schemas.py``: the response models, error answers and upload body of the OpenAPI schema.
- ``routes/``: one ``APIRouter`` per resource: ``detect``, ``classify``, ``health``, ``events`` (stats, CSV),
  ``live`` (WebSocket), ``pages``; ``static/`` holds the pages' files.
- ``local.py``: a server of its own in a subprocess (benchmarks, screenshots, tests).
"""
