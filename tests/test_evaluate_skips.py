"""`evaluate` and `evaluate-detect` say on the console which files they skipped, and list them in problems.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import add_broken_files, make_voc
from maskwatch.cli import app


def _problems(out: Path) -> dict[str, str]:
    with (out / "problems.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {Path(r["path"]).name: r["reason"] for r in rows}


def test_evaluate_says_which_files_it_skipped(tmp_path, toy_data):
    from maskwatch.train import TrainConfig, train

    run = train(
        TrainConfig(data=[str(toy_data)], out=str(tmp_path / "run"), model="cnn", image_size=48, epochs=1, workers=0)
    ).run_dir
    expected = add_broken_files(toy_data)
    out = tmp_path / "ev"
    result = CliRunner().invoke(app, ["evaluate", str(run), "--data", str(toy_data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"5 files skipped (see {out / 'problems.csv'})" in result.output
    assert "... 2 more" in result.output  # the first three with their reasons, then how many more
    problems = _problems(out)
    assert set(problems) == set(expected)
    for name, reason in expected.items():
        assert problems[name].startswith(reason), (name, problems[name])
    shown = [name for name in expected if f"{name}: {problems[name]}" in result.output]
    assert len(shown) == 3, result.output
    assert json.loads((out / "metrics.json").read_text())["split"]["skipped_files"] == 5


def test_evaluate_writes_an_empty_problems_list_when_nothing_is_skipped(tmp_path, toy_data):
    from maskwatch.train import TrainConfig, train
    from maskwatch.train.evaluate import evaluate_model

    run = train(
        TrainConfig(data=[str(toy_data)], out=str(tmp_path / "run"), model="cnn", image_size=48, epochs=1, workers=0)
    ).run_dir
    out = tmp_path / "ev"
    (out).mkdir()
    (out / "problems.csv").write_text("path,reason\nold.jpg,from an earlier run\n")
    evaluate_model(run, [str(toy_data)], out=out)
    assert (out / "problems.csv").read_text().splitlines() == ["path,reason"]


def test_evaluate_detect_says_which_files_and_boxes_it_skipped(tmp_path):
    root = make_voc(tmp_path / "voc", n_images=3)
    (root / "annotations" / "broken.xml").write_text("<annotation><filename>broken.png")
    (root / "annotations" / "orphan.xml").write_text("<annotation><filename>gone.png</filename></annotation>")
    (root / "images" / "empty.png").write_bytes(b"")
    (root / "annotations" / "empty.xml").write_text("<annotation><filename>empty.png</filename></annotation>")
    xml = (root / "annotations" / "scene0.xml").read_text()
    (root / "annotations" / "scene0.xml").write_text(
        xml.replace("</annotation>", "<object><name>with_mask</name></object></annotation>")
    )
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["evaluate-detect", "--data", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"3 files and 1 box skipped (see {out / 'problems.csv'})" in result.output
    problems = _problems(out)
    assert problems["broken.xml"].startswith("bad annotation XML")
    assert problems["orphan.xml"] == "annotation names an image that does not exist"
    assert problems["empty.png"] == "zero-byte file"
    assert problems["scene0.xml"] == "object without a valid bndbox"
    m = json.loads((out / "metrics.json").read_text())
    assert m["counts"]["images"] == 3 and len(m["skipped"]) == 4


def _csv_ids(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["id"] for row in csv.DictReader(fh)}


def test_evaluate_subset_takes_the_runs_split_or_needs_split_from(tmp_path, toy_data):
    import shutil

    from maskwatch.train import TrainConfig, train

    run = train(
        TrainConfig(data=[str(toy_data)], out=str(tmp_path / "run"), model="cnn", image_size=48, epochs=1, workers=0)
    ).run_dir
    runner = CliRunner()

    def evaluate(model: Path, out: str, *args: str):
        result = runner.invoke(
            app, ["evaluate", str(model), "--data", str(toy_data), "--out", str(tmp_path / out), *args]
        )
        return result, tmp_path / out / "metrics.json"

    # a checkpoint with no split beside it: --subset alone is refused, before any work
    lone = tmp_path / "lone" / "model.pt"
    lone.parent.mkdir()
    shutil.copy(run / "best.pt", lone)
    result, _ = evaluate(lone, "ev_lone", "--subset", "val")
    assert result.exit_code == 2, result.output
    assert "--subset needs --split-from" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "ev_lone").exists()
    bad, _ = evaluate(run, "ev_bad", "--subset", "everything")
    assert bad.exit_code == 2 and "--subset must be train, val or test" in bad.output, bad.output

    # a run (or a checkpoint in it) with --subset: its own saved split, said on one line
    val = _csv_ids(run / "split" / "val.csv")
    for model, out in ((run, "ev_val"), (run / "best.pt", "ev_val_pt")):
        result, metrics = evaluate(model, out, "--subset", "val")
        assert result.exit_code == 0, result.output
        assert "--subset val: using the split saved with the model" in result.output
        m = json.loads(metrics.read_text())
        assert m["split"]["evaluated"] == "val" and m["test"]["samples"] == len(val)
        assert "warning" not in result.output

    # --split-from alone still means its test part; no training images, so no warning
    result, metrics = evaluate(run, "ev_sf", "--split-from", str(run))
    assert result.exit_code == 0, result.output
    m = json.loads(metrics.read_text())
    assert m["split"]["evaluated"] == "test" and m["test"]["samples"] == len(_csv_ids(run / "split" / "test.csv"))
    assert "warning" not in result.output

    # no subset, no split: every image, with a warning that the model trained on some of them
    result, metrics = evaluate(run, "ev_all")
    assert result.exit_code == 0, result.output
    train_n = len(_csv_ids(run / "split" / "train.csv"))
    text = " ".join(result.output.split())
    assert f"warning: of these 32 images, {train_n} trained this model and {len(val)} picked" in text, text
    assert "metrics on them are optimistic; --subset test scores only its held-out test part" in text
    m = json.loads(metrics.read_text())
    assert m["test"]["samples"] == 32 and m["split"]["seen_in_training"] == {"train": train_n, "val": len(val)}
