"""Checkpoint files: everything needed to rebuild a trained model and, for ``last.pt``, to resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from maskwatch.errors import MaskwatchError
from maskwatch.io import save_torch
from maskwatch.models import MaskNet, create_model

FORMAT = "maskwatch-checkpoint"
VERSION = 1


def model_meta(model: MaskNet, labels: list[str]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "model_name": model.spec.name,
        "labels": list(labels),
        "input_size": model.input_size,
        "mean": list(model.spec.mean),
        "std": list(model.spec.std),
        "dropout": model.dropout,
        "pretrained": model.pretrained,
    }


def save_checkpoint(path: Path, model: MaskNet, labels: list[str], **state: Any) -> None:
    """Write atomically: a killed process never leaves a half-written checkpoint."""
    payload = model_meta(model, labels)
    payload["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload.update(state)
    save_torch(path, payload)


def resolve_model_path(model: str | Path) -> Path:
    """A checkpoint file, or a run folder (its best.pt, else last.pt)."""
    path = Path(model).expanduser()
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise MaskwatchError(f"no best.pt or last.pt in run folder {path}")
    if not path.is_file():
        raise MaskwatchError(f"model not found: {path} (give a checkpoint .pt or a run folder)")
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise MaskwatchError(
            f"{path} is not a maskwatch checkpoint (torch cannot load it: {type(exc).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MaskwatchError(f"{path} is not a maskwatch checkpoint")
    return payload


def load_model(model: str | Path) -> tuple[MaskNet, dict[str, Any]]:
    """Rebuild a trained model (eval mode, CPU) and return it with its checkpoint's metadata."""
    path = resolve_model_path(model)
    payload = read_checkpoint(path)
    net = create_model(
        payload["model_name"],
        len(payload["labels"]),
        pretrained=False,
        dropout=payload["dropout"],
        input_size=payload["input_size"],
    )
    net.load_state_dict(payload["model"])
    net.pretrained = payload.get("pretrained")
    net.eval()
    payload["path"] = str(path)
    return net, payload
