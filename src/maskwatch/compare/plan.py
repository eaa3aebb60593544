"""What a comparison is asked to do (``CompareRequest``) and the settings resolved for each model (``ComparePlan``):
the plain data that the runner executes and the report describes, so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from maskwatch.compare.presets import STUDY_MODELS, ModelSettings, Overrides, Preset
from maskwatch.train.config import TrainConfig


@dataclass
class CompareRequest:
    data: list[str]
    out: str
    models: list[str] = field(default_factory=lambda: list(STUDY_MODELS))
    eval_data: list[str] = field(default_factory=list)
    split: str = "grouped"
    ratios: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    preset: str = "cpu-quick"
    overrides: Overrides = field(default_factory=Overrides)
    resume: bool = False
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    latency_runs: int = 5
    dup_threshold: int = 8
    dup_embed: float = 0.0
    margin: float = 0.15
    min_box: int = 12


@dataclass
class ComparePlan:
    request: CompareRequest
    preset: Preset
    settings: dict[str, ModelSettings]

    @property
    def out(self) -> Path:
        return Path(self.request.out).expanduser()

    def run_dir(self, name: str) -> Path:
        return self.out / "runs" / name

    def train_config(self, name: str) -> TrainConfig:
        s, r = self.settings[name], self.request
        return TrainConfig(
            data=list(r.data),
            out=str(self.run_dir(name)),
            model=name,
            image_size=s.image_size,
            epochs=s.epochs,
            batch_size=s.batch_size,
            augment=s.augment,
            freeze=s.freeze,
            feature_views=s.feature_views,
            patience=s.patience,
            time_limit=s.time_limit,
            seed=r.seed,
            device=r.device,
            split=r.split,
            ratios=list(r.ratios),
            split_from=str(self.out / "split"),
            dup_threshold=r.dup_threshold,
            dup_embed=r.dup_embed,
            margin=r.margin,
            min_box=r.min_box,
            pretrained=s.pretrained,
            workers=r.workers,
        )
