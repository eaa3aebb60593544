"""The trainer: data -> split -> model -> epochs -> run folder (checkpoints, history, plots, metrics).

A run folder holds everything a run made: ``config.json`` (the exact arguments), ``split/``
(file lists), ``last.pt`` and ``best.pt``, ``history.csv/json``, ``curves.png``, ``run.json``
(status, timings, what loaded), ``problems.csv`` (skipped files) and the test report
(``metrics.json`` and its pictures). ``resume(run_dir)`` continues a killed or interrupted run
from ``last.pt``.
"""

from __future__ import annotations

import contextlib
import csv
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskwatch.data.dataset import DataBundle, Sample, load_data
from maskwatch.data.duplicates import find_duplicates, sample_groups
from maskwatch.data.split import load_split, make_split, save_split
from maskwatch.errors import MaskwatchError
from maskwatch.evaluate.metrics import classification_metrics
from maskwatch.evaluate.plots import plot_curves
from maskwatch.evaluate.report import write_problems, write_report
from maskwatch.io import atomic_path, read_json, write_json
from maskwatch.models import MaskNet, create_model
from maskwatch.paths import cache_dir
from maskwatch.progress import info, make_progress
from maskwatch.train.augment import PRESETS_VERSION, eval_transform, train_transform
from maskwatch.train.calibration import temperature_scaling
from maskwatch.train.checkpoint import read_checkpoint, resolve_model_path, save_checkpoint
from maskwatch.train.config import TrainConfig
from maskwatch.train.dataset import ImageDataset
from maskwatch.train.embeddings import embedder
from maskwatch.train.features import cached_features, compute_features, feature_key
from maskwatch.train.loader import QuietLoader
from maskwatch.train.predict import default_workers, pick_device, predict_batches

EpochCallback = Callable[[int, dict], None]


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # finished | stopped_early | time_limit | interrupted
    epochs_run: int
    best_epoch: int
    metrics: dict | None  # the test metrics, when the run finished


def train_step(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    amp_dtype: torch.dtype | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step; returns (summed loss, correct count) as tensors (no host sync). With ``weights``
    (one per sample; ``criterion`` then reduces nothing) the loss is their weighted mean."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(images.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = model(images)
        loss = criterion(logits, targets)
        if weights is not None:
            loss = (loss.float() * weights).sum() / weights.sum().clamp_min(1e-12)
    loss.backward()
    optimizer.step()
    return loss.detach() * len(targets), (logits.detach().argmax(1) == targets).sum()


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _make_optimizer(cfg: TrainConfig, params, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":  # L2 penalty added to the gradient, as Keras/the study
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def _make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=0)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=cfg.step_size or max(1, cfg.epochs // 3), gamma=cfg.gamma
        )
    if cfg.schedule == "plateau":
        mode = "min" if cfg.monitor == "val_loss" else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=cfg.gamma, patience=max(1, cfg.patience // 2)
        )
    return None


def _class_weights(cfg: TrainConfig, samples: Sequence[Sample], labels: Sequence[str]) -> torch.Tensor | None:
    """Loss weights per class: ``balanced`` is n / (k * n_c); ``sqrt`` its square root, a softer balance
    for a class with very few examples (normalised so that the mean weight per sample stays 1)."""
    if cfg.class_weights == "none":
        return None
    counts = np.array([sum(s.label == label for s in samples) for label in labels], dtype=np.float64)
    weights = counts.sum() / (len(labels) * np.maximum(counts, 1))
    if cfg.class_weights == "sqrt":
        weights = np.sqrt(weights)
        weights *= counts.sum() / max((weights * counts).sum(), 1e-12)
    return torch.tensor(weights, dtype=torch.float32)


def _sample_weights(cfg: TrainConfig, samples: Sequence[Sample], labels: Sequence[str]) -> list[float] | None:
    """Loss weight per training sample under ``--synthetic-weight`` (None without it, or without synthetic
    samples): a real image weighs its class's weight computed over the real images alone (1 with
    ``--class-weights none``), a synthetic one ``synthetic_weight``."""
    if cfg.synthetic_weight is None or not any(s.synthetic for s in samples):
        return None
    per_class = _class_weights(cfg, [s for s in samples if not s.synthetic], labels)
    index = {label: i for i, label in enumerate(labels)}
    return [
        cfg.synthetic_weight if s.synthetic else (1.0 if per_class is None else float(per_class[index[s.label]]))
        for s in samples
    ]


class _Interrupts:
    """While the epochs and the final evaluation run, Ctrl-C or SIGTERM asks the run to stop: the signal is noted,
    and ``check()`` (after each batch, prediction ones included, and between an epoch's steps) stops the run there
    by raising KeyboardInterrupt. A second signal stops it at once.

    Python's own way, KeyboardInterrupt raised wherever the signal lands, went wrong when runs were signalled at
    random moments: raised while a DataLoader worker started, it left a worker that nothing stopped and the process
    hung at exit; raised in matplotlib's C code drawing the curves, it came out as "ValueError: Invalid bounding box"
    and the run "failed"; raised in an at-fork callback or a ``__del__``, Python dropped it and the run went on.
    Only handlers that are Python callables (Ctrl-C's default one, the CLI's SIGTERM one) are replaced, and only from
    the main thread (where Python runs them)."""

    def __init__(self) -> None:
        self.pending = False
        self.previous: dict[int, Callable] = {}

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(sig)
                if callable(handler):
                    self.previous[sig] = handler
                    signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.pending:
            self.previous[signum](signum, frame)  # the second signal: the usual handler, at once
        self.pending = True

    def check(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()


class _Run:
    """State of one training run; ``fit()`` drives the epochs."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, callbacks: Sequence[EpochCallback] = ()) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.callbacks = list(callbacks)
        self.device = pick_device(cfg.device)
        self.amp_dtype = torch.bfloat16 if self.device.type == "cuda" else None
        self.workers = default_workers() if cfg.workers is None else cfg.workers
        self.history: list[dict] = []
        self.best_value: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.start_epoch = 1
        self.cache = cache_dir()
        self.calibration: dict | None = None
        self.interrupts = _Interrupts()

    # ---------------------------------------------------------------- set-up
    def prepare(self, resuming: bool) -> None:
        cfg = self.cfg
        self.bundle: DataBundle = load_data(cfg.data, margin=cfg.margin, min_box=cfg.min_box, cache=self.cache)
        write_problems(self.run_dir, [(p.path, p.reason) for p in self.bundle.problems])
        split_dir = self.run_dir / "split"
        if resuming and (split_dir / "split.json").is_file():
            self.split = load_split(split_dir, self.bundle.samples)
        elif cfg.split_from:
            self.split = load_split(Path(cfg.split_from), self.bundle.samples, extend=True)
            save_split(self.split, split_dir)
            self._adopt_split_settings()
        else:
            report = find_duplicates(
                self.bundle.samples,
                self.bundle.index,
                cfg.dup_threshold,
                embed_threshold=cfg.dup_embed,
                embedder=embedder(self.cache) if cfg.dup_embed else None,
            )
            groups = sample_groups(self.bundle.samples, report)
            self.split = make_split(
                self.bundle.samples, groups, kind=cfg.split, ratios=tuple(cfg.ratios), seed=cfg.seed
            )
            save_split(self.split, split_dir)
        if not self.split.train or not self.split.val:
            raise MaskwatchError("the split left no training or validation images; add data or change --ratios")
        self.labels = self.bundle.labels
        index = {label: i for i, label in enumerate(self.labels)}
        self.targets = {
            name: torch.tensor([index[s.label] for s in part], dtype=torch.long)
            for name, part in self.split.parts().items()
        }
        self.model: MaskNet = create_model(
            cfg.model,
            len(self.labels),
            pretrained=cfg.pretrained and not cfg.init,
            weights=cfg.weights,
            dropout=cfg.dropout,
            input_size=cfg.image_size,
        )
        if cfg.init:  # also when resuming: a run stopped before its first last.pt has only these weights
            self._load_init(Path(cfg.init))  # (a frozen backbone's features come from them too); restore() overwrites
        if cfg.pretrained and self.model.pretrained is None and self.model.spec.pretrained_source is None:
            info(f"[yellow]{cfg.model} has no pretrained weights: training from scratch")
        self.frozen = cfg.freeze == "backbone"
        if self.frozen:
            if self.model.pretrained is None:
                info(f"[yellow]--freeze backbone with a randomly initialised {cfg.model}: only the head learns")
            self.model.freeze_backbone()
            params = list(self.model.head.parameters())
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.to(self.device).to(memory_format=torch.channels_last)
        self.lr = cfg.learning_rate(self.model.pretrained is not None)
        self.optimizer = _make_optimizer(cfg, params, self.lr)
        self.scheduler = _make_scheduler(cfg, self.optimizer)
        self.sample_weights = _sample_weights(cfg, self.split.train, self.labels)
        if self.sample_weights is None:
            weights = _class_weights(cfg, self.split.train, self.labels)
            self.criterion = nn.CrossEntropyLoss(
                weight=None if weights is None else weights.to(self.device), label_smoothing=cfg.label_smoothing
            )
        else:  # weighted per sample in train_step
            self.criterion = nn.CrossEntropyLoss(reduction="none", label_smoothing=cfg.label_smoothing)
        spec = self.model.spec
        self.eval_tf = eval_transform(self.model.input_size, spec.mean, spec.std)
        self.train_tf = train_transform(cfg.augment, self.model.input_size, spec.mean, spec.std)
        if self.frozen:
            self._prepare_features()
        else:
            self._prepare_loaders()

    def _adopt_split_settings(self) -> None:
        """--split-from: the reused split keeps its own kind and ratios; record those in the config (config.json
        says what the run used) and say so when --split/--ratios asked for others."""
        cfg, split = self.cfg, self.split
        used = [float(r) for r in split.ratios]

        def shares(ratios: Sequence[float]) -> np.ndarray:
            r = np.asarray(ratios, dtype=np.float64)
            return r / max(r.sum(), 1e-12)

        if cfg.split != split.kind or len(cfg.ratios) != len(used) or not np.allclose(shares(cfg.ratios), shares(used)):
            given = ",".join(f"{r:g}" for r in cfg.ratios)
            info(
                f"--split-from {cfg.split_from}: using its split ({split.kind}, ratios "
                f"{','.join(f'{r:.4g}' for r in used)}, seed {split.seed}), not --split {cfg.split} --ratios {given}"
            )
        cfg.split, cfg.ratios = split.kind, used

    def _load_init(self, init: Path) -> None:
        """Start from a trained maskwatch model, head included: same architecture, same labels in the same order."""
        try:
            path = resolve_model_path(init)
        except MaskwatchError as exc:  # a resumed run needs it too: say which option named it
            raise MaskwatchError(f"--init: {exc}") from None
        payload = read_checkpoint(path)
        if payload["model_name"] != self.cfg.model:
            raise MaskwatchError(f"--init {init} is a {payload['model_name']}, not a {self.cfg.model} (--model)")
        if list(payload["labels"]) != list(self.labels):
            raise MaskwatchError(
                f"--init {init} has the labels {', '.join(payload['labels'])}; this data has {', '.join(self.labels)}"
            )
        self.model.load_state_dict(payload["model"])
        self.model.pretrained = f"init: {path}"

    def _prepare_loaders(self) -> None:
        # Workers are not persistent: each epoch starts its own, seeded (like the shuffle) from the generator
        # that _train_epoch reseeds with (seed, epoch), so epoch k draws the same whether the run started at
        # epoch 1 or was resumed at epoch k. Persistent workers took their seeds once per session and carried
        # their random state across epochs, so a resumed run diverged from an uninterrupted one.
        cfg = self.cfg
        pin = self.device.type == "cuda"
        self.train_gen = torch.Generator().manual_seed(cfg.seed)
        self.train_loader = QuietLoader(
            ImageDataset(self.split.train, self.labels, self.train_tf, self.sample_weights),
            batch_size=cfg.batch_size,
            shuffle=True,
            num_workers=self.workers,
            generator=self.train_gen,
            pin_memory=pin,
            drop_last=len(self.split.train) > cfg.batch_size,
        )
        self.val_loader = self._eval_loader(self.split.val)

    def _eval_loader(self, samples: Sequence[Sample]) -> QuietLoader:
        return QuietLoader(
            ImageDataset(samples, self.labels, self.eval_tf),
            batch_size=max(self.cfg.batch_size, 64),
            shuffle=False,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
        )

    def _prepare_features(self) -> None:
        cfg = self.cfg
        views = cfg.feature_views if cfg.augment != "none" else 1
        bs = max(cfg.batch_size, 64)
        key_params = {
            "views": views,
            "augment": cfg.augment,
            "augment_version": PRESETS_VERSION,
            "seed": cfg.seed,
            "margin": cfg.margin,  # the VOC crops' ids do not change with these two; their pixels do
            "min_box": cfg.min_box,
        }

        def build() -> dict[str, torch.Tensor]:
            feats: dict[str, torch.Tensor] = {}
            for name in ("val", "test", "train"):
                part = self.split.parts()[name]
                if not part:
                    continue
                tfs = [self.eval_tf] + ([self.train_tf] * (views - 1) if name == "train" else [])
                feats[name] = torch.stack(
                    [
                        compute_features(
                            self.model,
                            part,
                            self.labels,
                            tf,
                            self.device,
                            bs,
                            self.workers,
                            cfg.seed + v,
                            f"features {name}" + (f" view {v + 1}/{len(tfs)}" if len(tfs) > 1 else ""),
                        )
                        for v, tf in enumerate(tfs)
                    ]
                )
            return feats

        everything = self.split.train + self.split.val + self.split.test
        key = feature_key(self.model, everything, sizes=[len(self.split.train), len(self.split.val)], **key_params)
        self.features = cached_features(self.cache, key, build)

    # ---------------------------------------------------------------- epochs
    def _train_epoch(self, progress, epoch: int) -> tuple[float, float]:
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        if self.frozen:
            self.model.head.train()
            feats, y = self.features["train"], self.targets["train"]
            gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
            view = torch.randint(feats.shape[0], (feats.shape[1],), generator=gen)
            x_all = feats[view, torch.arange(feats.shape[1])]
            order = torch.randperm(len(y), generator=gen)
            batches = [order[i : i + self.cfg.batch_size] for i in range(0, len(order), self.cfg.batch_size)]
            task = progress.add_task(f"epoch {epoch}/{self.cfg.epochs}", total=len(batches), status="")
            weights = None if self.sample_weights is None else torch.tensor(self.sample_weights)
            for idx in batches:
                xb, yb = x_all[idx].to(self.device), y[idx].to(self.device)
                wb = None if weights is None else weights[idx].to(self.device)
                loss, ok = train_step(self.model.head, xb, yb, self.optimizer, self.criterion, None, wb)
                loss_sum += loss
                correct += ok
                seen += len(idx)
                progress.update(task, advance=1)
                self.interrupts.check()
        else:
            self.model.train()
            self.train_gen.manual_seed(self.cfg.seed * 1000 + epoch)
            task = progress.add_task(f"epoch {epoch}/{self.cfg.epochs}", total=len(self.train_loader), status="")
            for step, (images, targets, *weights) in enumerate(self.train_loader):
                images = images.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                targets = targets.to(self.device, non_blocking=True)
                wb = weights[0].to(self.device, torch.float32) if weights else None
                loss, ok = train_step(self.model, images, targets, self.optimizer, self.criterion, self.amp_dtype, wb)
                loss_sum += loss
                correct += ok
                seen += len(targets)
                if step % 5 == 0:
                    progress.update(task, status=f"loss {loss_sum.item() / seen:.4f} acc {correct.item() / seen:.3f}")
                progress.update(task, advance=1)
                self.interrupts.check()
        progress.remove_task(task)  # the epoch's summary line follows
        return loss_sum.item() / max(seen, 1), correct.item() / max(seen, 1)

    @torch.inference_mode()
    def _logits(self, name: str) -> torch.Tensor:
        """Logits (divided by the model's temperature) of one split, in split order."""
        if self.frozen:
            self.model.head.eval()
            return self.model.logits_from_features(self.features[name][0].to(self.device)).float().cpu()
        loader = self.val_loader if name == "val" else self._eval_loader(self.split.parts()[name])
        scores = predict_batches(self.model, loader, self.device, f"predicting {name}", True, self.interrupts.check)
        return torch.from_numpy(scores)

    def _probs(self, name: str) -> np.ndarray:
        return self._logits(name).softmax(1).numpy()

    def _validate(self) -> dict:
        m = classification_metrics(self.targets["val"].numpy(), self._probs("val"), self.labels)
        return {"val_loss": m["loss"], "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]}

    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        if self.cfg.monitor == "val_loss":
            return value < self.best_value - 1e-6
        return value > self.best_value + 1e-6

    def _state(self, epoch: int) -> dict:
        return {
            "epoch": epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "history": self.history,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "config": self.cfg.to_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        }

    def restore(self, checkpoint: Path) -> None:
        payload = read_checkpoint(checkpoint)
        if payload["labels"] != self.labels:
            raise MaskwatchError(f"{checkpoint} was trained on labels {payload['labels']}, the data has {self.labels}")
        self.model.load_state_dict(payload["model"])
        self.model.pretrained = payload.get("pretrained")  # where the weights first came from (e.g. --init)
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler and payload.get("scheduler"):
            self.scheduler.load_state_dict(payload["scheduler"])
            if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                self.scheduler.T_max = self.cfg.epochs  # --epochs may have changed on resume
        self.history = payload["history"]
        self.best_value, self.best_epoch = payload["best_value"], payload["best_epoch"]
        self.bad_epochs = payload["bad_epochs"]
        self.start_epoch = payload["epoch"] + 1
        rng = payload.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])

    def _write_history(self) -> None:
        write_json(self.run_dir / "history.json", self.history)
        with atomic_path(self.run_dir / "history.csv") as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)
        plot_curves(self.history, self.run_dir / "curves.png")

    def _write_status(self, status: str, **extra: object) -> None:
        path = self.run_dir / "run.json"
        data = read_json(path) if path.is_file() else {"started": datetime.now(UTC).isoformat(timespec="seconds")}
        for key in ("error", "interrupted_in", "epochs_ended"):  # a run that was resumed: history
            data.pop(key, None)
        data.update(
            {
                "status": status,
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
                "model": self.cfg.model,
                "pretrained": self.model.pretrained,
                "frozen_backbone": self.frozen,
                "labels": self.labels,
                "device": str(self.device),
                "learning_rate": self.lr,
                "epochs_run": len(self.history),
                "best_epoch": self.best_epoch,
                "best": {self.cfg.monitor: self.best_value},
                "data": self.bundle.datasets,
                "synthetic_data": any(d.get("synthetic") for d in self.bundle.datasets),
                "skipped_files": len(self.bundle.problems),
                "split": self.split.summary(),
                "calibration": self.calibration,
            }
        )
        data.update(extra)
        write_json(path, data)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        status = "finished"
        epoch = self.start_epoch - 1
        self._write_status("running")
        info(
            f"training {cfg.model} ({'frozen backbone' if self.frozen else 'all layers'}, "
            f"pretrained: {self.model.pretrained or 'no'}) on {len(self.split.train)} images, "
            f"validating on {len(self.split.val)}, device {self.device}"
        )
        from rich.progress import TextColumn

        try:
            with self.interrupts, make_progress(TextColumn("{task.fields[status]}")) as progress:
                for epoch in range(self.start_epoch, cfg.epochs + 1):
                    self.interrupts.check()
                    t0 = time.perf_counter()
                    lr = self.optimizer.param_groups[0]["lr"]
                    train_loss, train_acc = self._train_epoch(progress, epoch)
                    row = {
                        "epoch": epoch,
                        "train_loss": train_loss,
                        "train_accuracy": train_acc,
                        **self._validate(),
                        "lr": lr,
                        "seconds": round(time.perf_counter() - t0, 2),
                    }
                    self.interrupts.check()
                    self.history.append(row)
                    value = row[cfg.monitor]
                    if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        self.scheduler.step(value)
                    elif self.scheduler is not None:
                        self.scheduler.step()
                    if self._improved(value):
                        self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
                        save_checkpoint(
                            self.run_dir / "best.pt",
                            self.model,
                            self.labels,
                            epoch=epoch,
                            best_value=value,
                            monitor=cfg.monitor,
                        )
                    else:
                        self.bad_epochs += 1
                    save_checkpoint(self.run_dir / "last.pt", self.model, self.labels, **self._state(epoch))
                    self._write_history()
                    self._write_status("running")
                    info(
                        f"epoch {epoch}: train loss {train_loss:.4f} acc {train_acc:.4f} | val loss "
                        f"{row['val_loss']:.4f} acc {row['val_accuracy']:.4f} macro-F1 {row['val_macro_f1']:.4f}"
                        f"{' *' if self.best_epoch == epoch else ''}"
                    )
                    for callback in self.callbacks:
                        callback(epoch, row)
                    if cfg.patience and self.bad_epochs >= cfg.patience:
                        status = "stopped_early"
                        info(f"early stop: {cfg.monitor} did not improve for {cfg.patience} epochs")
                        break
                    spent = sum(h["seconds"] for h in self.history)
                    if cfg.time_limit is not None and spent >= cfg.time_limit and epoch < cfg.epochs:
                        status = "time_limit"
                        info(f"time limit: {spent:.0f} s of epochs >= --time-limit {cfg.time_limit:g} s")
                        break
        except KeyboardInterrupt:
            return self._interrupted(f"interrupted; last.pt holds epoch {len(self.history)}. Continue with")
        except Exception as exc:
            self._fail(exc)
            raise
        return self.conclude(status)

    def conclude(self, status: str) -> TrainResult:
        """The final evaluation and report of a run whose epochs ended with ``status``. Ctrl-C here stops at the
        next batch too: run.json says "interrupted" in the evaluation, and ``--resume`` runs only the evaluation."""
        try:
            with self.interrupts:
                metrics = self.finish()
        except KeyboardInterrupt:
            message = "interrupted in the final evaluation (the epochs are done). Finish it with"
            return self._interrupted(message, interrupted_in="evaluation", epochs_ended=status)
        except Exception as exc:
            self._fail(exc)
            raise
        self._write_status(
            status,
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
            test_accuracy=metrics["accuracy"] if metrics else None,
        )
        return TrainResult(self.run_dir, status, len(self.history), self.best_epoch, metrics)

    def _interrupted(self, message: str, **extra: object) -> TrainResult:
        """End the run as "interrupted" (``extra`` into run.json), saying ``message``: maskwatch train --resume RUN."""
        self._write_status("interrupted", **extra)
        info(f"[yellow]{message}: maskwatch train --resume {self.run_dir}")
        return TrainResult(self.run_dir, "interrupted", len(self.history), self.best_epoch, None)

    def _fail(self, exc: BaseException) -> None:
        """A run that raised is not left "running" in run.json: it says "failed" and why."""
        with contextlib.suppress(Exception):  # the error being raised says more than one from writing the status
            self._write_status("failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])

    def _calibrate(self, best: dict) -> np.ndarray:
        """Fit the temperature on validation logits, store it in best.pt; return the calibrated
        validation probabilities (so the report needs no second pass over the images)."""
        self.model.temperature.fill_(1.0)
        t, self.calibration, probs = temperature_scaling(self._logits("val"), self.targets["val"].numpy())
        self.model.temperature.fill_(t)
        keep = {k: best[k] for k in ("epoch", "best_value", "monitor") if k in best}
        save_checkpoint(self.run_dir / "best.pt", self.model, self.labels, **keep)
        c = self.calibration
        info(f"temperature scaling: T = {t:.3f}, validation ECE {c['val_ece_before']:.4f} -> {c['val_ece_after']:.4f}")
        return probs

    def finish(self) -> dict | None:
        """Evaluate the best checkpoint on the test split (and validation) and write the report."""
        best = read_checkpoint(self.run_dir / "best.pt")
        self.model.load_state_dict(best["model"])
        val_probs = self._calibrate(best) if self.cfg.calibrate else self._probs("val")
        summary = self.split.summary()
        write_report(self.run_dir, self.split.val, self.labels, val_probs, summary, key="val")
        if not self.split.test:
            info("[yellow]no test split (--ratios gives it 0): only validation metrics were written")
            return None
        test_probs = self._probs("test")
        metrics = write_report(self.run_dir, self.split.test, self.labels, test_probs, summary, key="test")
        if self.calibration:
            path = self.run_dir / "metrics.json"
            write_json(path, {**read_json(path), "calibration": self.calibration})
        self._report_real_and_synthetic(test_probs, summary)
        info(
            f"test: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
            f"ECE {metrics['ece']:.4f} on {metrics['samples']} images -> {self.run_dir / 'metrics.json'}"
        )
        return metrics

    def _report_real_and_synthetic(self, probs: np.ndarray, summary: dict) -> None:
        """With synthetic images in the test split, also report the real ones alone (the figure that counts) and
        the synthetic ones alone, in ``test-real/`` and ``test-synthetic/``."""
        test = self.split.test
        synthetic = [i for i, s in enumerate(test) if s.synthetic]
        if not synthetic or len(synthetic) == len(test):
            return
        real = [i for i, s in enumerate(test) if not s.synthetic]
        for name, idx in (("test-real", real), ("test-synthetic", synthetic)):
            m = write_report(self.run_dir / name, [test[i] for i in idx], self.labels, probs[idx], summary)
            info(f"{name}: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} on {m['samples']} images")


def train(cfg: TrainConfig, callbacks: Sequence[EpochCallback] = ()) -> TrainResult:
    """Train a model as ``cfg`` says, into a new (or empty) run folder."""
    cfg.validate()
    for root in cfg.data:
        if not Path(root).expanduser().is_dir():
            raise MaskwatchError(f"data set folder not found: {root}")
    run_dir = Path(cfg.out).expanduser()
    if (run_dir / "config.json").exists():
        raise MaskwatchError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
    made = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", cfg.to_dict())
    _seed_all(cfg.seed)
    try:
        run = _Run(cfg, run_dir, callbacks)
        run.prepare(resuming=False)
    except BaseException:
        # nothing was trained: free the folder for the next attempt (and leave none behind that this call made)
        if made:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            (run_dir / "config.json").unlink(missing_ok=True)
        raise
    write_json(run_dir / "config.json", cfg.to_dict())  # as prepared (--split-from: the split it reused)
    return run.fit()


def resume(run_dir: str | Path, callbacks: Sequence[EpochCallback] = (), epochs: int | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint (or start it, if it has none).

    ``epochs`` changes the run's total number of epochs (recorded in config.json)."""
    run_dir = Path(run_dir).expanduser()
    cfg = TrainConfig.load(run_dir)
    if epochs is not None:
        cfg.epochs = epochs
    cfg.validate()
    previous = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    status = previous.get("status")
    if status in ("finished", "stopped_early", "time_limit"):
        done = {"time_limit": "reached its time limit"}.get(status, status.replace("_", " "))
        raise MaskwatchError(f"the run in {run_dir} already {done}; nothing to resume")
    for root in cfg.data:
        if not Path(root).expanduser().is_dir():
            raise MaskwatchError(f"data set folder not found: {root} (the run's --data, in {run_dir / 'config.json'})")
    if epochs is not None:
        write_json(run_dir / "config.json", cfg.to_dict())
    _seed_all(cfg.seed)
    run = _Run(cfg, run_dir, callbacks)
    run.prepare(resuming=True)
    if (run_dir / "last.pt").is_file():
        run.restore(run_dir / "last.pt")
    if run.start_epoch > cfg.epochs or (previous.get("interrupted_in") == "evaluation" and epochs is None):
        info(f"resuming {run_dir}: its epochs are done, the final evaluation runs")
        return run.conclude(previous.get("epochs_ended", "finished"))
    if run.start_epoch > 1:
        info(f"resuming {run_dir} at epoch {run.start_epoch}")
    return run.fit()
