"""Comparison presets and the settings each model gets from a preset plus explicit flags.

Light at import time (the CLI reads ``STUDY_MODELS``); the model registry loads on use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from maskwatch.errors import MaskwatchError

STUDY_MODELS = (
    "cnn",
    "inception_mini",
    "resnet50",
    "densenet121",
    "mobilenetv2",
    "xception",
    "inceptionv3",
    "efficientnet_lite0",
)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    epochs: int
    patience: int
    batch_size: int
    scratch_size: int | None  # input size of models trained from scratch (None: the model's own)
    pretrained: str  # "offline": only weights that ship offline | "all": hub weights too
    freeze: str  # for models that start from pretrained weights: backbone | none
    fallback_scratch: bool  # pretrained weights that do not load: train from scratch (else the model fails)
    time_limit: float | None  # seconds of epochs per model
    augment: str = "strong"
    feature_views: int = 3


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "cpu-quick",
            "2 CPU cores, well under an hour for the 8 models on ~4,000 faces: from-scratch nets at 64 px "
            "(Inception-v3 at 80, its floor is 75), EfficientNet-Lite0 frozen with its offline ImageNet weights "
            "at 224 px on cached features; at most 5 epochs or 240 s of epochs per model, patience 2",
            epochs=5,
            patience=2,
            batch_size=64,
            scratch_size=64,
            pretrained="offline",
            freeze="backbone",
            fallback_scratch=True,
            time_limit=240.0,
        ),
        Preset(
            "gpu-full",
            "a GPU: native input sizes, ImageNet weights fine-tuned (all layers), 25 epochs, patience 5; "
            "a model whose weights do not load fails",
            epochs=25,
            patience=5,
            batch_size=32,
            scratch_size=None,
            pretrained="all",
            freeze="none",
            fallback_scratch=False,
            time_limit=None,
        ),
    )
}
SCRATCH_SIZE_FLOOR = {"inceptionv3": 80}  # what cpu-quick uses where its 64 px is below a net's floor


@dataclass
class Overrides:
    """Explicit flags; ``None`` keeps the preset's value."""

    epochs: int | None = None
    image_size: int | None = None
    time_limit: float | None = None
    batch_size: int | None = None
    freeze: str | None = None  # applies to models that start from pretrained weights
    patience: int | None = None
    fallback_scratch: bool | None = None


@dataclass
class ModelSettings:
    model: str
    image_size: int
    epochs: int
    batch_size: int
    freeze: str
    pretrained: bool  # ask the trainer for pretrained weights (what loaded is read back from run.json)
    expected_weights: str | None  # what the check before training loaded, in words
    time_limit: float | None
    patience: int
    augment: str
    feature_views: int
    note: str = ""
    error: str | None = None  # known before training: the model is reported failed with this reason


Probe = Callable[[str], str]  # model name -> what loaded, in words; raises when the weights do not load


def probe_pretrained(name: str) -> str:
    """Load ``name``'s pretrained weights once (offline package or hub cache) to see whether they load."""
    from maskwatch.models import create_model

    model = create_model(name, 2, pretrained=True)
    return model.pretrained or "nothing"


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise MaskwatchError(f"unknown preset '{name}'; use one of {', '.join(PRESETS)}") from None


def parse_models(text: str) -> list[str]:
    from maskwatch.models import get_spec

    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise MaskwatchError("--models needs at least one model name")
    for name in names:
        get_spec(name)
    return names


def resolve_settings(
    models: list[str], preset: Preset, overrides: Overrides, probe: Probe = probe_pretrained
) -> dict[str, ModelSettings]:
    """Each model's settings: the preset, then explicit flags; pretrained weights are tried once."""
    from maskwatch.models import get_spec
    from maskwatch.train.config import min_image_size

    if overrides.freeze not in (None, "none", "backbone"):
        raise MaskwatchError("--freeze must be backbone or none")
    fallback = preset.fallback_scratch if overrides.fallback_scratch is None else overrides.fallback_scratch
    out: dict[str, ModelSettings] = {}
    for name in models:
        spec = get_spec(name)
        wants = spec.pretrained_source is not None and (preset.pretrained == "all" or spec.offline_weights is not None)
        note, error, loaded = "", None, None
        if spec.pretrained_source is None:
            note = "no pretrained weights exist: from scratch"
        elif not wants:
            note = "preset: from scratch (no offline weights)"
        else:
            try:
                loaded = probe(name)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                reason = one_line(exc)
                wants = False
                if fallback:
                    note = f"pretrained weights did not load ({reason}): from scratch"
                else:
                    error = f"pretrained weights did not load: {reason}"
        if overrides.image_size is not None:
            size = overrides.image_size
        elif wants or preset.scratch_size is None:
            size = spec.input_size
        else:
            size = max(preset.scratch_size, SCRATCH_SIZE_FLOOR.get(name, 0))
        floor = min_image_size(name)
        if size < floor and error is None:
            error = f"{name} needs an input of at least {floor} px, got {size}"
        out[name] = ModelSettings(
            model=name,
            image_size=size,
            epochs=preset.epochs if overrides.epochs is None else overrides.epochs,
            batch_size=preset.batch_size if overrides.batch_size is None else overrides.batch_size,
            freeze=(overrides.freeze or preset.freeze) if wants else "none",
            pretrained=wants,
            expected_weights=loaded,
            # --time-limit 0 turns the preset's limit off
            time_limit=preset.time_limit if overrides.time_limit is None else (overrides.time_limit or None),
            patience=preset.patience if overrides.patience is None else overrides.patience,
            augment=preset.augment,
            feature_views=preset.feature_views,
            note=note,
            error=error,
        )
    return out


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: its message (MaskwatchError) or its type and first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, MaskwatchError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
