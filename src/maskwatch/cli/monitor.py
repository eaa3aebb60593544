"""The camera options of ``maskwatch serve`` (``--camera``, ``--cameras``, ``--webhook``, ``--mqtt``,
``--public-url``, ``--snapshots``, ``--retention-days``, ``--max-person-seconds``) as Typer option types, and
``monitor_settings``, which turns their values into the checked ``MonitorSettings`` (a bad URL or cameras file:
one line, exit 2, through ``friendly``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the CLI stays light at import time: the monitor loads when serve runs
    from maskwatch.monitor.config import MonitorSettings

CameraOption = Annotated[
    list[str] | None,
    typer.Option(
        "--camera",
        help="Watch a camera: NAME=URL (rtsp://, http(s):// MJPEG, a video file, or a webcam index); repeatable.",
    ),
]
CamerasOption = Annotated[
    Path | None, typer.Option("--cameras", help="Cameras from a TOML file (camera tables: see docs/monitor.md).")
]
SnapshotsOption = Annotated[
    str, typer.Option("--snapshots", help="Person snapshots: blurred (faces blurred, default), full or none.")
]
RetentionOption = Annotated[
    float, typer.Option("--retention-days", help="Delete person events and snapshots older than this (0: keep).")
]
WebhookOption = Annotated[
    list[str] | None,
    typer.Option("--webhook", help="POST each alert as JSON to this URL (retried with backoff); repeatable."),
]
MqttOption = Annotated[
    list[str] | None,
    typer.Option(
        "--mqtt",
        help="Publish each alert to this MQTT broker: HOST, HOST:PORT or HOST:PORT/PREFIX (topic PREFIX/CAMERA/alerts)",
    ),
]
PublicUrlOption = Annotated[
    str | None,
    typer.Option("--public-url", help="This server's address as alert receivers reach it (for snapshot links)."),
]
MaxPersonOption = Annotated[
    float, typer.Option("--max-person-seconds", help="A person in view longer is written then, and again after.")
]


def monitor_settings(
    camera: list[str] | None = None,
    cameras: Path | None = None,
    snapshots: str = "blurred",
    retention_days: float = 30.0,
    max_person_seconds: float = 300.0,
    monitor_db: Path | None = None,
    webhook: list[str] | None = None,
    mqtt: list[str] | None = None,
    public_url: str | None = None,
) -> MonitorSettings:
    """The checked settings; raises ``MaskwatchError`` (one line naming the option) on any bad value."""
    from maskwatch.monitor.alerts import parse_mqtt, parse_webhook
    from maskwatch.monitor.config import (
        MonitorSettings,
        check_camera_files,
        load_cameras_file,
        parse_camera_option,
        unique_cameras,
    )

    found = load_cameras_file(cameras) if cameras is not None else []
    found += [parse_camera_option(text) for text in camera or []]
    unique_cameras(found)
    check_camera_files(found)
    settings = MonitorSettings(
        cameras=found,
        db=monitor_db,
        alert_targets=[parse_webhook(u) for u in webhook or []] + [parse_mqtt(a) for a in mqtt or []],
        public_url=public_url,
        snapshots=snapshots.strip().lower(),
        retention_days=retention_days,
        max_person_seconds=max_person_seconds,
    )
    settings.validate()
    return settings
