"""The monitor's person events through the alert rules: each committed person event of a camera goes to
``Alerter.consider`` with that camera's rule (``CameraConfig.alert_*``), so an alert is raised, logged and sent
(``monitor/alerts.py``) without the camera waiting on any receiver."""

from __future__ import annotations

from collections.abc import Callable

from maskwatch.monitor.alerts import Alerter, AlertRule
from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.monitor.people import PersonEvent
from maskwatch.monitor.store import MonitorStore

SNAPSHOT_URL = "/api/v1/snapshots/{id}.jpg"  # serve/routes/people.py serves it


def rule_of(camera: CameraConfig) -> AlertRule:
    return AlertRule(
        labels=tuple(camera.alert_labels),
        min_frames=camera.alert_min_frames,
        min_share=camera.alert_min_votes,
        cooldown=camera.alert_cooldown,
    )


def person_of(event: PersonEvent) -> dict:
    return {
        "id": event.id,
        "camera": event.camera,
        "label": event.label,
        "vote_share": event.vote_share,
        "frames": event.frames,
        "first_seen": event.first_seen,
        "last_seen": event.last_seen,
        "face_px": event.face_px,
        "snapshot": SNAPSHOT_URL.format(id=event.id) if event.snapshot_path else None,
    }


def alerting(store: MonitorStore, settings: MonitorSettings, config_of: Callable[[str], CameraConfig]):
    """(the Alerter on the monitor's store, the ``Monitor.on_person`` listener that feeds it). The alerts live in
    the same store as the people (its ``Database``: the SQLite file, or the PostgreSQL several servers share)."""
    alerter = Alerter(store.db, settings.alert_targets, public_url=settings.public_url)

    def listener(event: PersonEvent) -> None:
        alerter.consider(person_of(event), rule_of(config_of(event.camera)))

    return alerter, listener
