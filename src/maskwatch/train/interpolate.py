"""Weight-space interpolation between a trained model and a fine-tuned copy of it (WiSE-FT).

``weights = (1 - alpha) * base + alpha * tuned``, parameter by parameter (batch-norm statistics included).
Fine-tuning on new data (synthetic masks, a new camera) moves a model away from what it did well; a model
fine-tuned from ``base`` (``maskwatch train --init``) stays in the same basin, so the straight line between
the two is a family of working models that trades the new skill against the old one, and ``alpha`` picks a
point on it on validation data (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022).

The mixed logits are on neither model's scale, so the temperature is fitted again on the validation part of
a saved split when data are given (as ``train`` does after training); without data it is interpolated too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskwatch.errors import MaskwatchError
from maskwatch.io import write_json
from maskwatch.models import MaskNet, create_model
from maskwatch.progress import info
from maskwatch.train.calibration import temperature_scaling
from maskwatch.train.checkpoint import read_checkpoint, resolve_model_path, save_checkpoint
from maskwatch.train.predict import predict_samples


def interpolate_states(
    base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * base + alpha * tuned`` for floating-point tensors; counters (integers) come from ``tuned``."""
    if base.keys() != tuned.keys():
        missing = sorted(base.keys() ^ tuned.keys())
        raise MaskwatchError(f"the two models have different layers ({', '.join(missing[:3])} ...)")
    out: dict[str, torch.Tensor] = {}
    for key, a in base.items():
        b = tuned[key]
        if a.shape != b.shape:
            raise MaskwatchError(f"the two models differ in shape at {key}: {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.is_floating_point():
            out[key] = torch.lerp(a.float(), b.float(), alpha).to(a.dtype)
        else:
            out[key] = b.clone()
    return out


def _load(path: str | Path) -> dict[str, Any]:
    resolved = resolve_model_path(path)
    payload = read_checkpoint(resolved)
    payload["path"] = str(resolved)
    return payload


def interpolate(
    base: str | Path,
    tuned: str | Path,
    alpha: float,
    out: str | Path,
    *,
    data: list[str] | None = None,
    split_from: str | Path | None = None,
    margin: float = 0.15,
    min_box: int = 12,
    batch_size: int = 64,
    device: str = "auto",
) -> dict[str, Any]:
    """Write ``out/best.pt``, the interpolated model, and ``out/interpolation.json``; return the latter's dict."""
    if not 0.0 <= alpha <= 1.0:
        raise MaskwatchError("--alpha must be in [0, 1] (0: the base model, 1: the fine-tuned one)")
    if bool(data) != bool(split_from):
        raise MaskwatchError("give --data and --split-from together (the temperature is fitted on the validation part)")
    if (Path(out) / "best.pt").exists():
        raise MaskwatchError(f"{out} already holds a best.pt: choose a new --out folder")
    a, b = _load(base), _load(tuned)
    for field in ("model_name", "labels", "input_size"):
        if a[field] != b[field]:
            raise MaskwatchError(f"{a['path']} and {b['path']} differ in {field}: {a[field]} vs {b[field]}")
    state = interpolate_states(a["model"], b["model"], alpha)
    net: MaskNet = create_model(
        a["model_name"], len(a["labels"]), pretrained=False, dropout=b["dropout"], input_size=a["input_size"]
    )
    net.load_state_dict(state)
    net.pretrained = f"interpolated: {1 - alpha:g} x {a['path']} + {alpha:g} x {b['path']}"
    report: dict[str, Any] = {
        "base": a["path"],
        "tuned": b["path"],
        "alpha": alpha,
        "model": a["model_name"],
        "labels": list(a["labels"]),
        "temperature": float(net.temperature),
        "calibration": None,
    }
    if data:
        report["calibration"] = _recalibrate(
            net, list(a["labels"]), data, Path(split_from), margin, min_box, batch_size, device
        )
        report["temperature"] = report["calibration"]["temperature"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        out / "best.pt", net, list(a["labels"]), interpolation={k: report[k] for k in ("base", "tuned", "alpha")}
    )
    write_json(out / "interpolation.json", report)
    return report


def _recalibrate(
    net: MaskNet,
    labels: list[str],
    data: list[str],
    split_from: Path,
    margin: float,
    min_box: int,
    batch_size: int,
    device: str,
) -> dict[str, Any]:
    from maskwatch.data.dataset import load_data
    from maskwatch.data.split import load_split

    bundle = load_data(data, margin=margin, min_box=min_box)
    if bundle.labels != labels:
        raise MaskwatchError(
            f"the data's labels ({', '.join(bundle.labels)}) are not the model's ({', '.join(labels)})"
        )
    val = load_split(split_from, bundle.samples, extend=True).val
    if not val:
        raise MaskwatchError(f"{split_from} leaves no validation images of this data to fit the temperature on")
    net.temperature.fill_(1.0)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[s.label] for s in val])
    logits = torch.from_numpy(predict_samples(net, val, labels, batch_size=batch_size, device=device, logits=True))
    net.cpu()
    t, fitted, _ = temperature_scaling(logits, y)
    net.temperature.fill_(t)
    accuracy = float((logits.argmax(1).numpy() == y).mean())
    info(
        f"temperature scaling: T = {t:.3f}, validation ECE {fitted['val_ece_before']:.4f} -> "
        f"{fitted['val_ece_after']:.4f} ({len(val)} images)"
    )
    return {"val_images": len(val), "val_accuracy": accuracy, **fitted}
