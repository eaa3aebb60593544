"""``maskwatch serve``: options → ``ServeSettings`` → uvicorn. Light at import time (fastapi and uvicorn load when
it runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from maskwatch.cli.common import friendly, open_pipeline
from maskwatch.cli.monitor import (
    CameraOption,
    CamerasOption,
    MaxPersonOption,
    MqttOption,
    PublicUrlOption,
    RetentionOption,
    SnapshotsOption,
    WebhookOption,
    monitor_settings,
)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command()(friendly(serve))


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Classifier (.onnx, .pt or run folder); default: shipped.")
    ] = None,
    db: Annotated[Path, typer.Option(help="SQLite event log.")] = Path("runs/serve/events.sqlite"),
    store: Annotated[
        str | None,
        typer.Option(
            envvar="MASKWATCH_STORE",
            help="Event store URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (several servers may share "
            "one; needs the scale extra, psycopg); default: the SQLite file --db.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="Require this key (header X-API-Key) for the API and WebSocket; $MASKWATCH_API_KEY."),
    ] = None,
    cors: Annotated[
        list[str] | None,
        typer.Option(help="Allow cross-origin requests from this origin; repeatable. Off by default."),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Also answer requests for this Host name (besides localhost, 127.0.0.1, ::1 and --host); "
            "repeatable; '*': any (turns off the DNS-rebinding check)."
        ),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload (413 above).")] = 10.0,
    max_pixels: Annotated[
        int, typer.Option(help="Largest image in pixels (413 above, checked before decoding).")
    ] = 40_000_000,
    queue: Annotated[
        int, typer.Option(help="Requests running or waiting for the model; more wait in line (--queue-wait), then 503.")
    ] = 16,
    queue_wait: Annotated[
        float, typer.Option(help="Seconds a request beyond --queue waits for its turn (before its upload is read).")
    ] = 1.0,
    workers: Annotated[int, typer.Option(help="Inference threads.")] = 1,
    det_size: Annotated[int | None, typer.Option(help="Face detector input size (default 800).")] = None,
    live_log_seconds: Annotated[float, typer.Option(help="Live streams log their counts at most this often.")] = 5.0,
    read_timeout: Annotated[float, typer.Option(help="Seconds to receive an upload (408 after).")] = 30.0,
    camera: CameraOption = None,
    cameras: CamerasOption = None,
    webhook: WebhookOption = None,
    mqtt: MqttOption = None,
    public_url: PublicUrlOption = None,
    snapshots: SnapshotsOption = "blurred",
    retention_days: RetentionOption = 30.0,
    max_person_seconds: MaxPersonOption = 300.0,
    store_images: Annotated[
        Path | None, typer.Option(help="Also save every uploaded image in this folder (off by default).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="Where the cameras run: local (in this server) or ray (each camera a Ray actor).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="With --engine ray: the Ray cluster's head HOST:PORT; default a Ray of its own.")
    ] = None,
    camera_cpus: Annotated[float, typer.Option(help="With --engine ray: CPUs reserved per camera actor.")] = 0.5,
) -> None:
    """Web app and REST API: upload page, live webcam page, compliance dashboard; API docs at /docs."""
    import uvicorn

    from maskwatch.detect.config import DetectorConfig
    from maskwatch.paths import check_output_path
    from maskwatch.progress import console
    from maskwatch.serve.app import create_app
    from maskwatch.serve.settings import LOOPBACK, WILDCARD, ServeSettings

    settings = ServeSettings(
        model=model,
        db=db,
        store=store,
        host=host,
        port=port,
        api_key=api_key or os.environ.get("MASKWATCH_API_KEY") or None,
        cors_origins=list(cors or []),
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_pixels=max_pixels,
        max_pending=queue,
        queue_wait=queue_wait,
        allowed_hosts=list(allowed_host or []),
        workers=workers,
        live_log_seconds=live_log_seconds,
        store_images=store_images,
        detector=DetectorConfig() if det_size is None else DetectorConfig(size=det_size),
        read_timeout=read_timeout,
        engine=engine,
        address=address,
        camera_cpus=camera_cpus,
        monitor=monitor_settings(
            camera,
            cameras,
            snapshots,
            retention_days,
            max_person_seconds,
            webhook=webhook,
            mqtt=mqtt,
            public_url=public_url,
        ),
    )
    check_output_path("--db", db, folder=False)
    check_output_path("--store-images", store_images)
    settings.validate()  # every setting is checked before the model loads
    web = create_app(settings, pipeline=open_pipeline(settings.model, settings.detector))
    shown = "localhost" if host in ("127.0.0.1", *WILDCARD) else f"[{host}]" if ":" in host else host
    log = settings.store_target().shown
    console.print(f"maskwatch serving on http://{shown}:{port}  (API docs /docs, log {log}; Ctrl+C stops)")
    if host not in LOOPBACK and not settings.api_key:
        console.print(
            "[yellow]warning: bound beyond this machine without --api-key: anyone who can reach it can use it "
            "and read its log; set --api-key (or $MASKWATCH_API_KEY)"
        )
    if host in WILDCARD and not settings.allowed_hosts:
        console.print(
            "[yellow]only requests for localhost, 127.0.0.1 and ::1 are answered (400 for any other Host): name "
            "the server with --allowed-host NAME (the name or address clients use), or --allowed-host '*'"
        )
    uvicorn.run(
        web,
        host=host,
        port=port,
        log_level="warning",
        **settings.uvicorn_options(),
    )
