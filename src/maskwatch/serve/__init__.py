"""``maskwatch serve``: the detection pipeline behind a REST API, a WebSocket for live webcams, three web pages
(upload, live, dashboard) and an SQLite log of every detection served.

- ``settings.py``: the server's limits and options (one dataclass, filled by the CLI).
- ``store.py``: the event log (SQLite in WAL mode), counts over time, CSV export.
- ``inference.py``: runs the pipeline off the event loop in a bounded queue (503 when saturated).
- ``app.py``: the FastAPI application (``create_app``); ``static/`` holds the pages.
"""
