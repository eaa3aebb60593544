"""Running a trained classifier (PyTorch) over samples or image files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maskwatch.data.dataset import Sample
from maskwatch.errors import MaskwatchError
from maskwatch.models import MaskNet
from maskwatch.progress import track
from maskwatch.train.augment import eval_transform
from maskwatch.train.dataset import ImageDataset
from maskwatch.train.loader import QuietLoader


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise MaskwatchError(f"unknown device '{device}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MaskwatchError(f"--device {device}: no CUDA GPU is available here (use --device auto or cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise MaskwatchError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MaskwatchError(f"--device {device}: MPS is not available here (use --device auto or cpu)")
    return dev


def default_workers() -> int:
    import os

    return min(4, max(0, (os.cpu_count() or 1) - 1))


@torch.inference_mode()
def predict_batches(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    description: str = "predicting",
    logits: bool = False,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Softmax probabilities (or raw logits) for every batch of (images, targets) a loader yields, in order;
    ``check()``, if given, is called after each batch (the trainer's way to stop at an interrupt)."""
    model.eval()
    out = []
    for images, _ in track(loader, description, total=len(loader)):
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            scores = model(images).float()
        out.append((scores if logits else scores.softmax(dim=1)).cpu())
        if check is not None:
            check()
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def predict_samples(
    model: MaskNet,
    samples: Sequence[Sample],
    labels: Sequence[str],
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    workers: int | None = None,
    logits: bool = False,
    prepare: Callable[[Image.Image], Image.Image] | None = None,
) -> np.ndarray:
    """Softmax probabilities (or logits) of ``samples``, in order; ``prepare`` changes each image first."""
    dev = pick_device(device) if isinstance(device, str) else device
    model.to(dev).to(memory_format=torch.channels_last)
    tf = eval_transform(model.input_size, model.spec.mean, model.spec.std)
    if prepare is not None:
        resize = tf

        def tf(image: Image.Image) -> torch.Tensor:
            return resize(prepare(image))

    loader = QuietLoader(
        ImageDataset(samples, labels, tf),
        batch_size=batch_size,
        shuffle=False,
        num_workers=default_workers() if workers is None else workers,
    )
    return predict_batches(model, loader, dev, logits=logits)


class Classifier:
    """A trained model plus its labels and preprocessing, for face images (PyTorch backend)."""

    backend = "torch"

    def __init__(self, model: MaskNet, labels: Sequence[str], device: str = "auto") -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.labels = list(labels)
        self.transform = eval_transform(model.input_size, model.spec.mean, model.spec.std)

    @classmethod
    def load(cls, model: str | Path, device: str = "auto") -> Classifier:
        from maskwatch.train.checkpoint import load_model

        net, meta = load_model(model)
        return cls(net, meta["labels"], device)

    @torch.inference_mode()
    def predict_images(self, images: Sequence) -> np.ndarray:
        if not len(images):
            return np.zeros((0, len(self.labels)), np.float32)
        pil = [im if isinstance(im, Image.Image) else Image.fromarray(im) for im in images]
        batch = torch.stack([self.transform(im) for im in pil]).to(self.device)
        return self.model(batch).float().softmax(dim=1).cpu().numpy()

    def describe(self) -> dict:
        return {"backend": self.backend, "model": self.model.spec.name, "labels": self.labels}


def checkpoint_classifier(model: str | Path, backend: str = "auto", device: str = "auto"):
    """A face classifier for a training checkpoint or run folder: PyTorch (``backend`` auto or torch), or exported
    to ONNX once and run with onnxruntime (``onnx``)."""
    if backend == "onnx":
        from maskwatch.runtime.onnx import OnnxClassifier
        from maskwatch.train.export import exported_onnx

        return OnnxClassifier(exported_onnx(model))
    return Classifier.load(model, device)
