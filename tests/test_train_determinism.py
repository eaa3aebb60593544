"""Reproducibility of training: a resumed run equals an uninterrupted one, whatever the data-loader workers
and the feature cache hold."""

import pytest

from maskwatch.data.toy import make_toy_dataset
from maskwatch.io import read_json
from maskwatch.labels import CANONICAL_LABELS
from maskwatch.train import TrainConfig, resume, train


@pytest.fixture
def toy3(tmp_path):
    return make_toy_dataset(tmp_path / "toy3", per_class=12, size=48, seed=5, labels=CANONICAL_LABELS)


def _interrupt_after(n):
    def callback(epoch, row):
        if epoch == n:
            raise KeyboardInterrupt

    return callback


def _losses(run) -> list[tuple]:
    keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
    return [tuple(h[k] for k in keys) for h in read_json(run / "history.json")]


def test_resume_with_workers_equals_an_uninterrupted_run(tmp_path, toy3):
    """With data-loader workers (the default), a run interrupted after epoch 1 and resumed gives the same history
    as one that was never stopped: each epoch's shuffle and worker seeds come from (seed, epoch) alone."""
    base = dict(
        data=[str(toy3)],
        model="cnn",
        image_size=32,
        epochs=3,
        batch_size=8,
        patience=0,
        workers=1,
        augment="strong",
        calibrate=False,
    )
    full = train(TrainConfig(**base, out=str(tmp_path / "full")))
    assert full.status == "finished"
    first = train(TrainConfig(**base, out=str(tmp_path / "part")), callbacks=[_interrupt_after(1)])
    assert first.status == "interrupted" and first.epochs_run == 1
    assert resume(tmp_path / "part").status == "finished"
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")


def test_frozen_run_does_not_depend_on_the_feature_cache(tmp_path, toy3, monkeypatch):
    """The first frozen-backbone run (features computed) and a second identical one (features from the cache) give
    the same history: computing the features leaves the run's random generators as it found them."""
    import maskwatch.train.trainer as trainer

    base = dict(
        data=[str(toy3)],
        model="cnn",
        pretrained=False,
        freeze="backbone",
        image_size=32,
        epochs=3,
        feature_views=2,
        augment="light",
        patience=0,
        workers=0,
        calibrate=False,
    )
    computed = []
    real = trainer.compute_features
    monkeypatch.setattr(trainer, "compute_features", lambda *a, **k: computed.append(1) or real(*a, **k))
    train(TrainConfig(**base, out=str(tmp_path / "cold")))
    assert computed  # the cache was empty
    computed.clear()
    train(TrainConfig(**base, out=str(tmp_path / "warm")))
    assert not computed  # the features came from the cache
    assert _losses(tmp_path / "warm") == _losses(tmp_path / "cold")
