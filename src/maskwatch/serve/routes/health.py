"""``GET /api/v1/health``: model, detector, version, queue and uptime; open without the API key (for probes and
the pages)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from maskwatch import __version__
from maskwatch.labels import label_color
from maskwatch.runtime.classifiers import describe
from maskwatch.serve.deps import StateDep
from maskwatch.serve.schemas import API

router = APIRouter(prefix=API)


@router.get("/health", summary="Model, detector, version and queue state")
def health(state: StateDep) -> dict[str, Any]:
    pipeline = state.pipeline
    det = pipeline.detector
    return {
        "status": "ok",
        "version": __version__,
        "labels": pipeline.labels,
        "colors": {label: _hex(label) for label in pipeline.labels},
        "model": {k: Path(v).name if k == "path" else v for k, v in describe(pipeline.classifier).items()},
        "detector": {
            "name": type(det).__name__,
            **{k: getattr(det, k) for k in ("size", "threshold", "tiles", "box_fit") if hasattr(det, k)},
            "margin": pipeline.margin,
        },
        "auth": bool(state.settings.api_key),
        "queue": state.queue.stats(),
        "uptime_s": round(time.time() - state.started, 1),
    }


def _hex(label: str) -> str:
    return "#{:02x}{:02x}{:02x}".format(*label_color(label))
