"""Training (needs PyTorch): configuration, augmentation presets, the torch dataset and loader, feature cache for
frozen backbones, the trainer, checkpoints, prediction, calibration, export to ONNX, `maskwatch evaluate`,
weight interpolation, embeddings for near-duplicates and `data inspect`."""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "TrainResult", "resume", "train", "train_step"]


def __getattr__(name: str) -> Any:  # lazy, so that runtime code can import train.augment alone
    if name == "TrainConfig":
        from maskwatch.train.config import TrainConfig

        return TrainConfig
    if name in ("TrainResult", "resume", "train", "train_step"):
        from maskwatch.train import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
