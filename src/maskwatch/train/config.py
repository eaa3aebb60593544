"""The exact arguments of a training run; saved as config.json in its run folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from maskwatch.errors import MaskwatchError
from maskwatch.io import read_json
from maskwatch.models import DEFAULT_MODEL, get_spec
from maskwatch.train.augment import PRESETS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "step", "plateau", "none")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
MONITORS = ("val_loss", "val_accuracy", "val_macro_f1")
SMALLEST_IMAGE = 32  # --image-size floor for every model
# Models whose fixed downsampling needs a larger input (Inception-v3's unpadded stride-2 convolutions fail under
# 75 px); compare's presets ask min_image_size too.
MIN_IMAGE_SIZE = {"inceptionv3": 75}


def min_image_size(model: str) -> int:
    """The smallest --image-size ``model`` accepts."""
    return max(MIN_IMAGE_SIZE.get(model, SMALLEST_IMAGE), SMALLEST_IMAGE)


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    model: str = DEFAULT_MODEL
    image_size: int | None = None  # None: the model's default
    epochs: int = 15
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float | None = None  # None: 1e-3 (frozen or from scratch) / 3e-4 (fine-tuning) / 1e-4 (--init), x10 for sgd
    schedule: str = "cosine"
    step_size: int = 0  # step schedule: epochs between decays (0: a third of the epochs)
    gamma: float = 0.1  # step and plateau decay factor
    weight_decay: float = 1e-4
    dropout: float | None = None  # None: the model's default
    label_smoothing: float = 0.1
    class_weights: str = "none"  # none | balanced | sqrt
    # None: synthetic images count like real ones and class weights are over all images. A number: class weights
    # come from the real images alone (adding synthetic data does not change what a real image weighs) and each
    # synthetic image weighs this much in the loss.
    synthetic_weight: float | None = None
    augment: str = "strong"
    freeze: str = "none"  # none | backbone
    feature_views: int = 3  # frozen backbone: cached views per training image (1 plain + augmented)
    patience: int = 5  # early stopping: epochs without improvement (0: off)
    time_limit: float | None = None  # seconds of epochs (summed over resumed sessions); stops after the epoch
    monitor: str = "val_loss"
    seed: int = 0
    device: str = "auto"
    split: str = "grouped"
    ratios: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    split_from: str | None = None  # reuse the split saved in this run folder / split folder
    dup_threshold: int = 8  # near-duplicate: perceptual-hash distance in bits
    dup_embed: float = 0.0  # near-duplicate: embedding cosine similarity (0: off; 0.92 suits face photos)
    margin: float = 0.15  # VOC face crops: margin around the box, as a fraction of its side
    min_box: int = 12  # VOC face crops: skip boxes whose shorter side is under this (pixels)
    pretrained: bool = True
    weights: str | None = None
    init: str | None = None  # fine-tune: start from this maskwatch checkpoint / run folder, head included
    workers: int | None = None  # data loader processes (None: cores - 1, at most 4)
    calibrate: bool = True  # fit a temperature on validation data after training

    def validate(self) -> None:
        get_spec(self.model)
        checks = [
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (self.monitor in MONITORS, f"--monitor must be one of {', '.join(MONITORS)}"),
            (self.augment in PRESETS, f"--augment must be one of {', '.join(PRESETS)}"),
            (self.freeze in ("none", "backbone"), "--freeze must be backbone or none"),
            (self.class_weights in CLASS_WEIGHTS, f"--class-weights must be one of {', '.join(CLASS_WEIGHTS)}"),
            (self.synthetic_weight is None or self.synthetic_weight > 0, "--synthetic-weight must be positive"),
            (self.split in ("grouped", "random"), "--split must be grouped or random"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.time_limit is None or self.time_limit > 0, "--time-limit must be a positive number of seconds"),
            (self.feature_views >= 1, "--feature-views must be at least 1"),
            (
                self.image_size is None or self.image_size >= min_image_size(self.model),
                f"--image-size must be at least {min_image_size(self.model)}"
                + (f" for {self.model}" if self.model in MIN_IMAGE_SIZE else ""),
            ),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (self.dropout is None or 0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (not (self.init and self.weights), "give --init (a trained model) or --weights (a backbone), not both"),
            (
                len(self.ratios) == 3 and self.ratios[0] > 0 and self.ratios[1] > 0 and self.ratios[2] >= 0,
                "--ratios needs train and validation shares above 0",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise MaskwatchError(message)
        from maskwatch.data.duplicates import check_thresholds  # scipy: loaded when a run is validated

        check_thresholds(self.dup_threshold, self.dup_embed)  # refused even with --split-from, which groups nothing

    def learning_rate(self, pretrained: bool) -> float:
        if self.lr is not None:
            return self.lr
        # --init: the network is already trained, nudge it
        base = 1e-4 if self.init else 3e-4 if (pretrained and self.freeze == "none") else 1e-3
        return base * 10 if self.optimizer == "sgd" else base

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, run_dir: Path) -> TrainConfig:
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise MaskwatchError(f"{run_dir} is not a run folder (no config.json)")
        data = read_json(path)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
