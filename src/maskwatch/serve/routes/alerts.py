"""``/api/v1/alerts``: the alert log, newest first, each with its delivery state per target (webhook, MQTT)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from maskwatch.serve.monitoring import MonitoringDep
from maskwatch.serve.schemas import API

router = APIRouter(prefix=API, tags=["alerts"])


@router.get("/alerts", summary="Alerts raised by the cameras' rules, newest first, with their delivery states")
def alerts(
    monitoring: MonitoringDep,
    camera: Annotated[str | None, Query(max_length=64, description="one camera's name (default: all)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    alerter = monitoring.alerter
    return {"alerts": alerter.alerts(camera=camera, limit=limit) if alerter is not None else []}
