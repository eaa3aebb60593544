import json

import pytest
from PIL import Image

from maskwatch.data.toy import make_toy_dataset
from maskwatch.errors import MaskwatchError
from maskwatch.io import read_json
from maskwatch.labels import CANONICAL_LABELS
from maskwatch.train import TrainConfig, resume, train


@pytest.fixture
def toy3(tmp_path):
    return make_toy_dataset(tmp_path / "toy3", per_class=24, size=48, seed=5, labels=CANONICAL_LABELS)


def _interrupt_after(n):
    def callback(epoch, row):
        if epoch == n:
            raise KeyboardInterrupt

    return callback


def test_training_resumes_after_interruption(tmp_path, toy3):
    cfg = TrainConfig(
        data=[str(toy3)],
        out=str(tmp_path / "run"),
        model="cnn",
        image_size=48,
        epochs=4,
        batch_size=16,
        patience=0,
        workers=0,
        augment="light",
        lr=2e-3,
    )
    first = train(cfg, callbacks=[_interrupt_after(2)])
    run = tmp_path / "run"
    assert first.status == "interrupted" and first.epochs_run == 2
    assert read_json(run / "run.json")["status"] == "interrupted"
    assert not (run / "metrics.json").exists()
    split_before = (run / "split" / "test.csv").read_text()
    result = resume(run)
    assert result.status == "finished" and result.epochs_run == 4
    history = read_json(run / "history.json")
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert (run / "split" / "test.csv").read_text() == split_before
    for name in (
        "config.json",
        "best.pt",
        "last.pt",
        "history.csv",
        "curves.png",
        "confusion_matrix.png",
        "confusion_matrix.json",
        "reliability.png",
        "worst.png",
        "problems.csv",
    ):
        assert (run / name).is_file(), name
    metrics = read_json(run / "metrics.json")
    assert set(metrics) >= {"split", "test", "val"}
    test = metrics["test"]
    assert set(test) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix", "loss", "ece"}
    assert test["confusion_matrix"]["labels"] == list(CANONICAL_LABELS)
    assert sum(map(sum, test["confusion_matrix"]["matrix"])) == metrics["split"]["test"]["images"]
    with pytest.raises(MaskwatchError, match="already finished"):
        resume(run)
    with pytest.raises(MaskwatchError, match="already holds a run"):
        train(cfg)


def test_frozen_backbone_learns_from_cached_features(tmp_path, toy3, monkeypatch):
    import maskwatch.train.trainer as trainer

    cfg = TrainConfig(
        data=[str(toy3)],
        out=str(tmp_path / "a"),
        model="efficientnet_lite0",
        image_size=64,
        freeze="backbone",
        augment="light",
        epochs=20,
        lr=3e-3,
        feature_views=2,
        patience=0,
        workers=0,
        seed=1,
    )
    result = train(cfg)
    # the drawn classes are easy for ImageNet features: 11 of 12 here (seed 1); seeds 2-5 gave 9-11, chance is 4
    assert result.metrics["accuracy"] >= 8 / 12
    run = read_json(tmp_path / "a" / "run.json")
    assert run["frozen_backbone"] and run["pretrained"].startswith("package")
    # a second run with other head settings reuses the cached features: no backbone pass at all
    monkeypatch.setattr(trainer, "compute_features", lambda *a, **k: pytest.fail("features recomputed"))
    again = train(TrainConfig(**{**cfg.to_dict(), "out": str(tmp_path / "b"), "lr": 3e-3}))
    assert again.status == "finished"


def test_split_from_reuses_a_saved_split(tmp_path, toy3, capsys):
    base = dict(data=[str(toy3)], model="cnn", image_size=48, epochs=1, patience=0, workers=0)
    train(TrainConfig(**base, out=str(tmp_path / "one"), seed=3, split="random", ratios=[0.6, 0.2, 0.2]))
    capsys.readouterr()
    # --split/--ratios (here the defaults) do not apply to a reused split: config.json records the split used
    train(TrainConfig(**base, out=str(tmp_path / "two"), seed=4, split_from=str(tmp_path / "one")))
    for name in ("train.csv", "val.csv", "test.csv"):
        assert (tmp_path / "one" / "split" / name).read_text() == (tmp_path / "two" / "split" / name).read_text()
    config = read_json(tmp_path / "two" / "config.json")
    assert config["split"] == "random" and config["ratios"] == pytest.approx([0.6, 0.2, 0.2])
    assert config["seed"] == 4 and config["split_from"] == str(tmp_path / "one")  # --seed still seeds the training
    err = capsys.readouterr().err
    assert "using its split (random, ratios 0.6,0.2,0.2, seed 3), not --split grouped --ratios 0.7,0.15,0.15" in err
    # the same settings as the reused split: nothing to say
    same = dict(split="random", ratios=[0.6, 0.2, 0.2], split_from=str(tmp_path / "one"))
    train(TrainConfig(**base, out=str(tmp_path / "three"), **same))
    assert "using its split" not in capsys.readouterr().err


def test_image_size_below_a_models_floor_is_refused_before_any_work(tmp_path, toy3):
    """Inception-v3's stride-2 convolutions need at least 75 px: a smaller --image-size is a one-line error before
    the run folder is made, not a crash in epoch 1."""
    with pytest.raises(MaskwatchError, match=r"^--image-size must be at least 75 for inceptionv3$"):
        train(TrainConfig(data=[str(toy3)], out=str(tmp_path / "x"), model="inceptionv3", image_size=74))
    assert not (tmp_path / "x").exists()
    TrainConfig(data=["d"], out="o", model="inceptionv3", image_size=75).validate()
    TrainConfig(data=["d"], out="o", model="inceptionv3").validate()  # its own default size
    TrainConfig(data=["d"], out="o", model="cnn", image_size=32).validate()
    with pytest.raises(MaskwatchError, match=r"^--image-size must be at least 32$"):
        TrainConfig(data=["d"], out="o", model="cnn", image_size=31).validate()


def test_a_run_that_raises_is_marked_failed_and_can_be_resumed(tmp_path, toy3):
    """An error in the epoch loop leaves run.json "failed" (with the error), not "running"; --resume continues."""

    def boom(epoch, row):
        if epoch == 1:
            raise RuntimeError("disk on fire")

    cfg = TrainConfig(
        data=[str(toy3)], out=str(tmp_path / "run"), model="cnn", image_size=32, epochs=2, patience=0, workers=0
    )
    with pytest.raises(RuntimeError, match="disk on fire"):
        train(cfg, callbacks=[boom])
    status = read_json(tmp_path / "run" / "run.json")
    assert status["status"] == "failed" and status["error"] == "RuntimeError: disk on fire"
    assert resume(tmp_path / "run").status == "finished"
    status = read_json(tmp_path / "run" / "run.json")
    assert status["status"] == "finished" and "error" not in status


def test_resume_needs_the_runs_data(tmp_path, toy3):
    import shutil

    cfg = TrainConfig(
        data=[str(toy3)], out=str(tmp_path / "run"), model="cnn", image_size=32, epochs=2, patience=0, workers=0
    )
    assert train(cfg, callbacks=[_interrupt_after(1)]).status == "interrupted"
    shutil.move(toy3, tmp_path / "moved")
    with pytest.raises(MaskwatchError, match=r"^data set folder not found: .*toy3 \(the run's --data"):
        resume(tmp_path / "run")


def test_bad_config_is_one_clear_error(tmp_path, toy3):
    with pytest.raises(MaskwatchError, match="--optimizer"):
        train(TrainConfig(data=[str(toy3)], out=str(tmp_path / "x"), optimizer="rmsprop"))
    assert not (tmp_path / "x" / "config.json").exists()
    # an error found while preparing the run leaves no folder behind that the run made, and keeps one it did not
    with pytest.raises(MaskwatchError, match="unknown device"):
        train(TrainConfig(data=[str(toy3)], out=str(tmp_path / "y"), device="bogus"))
    assert not (tmp_path / "y").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(MaskwatchError, match="unknown device"):
        train(TrainConfig(data=[str(toy3)], out=str(tmp_path / "mine"), device="bogus"))
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("opt,schedule", [("sgd", "step"), ("adam", "plateau")])
def test_optimizers_schedules_and_class_weights(tmp_path, toy3, opt, schedule):
    cfg = TrainConfig(
        data=[str(toy3)],
        out=str(tmp_path / "r"),
        model="cnn",
        image_size=48,
        epochs=2,
        optimizer=opt,
        schedule=schedule,
        class_weights="balanced",
        workers=0,
        patience=0,
        augment="strong",
        monitor="val_macro_f1",
    )
    result = train(cfg)
    assert result.status == "finished"
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert len(history) == 2 and all(h["lr"] > 0 for h in history)


def test_early_stopping(tmp_path, toy3):
    cfg = TrainConfig(
        data=[str(toy3)],
        out=str(tmp_path / "r"),
        model="cnn",
        image_size=48,
        epochs=30,
        lr=1e-9,
        patience=2,
        workers=0,
        monitor="val_accuracy",
        augment="none",
        schedule="none",
    )
    result = train(cfg)
    assert result.status == "stopped_early" and result.epochs_run == 3


def _synthetic_set(toy3, synth):
    """A synthetic set as `data synth` writes one: each toy without_mask face copied as mask_worn_incorrectly."""
    (synth / "mask_worn_incorrectly").mkdir(parents=True)
    rows = ["file,label,source"]
    for i, src in enumerate(sorted((toy3 / "without_mask").iterdir())):
        (synth / "mask_worn_incorrectly" / f"s{i}.png").write_bytes(src.read_bytes())
        rows.append(f"mask_worn_incorrectly/s{i}.png,mask_worn_incorrectly,{src}")
    (synth / "manifest.csv").write_text("\n".join(rows) + "\n")
    (synth / "SYNTHETIC").write_text("")
    return synth


def test_synthetic_data_is_reported_apart_from_real_data(tmp_path, toy3):
    """A run with a synthetic set says so, and its test report also scores the real test images alone."""
    synth = _synthetic_set(toy3, tmp_path / "synth")
    cfg = TrainConfig(
        data=[str(toy3), str(synth)], out=str(tmp_path / "run"), model="cnn", image_size=48, epochs=1, workers=0
    )
    train(cfg)
    run = read_json(tmp_path / "run" / "run.json")
    assert run["synthetic_data"] is True and [d["synthetic"] for d in run["data"]] == [False, True]
    test = read_json(tmp_path / "run" / "metrics.json")["test"]["samples"]
    real = read_json(tmp_path / "run" / "test-real" / "metrics.json")["test"]["samples"]
    fake = read_json(tmp_path / "run" / "test-synthetic" / "metrics.json")["test"]["samples"]
    test_csv = (tmp_path / "run" / "split" / "test.csv").read_text()
    assert real + fake == test and fake == sum(str(synth.resolve()) in line for line in test_csv.splitlines()) > 0


def test_init_fine_tunes_a_trained_model_head_included(tmp_path, toy3):
    import torch

    from maskwatch.train.checkpoint import read_checkpoint

    base = dict(data=[str(toy3)], model="cnn", image_size=48, patience=0, workers=0, augment="none")
    train(TrainConfig(**base, out=str(tmp_path / "one"), epochs=2))
    # a learning rate of ~0 leaves every trained parameter where --init put it (batch-norm statistics still move)
    two = train(
        TrainConfig(**base, out=str(tmp_path / "two"), epochs=1, lr=1e-12, init=str(tmp_path / "one"), calibrate=False)
    )
    assert two.status == "finished"
    one_state = read_checkpoint(tmp_path / "one" / "best.pt")["model"]
    two_ckpt = read_checkpoint(tmp_path / "two" / "last.pt")
    from maskwatch.models import create_model

    net = create_model("cnn", 3, pretrained=False, input_size=48)
    params = {name for name, _ in net.named_parameters()}
    assert params and all(torch.allclose(one_state[k], two_ckpt["model"][k], atol=1e-6) for k in params)
    fresh = create_model("cnn", 3, pretrained=False, input_size=48).state_dict()
    assert not all(torch.equal(fresh[k], one_state[k]) for k in params)  # it did not start from scratch
    assert read_json(tmp_path / "two" / "run.json")["pretrained"].startswith("init: ")
    # a resumed --init run still says where its weights came from
    cfg3 = TrainConfig(**base, out=str(tmp_path / "three"), epochs=2, init=str(tmp_path / "one"), calibrate=False)
    assert train(cfg3, callbacks=[_interrupt_after(1)]).status == "interrupted"
    assert resume(tmp_path / "three").status == "finished"
    assert read_json(tmp_path / "three" / "run.json")["pretrained"].startswith("init: ")
    # the default learning rate for --init is a gentle one
    assert TrainConfig(data=[], out="x", init="r").learning_rate(True) == pytest.approx(1e-4)


def test_init_must_match_model_and_labels(tmp_path, toy3):
    base = dict(image_size=48, epochs=1, patience=0, workers=0, augment="none")
    train(TrainConfig(data=[str(toy3)], model="cnn", out=str(tmp_path / "one"), **base))
    toy2 = make_toy_dataset(tmp_path / "toy2", per_class=12, size=48, seed=1)
    with pytest.raises(MaskwatchError, match="labels"):
        train(TrainConfig(data=[str(toy2)], model="cnn", out=str(tmp_path / "two"), init=str(tmp_path / "one"), **base))
    with pytest.raises(MaskwatchError, match="not a mobilenetv2"):
        train(
            TrainConfig(
                data=[str(toy3)], model="mobilenetv2", out=str(tmp_path / "three"), init=str(tmp_path / "one"), **base
            )
        )
    with pytest.raises(MaskwatchError, match="not both"):
        train(TrainConfig(data=[str(toy3)], out=str(tmp_path / "four"), init="a", weights="b"))
    with pytest.raises(MaskwatchError, match=r"^--init: model not found"):
        train(TrainConfig(data=[str(toy3)], model="cnn", out=str(tmp_path / "5"), init=str(tmp_path / "gone"), **base))


def test_feature_cache_keys_on_init_weights_not_their_path():
    """A frozen-backbone run started with --init caches features under the weights, not the path (a run folder
    can be trained again and keep its name)."""
    import torch

    from maskwatch.models import create_model
    from maskwatch.train.features import feature_key

    a = create_model("cnn", 3, pretrained=False, input_size=48)
    b = create_model("cnn", 3, pretrained=False, input_size=48)
    b.load_state_dict(a.state_dict())
    a.pretrained = b.pretrained = "init: runs/same/best.pt"
    assert feature_key(a, []) == feature_key(b, [])
    with torch.no_grad():
        next(b.backbone.parameters()).add_(1.0)
    assert feature_key(a, []) != feature_key(b, [])


def test_synthetic_weight_keeps_real_class_weights_and_weighs_synthetic_images():
    """--synthetic-weight: real images weigh their class weight computed over the real images alone; synthetic
    ones the given weight. Without it (or without synthetic images) the run weighs classes as before."""
    from pathlib import Path

    import numpy as np

    from maskwatch.data.dataset import Sample
    from maskwatch.train.trainer import _class_weights, _sample_weights

    labels = list(CANONICAL_LABELS)  # with_mask, without_mask, mask_worn_incorrectly

    def sample(label: str, synthetic: bool = False) -> Sample:
        p = Path(f"{label}-{synthetic}.png")
        return Sample(str(p), p, label, p, "d", synthetic=synthetic)

    real = [sample("with_mask")] * 6 + [sample("without_mask")] * 3 + [sample("mask_worn_incorrectly")]
    synth = [sample("mask_worn_incorrectly", True)] * 20 + [sample("with_mask", True)] * 20
    cfg = TrainConfig(data=["x"], out="y", class_weights="balanced", synthetic_weight=0.25)
    w = _sample_weights(cfg, real + synth, labels)
    # balanced over the 10 real images: n / (k * n_c) = 10 / (3 * [6, 3, 1])
    expected = {"with_mask": 10 / 18, "without_mask": 10 / 9, "mask_worn_incorrectly": 10 / 3}
    np.testing.assert_allclose(w[: len(real)], [expected[s.label] for s in real], rtol=1e-6)
    assert w[len(real) :] == [0.25] * len(synth)
    # over all 50 images, the rare real class would have weighed 50 / (3 * 21) instead of 10 / 3
    pooled = _class_weights(cfg, real + synth, labels)
    assert float(pooled[2]) == pytest.approx(50 / 63)
    assert _sample_weights(TrainConfig(data=["x"], out="y", class_weights="balanced"), real + synth, labels) is None
    assert _sample_weights(cfg, real, labels) is None  # nothing synthetic: the plain class-weighted loss
    none = TrainConfig(data=["x"], out="y", synthetic_weight=2.0)
    assert _sample_weights(none, real + synth, labels) == [1.0] * len(real) + [2.0] * len(synth)
    with pytest.raises(MaskwatchError, match="--synthetic-weight"):
        TrainConfig(data=["x"], out="y", synthetic_weight=0).validate()


def test_train_step_weighted_loss_is_the_weighted_mean():
    import torch
    from torch import nn

    from maskwatch.train.trainer import train_step

    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    w = torch.tensor([1.0, 2.0, 0.5, 0.0, 3.0])
    per_sample = nn.functional.cross_entropy(model(x), y, reduction="none").detach()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss, ok = train_step(model, x, y, opt, nn.CrossEntropyLoss(reduction="none"), None, w)
    assert loss.item() / 5 == pytest.approx(float((per_sample * w).sum() / w.sum()), rel=1e-5)
    assert ok.item() == int((model(x).argmax(1) == y).sum())
    plain, _ = train_step(model, x, y, opt, nn.CrossEntropyLoss(), None)
    same, _ = train_step(model, x, y, opt, nn.CrossEntropyLoss(reduction="none"), None, torch.ones(5))
    assert plain.item() == pytest.approx(same.item(), rel=1e-6)


def test_a_run_with_synthetic_weight_trains_and_records_it(tmp_path, toy3):
    synth = _synthetic_set(toy3, tmp_path / "synth")
    for freeze in ("none", "backbone"):
        out = tmp_path / f"run-{freeze}"
        cfg = TrainConfig(
            data=[str(toy3), str(synth)],
            out=str(out),
            model="cnn" if freeze == "none" else "efficientnet_lite0",
            freeze=freeze,
            image_size=48 if freeze == "none" else 64,
            epochs=1,
            workers=0,
            class_weights="sqrt",
            synthetic_weight=0.5,
            feature_views=1,
        )
        assert train(cfg).status == "finished"
        assert read_json(out / "config.json")["synthetic_weight"] == 0.5
        assert read_json(out / "history.json")[0]["train_loss"] > 0


def _feature_key_of(tmp_path, monkeypatch, name: str, **changes) -> str:
    """The feature-cache key a frozen-backbone run computes (the features themselves are not computed)."""
    import maskwatch.train.trainer as trainer

    keys = []
    monkeypatch.setattr(trainer, "cached_features", lambda cache, key, build: keys.append(key) or {})
    cfg = TrainConfig(
        data=[str(tmp_path / "voc")],
        out=str(tmp_path / name),
        model="cnn",
        image_size=48,
        freeze="backbone",
        pretrained=False,
        workers=0,
        **changes,
    )
    (tmp_path / name).mkdir()
    trainer._seed_all(cfg.seed)  # as train() does: the same random backbone each time
    trainer._Run(cfg, tmp_path / name).prepare(resuming=False)
    return keys[0]


def test_feature_cache_key_covers_the_crop_settings_and_the_files(tmp_path, monkeypatch):
    """--margin and --min-box change the VOC crops, so the cached features of other crops are not reused (A3);
    neither are the features of a file replaced in place."""
    from conftest import make_voc

    make_voc(tmp_path / "voc", n_images=8)
    base = _feature_key_of(tmp_path, monkeypatch, "a", margin=0.15)
    assert _feature_key_of(tmp_path, monkeypatch, "b", margin=0.15) == base  # same settings: features reused
    assert _feature_key_of(tmp_path, monkeypatch, "c", margin=0.3) != base
    assert _feature_key_of(tmp_path, monkeypatch, "d", margin=0.15, min_box=10) != base

    # a class-folder image rewritten in place (same path, same id) gets new features
    from maskwatch.data import load_data
    from maskwatch.models import create_model
    from maskwatch.train.features import feature_key

    toy = make_toy_dataset(tmp_path / "toy", per_class=2, size=24, seed=1)
    model = create_model("cnn", 2, pretrained=False, input_size=48)
    before = feature_key(model, load_data([toy]).samples)
    assert feature_key(model, load_data([toy]).samples) == before
    first = load_data([toy]).samples[0].path
    Image.new("RGB", (30, 30), (1, 2, 3)).save(first)
    assert feature_key(model, load_data([toy]).samples) != before


def test_resuming_an_init_run_without_last_checkpoint_starts_from_init(tmp_path, toy3):
    """A --init run stopped before its first checkpoint resumes from the --init weights, not random ones (A4)."""
    import torch

    from maskwatch.io import write_json
    from maskwatch.train.checkpoint import read_checkpoint
    from maskwatch.train.trainer import _Run

    base = dict(data=[str(toy3)], model="cnn", image_size=48, patience=0, workers=0, augment="none")
    train(TrainConfig(**base, out=str(tmp_path / "one"), epochs=1, calibrate=False))
    init = read_checkpoint(tmp_path / "one" / "best.pt")["model"]
    cfg = TrainConfig(**base, out=str(tmp_path / "two"), epochs=2, init=str(tmp_path / "one"))
    (tmp_path / "two").mkdir()
    write_json(tmp_path / "two" / "config.json", cfg.to_dict())  # as train() leaves it, with no last.pt yet
    run = _Run(cfg, tmp_path / "two")
    run.prepare(resuming=True)
    state = run.model.state_dict()
    assert set(state) == set(init) and all(torch.equal(state[k].cpu(), init[k]) for k in init)
    assert run.model.pretrained.startswith("init: ")


# ---- reproducibility: a resumed run equals an uninterrupted one, whatever the workers and the feature cache


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
