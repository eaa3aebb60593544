from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from torch import nn
from typer.testing import CliRunner

from conftest import make_voc
from maskwatch.cli.compare import register
from maskwatch.compare.presets import PRESETS, STUDY_MODELS, Overrides, resolve_settings
from maskwatch.compare.profile import count_flops, count_params, measure_latency
from maskwatch.data.toy import make_toy_dataset
from maskwatch.errors import MaskwatchError
from maskwatch.labels import CANONICAL_LABELS

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keeps `compare` a named subcommand
        pass

    return app


def test_flops_params_and_latency_of_known_layers():
    conv = nn.Conv2d(3, 8, 3)  # 10x10 input, no padding: 8x8 outputs x 8 channels x 27 multiply-adds
    assert count_flops(conv, 10) == 2 * 8 * 8 * 8 * 3 * 3 * 3
    assert count_params(conv) == 8 * 27 + 8
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    assert count_flops(linear, 4) == 2 * 48 * 5
    assert measure_latency(conv, 10, batch=2, runs=2, warmup=1) > 0


def _probe_ok(name: str) -> str:
    assert name == "efficientnet_lite0", f"cpu-quick asked {name} for weights"
    return "package: offline"


def _probe_fails(name: str) -> str:
    raise MaskwatchError(f"cannot load pretrained weights for {name}")


def test_presets_resolve_per_model_settings():
    quick = resolve_settings(list(STUDY_MODELS), PRESETS["cpu-quick"], Overrides(), _probe_ok)
    lite = quick["efficientnet_lite0"]
    assert lite.pretrained and lite.freeze == "backbone" and lite.image_size == 224
    assert lite.expected_weights == "package: offline"
    for name in ("cnn", "resnet50", "xception"):
        assert not quick[name].pretrained and quick[name].freeze == "none" and quick[name].image_size == 64
    assert quick["inceptionv3"].image_size == 80  # its floor is 75 px
    assert {s.epochs for s in quick.values()} == {5} and {s.time_limit for s in quick.values()} == {240.0}
    # pretrained weights that do not load: cpu-quick trains from scratch, gpu-full reports the model failed
    fallback = resolve_settings(["efficientnet_lite0"], PRESETS["cpu-quick"], Overrides(), _probe_fails)
    lite = fallback["efficientnet_lite0"]
    assert not lite.pretrained and lite.freeze == "none" and lite.image_size == 64 and lite.error is None
    assert "did not load" in lite.note
    full = resolve_settings(["cnn", "resnet50"], PRESETS["gpu-full"], Overrides(), _probe_fails)
    assert full["cnn"].error is None and full["cnn"].image_size == 128
    assert "cannot load pretrained weights for resnet50" in full["resnet50"].error
    forced = resolve_settings(["resnet50"], PRESETS["gpu-full"], Overrides(fallback_scratch=True), _probe_fails)
    assert forced["resnet50"].error is None and not forced["resnet50"].pretrained
    # explicit flags override the preset
    over = Overrides(epochs=3, image_size=96, time_limit=0, batch_size=8, freeze="none", patience=0)
    s = resolve_settings(["efficientnet_lite0"], PRESETS["cpu-quick"], over, _probe_ok)["efficientnet_lite0"]
    assert (s.epochs, s.image_size, s.time_limit, s.batch_size, s.freeze, s.patience) == (3, 96, None, 8, "none", 0)
    small = resolve_settings(["inceptionv3"], PRESETS["cpu-quick"], Overrides(image_size=64), _probe_ok)
    assert "at least 75 px" in small["inceptionv3"].error


def _read_csv(path: Path) -> dict[str, dict]:
    with path.open(newline="") as fh:
        return {row["model"]: row for row in csv.DictReader(fh)}


def test_compare_end_to_end_failure_and_resume(tmp_path, monkeypatch):
    import maskwatch.train.trainer as trainer

    data = make_toy_dataset(tmp_path / "toy", per_class=12, size=40, seed=2, labels=CANONICAL_LABELS)
    voc = make_voc(tmp_path / "voc", n_images=2)
    out = tmp_path / "cmp"
    real_create = trainer.create_model

    def create_model(name, *args, **kwargs):
        if name == "mobilenetv2":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nsecond line")
        return real_create(name, *args, **kwargs)

    monkeypatch.setattr(trainer, "create_model", create_model)
    args = [
        "compare",
        "--data",
        data,
        "--eval-data",
        voc,
        "--models",
        "cnn,inception_mini,mobilenetv2",
        "--out",
        out,
        "--epochs",
        "2",
        "--time-limit",
        "0.001",
        "--image-size",
        "32",
        "--workers",
        "0",
        "--latency-runs",
        "1",
    ]
    result = runner.invoke(_app(), [str(a) for a in args])
    assert result.exit_code == 1, result.output  # one model failed; the others went on
    assert "mobilenetv2 failed" in result.output
    report = json.loads((out / "results.json").read_text())
    rows = {r["model"]: r for r in report["models"]}
    test_images = report["split"]["test"]["images"]
    for name in ("cnn", "inception_mini"):
        r = rows[name]
        assert r["status"] == "ok" and r["reason"] is None
        assert r["run_status"] == "time_limit" and r["epochs_run"] == 1  # stopped by the time limit
        assert r["test_samples"] == test_images > 0
        assert r["params"] > 0 and r["flops"] > 0 and r["latency_ms_b1"] > 0 and r["latency_ms_b32"] > 0
        assert r["pretrained"] is False and r["pretrained_source"] is None and r["image_size"] == 32
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["macro_f1"] <= 1 and r["test_loss"] > 0
        assert set(r["per_class_f1"]) == set(CANONICAL_LABELS)
        assert r["cross_samples"] == 6 and r["cross_accuracy"] is not None  # 3 boxes per scene, tiny ones skipped
        split = (out / "runs" / name / "split" / "test.csv").read_text()
        assert split == (out / "split" / "test.csv").read_text()  # the one shared split
    failed = rows["mobilenetv2"]
    assert failed["status"] == "failed"
    assert failed["reason"] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert failed["accuracy"] is None and failed["params"] > 0  # still sized, from a fresh model
    table = _read_csv(out / "results.csv")
    assert set(table) == {"cnn", "inception_mini", "mobilenetv2"}
    assert table["cnn"]["status"] == "ok" and table["mobilenetv2"]["status"] == "failed"
    assert float(table["cnn"]["flops"]) > 0 and table["cnn"]["f1_with_mask"] != ""
    md = (out / "results.md").read_text()
    assert "`inception_mini`" in md and "## Failed" in md and "CUDA out of memory" in md
    assert "torch" in md.lower() and "this CPU" in md
    for name in ("scores.png", "val_curves.png", "confusion_matrices.png"):
        assert (out / name).stat().st_size > 0, name
    settings = json.loads((out / "compare.json").read_text())["settings"]
    assert settings["cnn"]["time_limit"] == 0.001 and settings["cnn"]["image_size"] == 32

    # a second run without --resume refuses; with --resume it skips finished runs and continues interrupted ones
    again = runner.invoke(_app(), [str(a) for a in args])
    assert again.exit_code == 2 and "already holds a comparison" in again.output
    kept = (out / "runs" / "inception_mini" / "best.pt").stat().st_mtime_ns
    run_json = out / "runs" / "cnn" / "run.json"
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "status": "interrupted"}))
    (out / "runs" / "cnn" / "metrics.json").unlink()  # as if killed before its test evaluation
    trained = []
    real_train = trainer.train

    def spy_train(cfg, *a, **k):
        trained.append(cfg.model)
        return real_train(cfg, *a, **k)

    monkeypatch.setattr(trainer, "train", spy_train)
    resumed = runner.invoke(_app(), [*map(str, args), "--resume"])
    assert resumed.exit_code == 1, resumed.output
    assert trained == ["mobilenetv2"]  # retried (and failing again); the others were not trained afresh
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["models"]}
    assert (out / "runs" / "inception_mini" / "best.pt").stat().st_mtime_ns == kept
    assert "reused" in rows["inception_mini"]["note"] and rows["inception_mini"]["epochs_run"] == 1
    assert rows["cnn"]["status"] == "ok" and rows["cnn"]["epochs_run"] == 2  # continued from last.pt
    assert rows["cnn"]["run_status"] == "finished" and rows["cnn"]["test_samples"] == test_images
    assert rows["mobilenetv2"]["status"] == "failed"
    with pytest.raises(MaskwatchError, match="reached its time limit"):
        trainer.resume(out / "runs" / "inception_mini")


def test_interrupted_comparison_stops_and_says_how_to_resume(tmp_path, monkeypatch):
    import maskwatch.train.trainer as trainer

    data = make_toy_dataset(tmp_path / "toy", per_class=6, size=32, seed=4)

    def interrupt(self, progress, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer._Run, "_train_epoch", interrupt)
    out = tmp_path / "cmp"
    args = ["compare", "--data", data, "--models", "cnn,inception_mini", "--out", out, "--image-size", "32"]
    result = runner.invoke(_app(), [*map(str, args), "--workers", "0", "--latency-runs", "1"])
    assert result.exit_code == 130, result.output
    assert "--resume" in result.output
    rows = json.loads((out / "results.json").read_text())["models"]
    assert [(r["model"], r["status"]) for r in rows] == [("cnn", "interrupted")]
    assert json.loads((out / "runs" / "cnn" / "run.json").read_text())["status"] == "interrupted"
