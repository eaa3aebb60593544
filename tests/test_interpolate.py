"""``maskwatch interpolate``: weight-space mixing of a model and its fine-tuned copy (WiSE-FT)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.data.toy import make_toy_dataset
from maskwatch.errors import MaskwatchError
from maskwatch.labels import CANONICAL_LABELS
from maskwatch.train import TrainConfig, train
from maskwatch.train.checkpoint import load_model, read_checkpoint
from maskwatch.train.interpolate import interpolate, interpolate_states

runner = CliRunner()


def test_interpolate_states_by_hand():
    base = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    tuned = {"w": torch.tensor([4.0, 6.0]), "n": torch.tensor(7)}
    mixed = interpolate_states(base, tuned, 0.25)
    assert mixed["w"].tolist() == [1.0, 3.0] and mixed["n"].item() == 7  # counters are not averaged
    with pytest.raises(MaskwatchError, match="shape"):
        interpolate_states(base, {"w": torch.zeros(3), "n": torch.tensor(1)}, 0.5)
    with pytest.raises(MaskwatchError, match="different layers"):
        interpolate_states(base, {"w": torch.zeros(2)}, 0.5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("interp")
    toy = make_toy_dataset(root / "toy", per_class=16, size=40, seed=2, labels=CANONICAL_LABELS)
    base = dict(data=[str(toy)], model="cnn", image_size=40, patience=0, workers=0, augment="none")
    train(TrainConfig(**base, out=str(root / "a"), epochs=2))
    train(TrainConfig(**base, out=str(root / "b"), epochs=1, lr=3e-3, init=str(root / "a"), calibrate=False))
    return root, toy


def _params(path):
    net, _ = load_model(path)
    return {k: v for k, v in net.state_dict().items() if k != "temperature"}


def test_ends_of_the_line_are_the_two_models_and_the_middle_is_their_mean(runs):
    root, _toy = runs
    a, b = _params(root / "a"), _params(root / "b")
    assert any(not torch.equal(a[k], b[k]) for k in a)  # fine-tuning moved the weights
    for alpha, want in ((0.0, a), (1.0, b)):
        interpolate(root / "a", root / "b", alpha, root / f"x{alpha}")
        got = _params(root / f"x{alpha}")
        assert all(torch.allclose(got[k].float(), want[k].float()) for k in want)
    interpolate(root / "a", root / "b", 0.5, root / "mid")
    mid = _params(root / "mid")
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(mid[k], (a[k] + b[k]) / 2, atol=1e-6)
    # without data the temperature is interpolated as well
    ta = float(read_checkpoint(root / "a" / "best.pt")["model"]["temperature"])
    tb = float(read_checkpoint(root / "b" / "best.pt")["model"]["temperature"])
    report = json.loads((root / "mid" / "interpolation.json").read_text())
    assert report["temperature"] == pytest.approx((ta + tb) / 2, rel=1e-5) and report["calibration"] is None
    assert read_checkpoint(root / "mid" / "best.pt")["interpolation"]["alpha"] == 0.5


def test_cli_refits_the_temperature_on_the_validation_part_and_the_result_exports(runs):
    root, toy = runs
    out = root / "cal"
    result = runner.invoke(
        app,
        [
            "interpolate",
            str(root / "a"),
            str(root / "b"),
            "--alpha",
            "0.7",
            "--out",
            str(out),
            "--data",
            str(toy),
            "--split-from",
            str(root / "a"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "interpolation.json").read_text())
    val = json.loads((root / "a" / "split" / "split.json").read_text())["val"]["images"]
    assert report["calibration"]["val_images"] == val and report["temperature"] > 0
    assert float(read_checkpoint(out / "best.pt")["model"]["temperature"]) == pytest.approx(report["temperature"])
    exported = runner.invoke(app, ["export", str(out), "--out", str(root / "cal.onnx")])
    assert exported.exit_code == 0 and "same label on" in exported.output


def test_bad_arguments_are_one_line_errors(runs, tmp_path):
    root, toy = runs
    other = make_toy_dataset(tmp_path / "two", per_class=8, size=40, seed=1)  # two labels
    train(TrainConfig(data=[str(other)], model="cnn", image_size=40, epochs=1, workers=0, out=str(tmp_path / "c")))
    cases = [
        (["--alpha", "1.5"], "--alpha"),
        (["--alpha", "0.5", "--out", str(root / "a")], "already holds"),  # never overwrite a run's checkpoint
        (["--alpha", "0.5", "--data", str(toy)], "together"),
    ]
    for extra, message in cases:
        result = runner.invoke(
            app, ["interpolate", str(root / "a"), str(root / "b"), "--out", str(tmp_path / "o"), *extra]
        )
        assert result.exit_code != 0 and message in result.output
    result = runner.invoke(
        app, ["interpolate", str(root / "a"), str(tmp_path / "c"), "--alpha", "0.5", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0 and "differ in labels" in result.output and "Traceback" not in result.output
