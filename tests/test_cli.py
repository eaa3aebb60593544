import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import add_broken_files
from maskwatch.cli import app

runner = CliRunner()
PROC = Path("/proc/self").is_dir()  # Linux: a folder nobody, root included, can create entries in


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version_and_models():
    assert "maskwatch" in _run("--version").output
    out = _run("models").output
    assert "efficientnet_lite0" in out and "inception_mini" in out


def test_data_inspect_reports_problems_and_duplicates(tmp_path, toy_data):
    add_broken_files(toy_data)
    (toy_data / "with_mask" / "copy.png").write_bytes((toy_data / "with_mask" / "with_mask_1.png").read_bytes())
    result = _run("data", "inspect", toy_data, "--out", tmp_path / "rep")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["counts"] == {"with_mask": 17, "without_mask": 16}
    assert len(report["problems"]) == 5
    assert report["exact_duplicates"]["groups"] == 1
    assert report["image_size"]["width"]["max"] == 48
    for name in ("class_balance.png", "samples.png", "duplicates.png"):
        assert (tmp_path / "rep" / name).is_file()


def test_data_inspect_names_only_the_pictures_it_wrote(tmp_path, toy_data):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "duplicates.png").write_bytes(b"from an earlier inspect")  # stale: must not pass for this one's
    result = _run("data", "inspect", toy_data, "--out", out)  # drawn toy faces: no near-duplicate groups
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["near_duplicates"]["groups"] == 0
    assert report["pictures"] == ["class_balance.png", "samples.png"]
    assert all((out / name).is_file() for name in report["pictures"])
    assert not (out / "duplicates.png").exists()
    text = " ".join(result.output.split())
    assert "pictures: class_balance.png, samples.png (no near-duplicate groups, so no duplicates.png)" in text


def test_dup_thresholds_out_of_range_are_one_line_errors(tmp_path, toy_data):
    for args, needle in [
        (("data", "inspect", toy_data, "--dup-threshold", "-5"), "--dup-threshold must be a whole number"),
        (("data", "inspect", toy_data, "--dup-threshold", "100"), "--dup-threshold must be a whole number"),
        (("data", "inspect", toy_data, "--dup-embed", "1.5"), "--dup-embed must be a cosine similarity"),
        (("data", "inspect", toy_data, "--dup-embed", "-0.5"), "--dup-embed must be a cosine similarity"),
        (("train", "--data", toy_data, "--dup-threshold", "-5", "--out", tmp_path / "t"), "--dup-threshold must be"),
    ]:
        result = _run(*args, *(() if args[0] == "train" else ("--out", tmp_path / "rep")))
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output and len(result.output.strip().splitlines()) == 1, (args, result.output)
    assert not (tmp_path / "rep").exists()  # data inspect refuses before any work


def test_train_evaluate_classify_end_to_end(tmp_path, toy_data):
    run = tmp_path / "run"
    result = _run(
        "train",
        "--data",
        toy_data,
        "--model",
        "cnn",
        "--image-size",
        "48",
        "--epochs",
        "2",
        "--out",
        run,
        "--workers",
        "0",
        "--patience",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert (run / "best.pt").is_file()
    ev = _run("evaluate", run, "--data", toy_data, "--out", tmp_path / "ev", "--split-from", run, "--subset", "test")
    assert ev.exit_code == 0, ev.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    saved = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["samples"] == saved["test"]["samples"]
    assert metrics["test"]["accuracy"] == pytest.approx(saved["test"]["accuracy"])  # same model, same images
    assert metrics["split"]["crops"] == {"margin": 0.15, "min_box": 12}  # the report says how faces were cropped
    (tmp_path / "bad.jpg").write_text("not an image")
    out = tmp_path / "out.jsonl"
    cl = _run(
        "classify",
        "--model",
        run,
        toy_data / "with_mask",
        tmp_path / "bad.jpg",
        str(toy_data / "without_mask" / "*_1*.png"),
        "--jsonl",
        out,
    )
    assert cl.exit_code == 1  # one input failed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 16 + 1 + 7  # with_mask folder, the bad file, the glob (_1 and _10.._15)
    bad = [x for x in lines if "error" in x]
    assert bad == [{"source": str(tmp_path / "bad.jpg"), "error": "not an image"}]
    good = lines[0]
    assert set(good) == {"source", "label", "score", "probs", "reframed", "face_box"}
    assert not any(x.get("reframed") for x in lines)  # generated toy images hold no face to cut out
    assert good["score"] == pytest.approx(max(good["probs"].values()))
    assert sum(good["probs"].values()) == pytest.approx(1.0, abs=1e-5)

    # ONNX export: the exported model gives the same probabilities as the checkpoint, through classify too.
    ex = _run("export", run, "--out", tmp_path / "m.onnx")
    assert ex.exit_code == 0, ex.output
    assert re.search(r"same label on (\d+)/\1 test images", ex.output), ex.output  # the run's own test images
    out2 = tmp_path / "onnx.jsonl"
    cl2 = _run("classify", "--model", tmp_path / "m.onnx", toy_data / "with_mask", "--jsonl", out2, "--no-reframe")
    assert cl2.exit_code == 0, cl2.output
    onnx_lines = [json.loads(line) for line in out2.read_text().splitlines()]
    assert set(onnx_lines[0]) == {"source", "label", "score", "probs"}
    assert [x["source"] for x in onnx_lines] == [x["source"] for x in lines[:16]]
    for a, b in zip(lines[:16], onnx_lines, strict=True):
        assert a["label"] == b["label"]
        for k in a["probs"]:
            assert b["probs"][k] == pytest.approx(a["probs"][k], abs=1e-4)
    # int8: smaller file, still loads and mostly agrees
    ex8 = _run("export", run, "--int8", "--out", tmp_path / "m8.onnx")
    assert ex8.exit_code == 0, ex8.output
    assert (tmp_path / "m8.onnx").stat().st_size < (tmp_path / "m.onnx").stat().st_size
    assert "test images" in " ".join(ex8.output.split()) and "WARNING" not in ex8.output  # onnxruntime's advice: off


def test_errors_are_one_line_without_traceback(tmp_path, toy_data):
    for args, needle in [
        (("train", "--data", tmp_path / "missing", "--out", tmp_path / "r0"), "data set folder not found"),
        (("train", "--data", toy_data, "--model", "vgg99", "--out", tmp_path / "r"), "unknown model"),
        (("train", "--data", toy_data, "--ratios", "a,b", "--out", tmp_path / "r2"), "--ratios"),
        (("evaluate", tmp_path / "nope.pt", "--data", toy_data), "model not found"),
        (("classify", toy_data, "--model", toy_data / "with_mask" / "with_mask_0.png"), "not a maskwatch checkpoint"),
        (("classify", toy_data, "--model", tmp_path / "none.onnx"), "model not found"),
        (("classify", toy_data, "--backend", "tpu"), "--backend must be one of"),
        (("detect", toy_data, "--every", "0"), "--every must be at least 1"),
        (("detect", toy_data, "--det-threshold", "1.5"), "threshold"),
        (("evaluate-detect", "--data", toy_data), "not a Pascal VOC folder"),
        (("export", tmp_path / "nope.pt"), "model not found"),
        (("train", "--resume", tmp_path), "not a run folder"),
        (("evaluate", tmp_path / "[best].pt", "--data", toy_data), "[best].pt"),  # no rich markup eaten
        (("train", "--data", toy_data, "--device", "cuda:7", "--out", tmp_path / "r3"), "--device cuda:7"),
        (("train", "--data", toy_data, "--device", "tpu", "--out", tmp_path / "r4"), "unknown device"),
        (("train", "--data", toy_data / "with_mask", "--out", tmp_path / "r5"), "no usable images"),
        (("serve", "--api-key", "short"), "--api-key must be at least 8"),
        (("serve", "--queue", "0"), "--queue must be at least 1"),
        (("serve", "--port", "70000"), "--port must be between"),
        (("serve", "--read-timeout", "0"), "--read-timeout must be positive"),
        (("serve", "--model", tmp_path / "none.onnx"), "model not found"),
        (("classify", toy_data, "--batch-size", "0"), "--batch-size must be at least 1"),
        (("evaluate", tmp_path / "nope.pt", "--data", toy_data, "--batch-size", "0"), "--batch-size must be at least"),
        (("detect", toy_data, "--classify-every", "0"), "--classify-every must be at least 1"),
        (("detect", toy_data, "--det-size", "10"), "--det-size must be 0 (native) or at least 32"),
        (("detect", toy_data, "--tiles", "9"), "--tiles must be between 0 and 8"),
        (("demo", "--out", toy_data), "was not made by demo"),
    ]:
        result = _run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    for name in ("r", "r2", "r3", "r4", "r5"):  # a failed start leaves no run behind to block a retry
        assert not (tmp_path / name / "config.json").exists()
    assert len(list((toy_data / "with_mask").iterdir())) == 16  # demo refused the folder and left it whole


def test_classify_jsonl_into_a_new_folder(tmp_path, toy_data):
    out = tmp_path / "new" / "dir" / "out.jsonl"
    result = _run("classify", toy_data / "with_mask", "--jsonl", out, "--no-reframe")
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 16


def test_classify_reports_what_it_cannot_classify(tmp_path, toy_data, monkeypatch):
    """Inputs resolve as for detect (~ expanded, folders, globs); missing files, non-images and videos each get an
    error line in the output, and the images are still classified."""
    monkeypatch.setenv("HOME", str(toy_data))
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "list.txt").write_text("gone.jpg\n")  # a .txt SOURCE is a manifest: one path per line
    (tmp_path / "clip.mp4").write_bytes(b"")
    out = tmp_path / "out.jsonl"
    specs = [
        "~/with_mask/*.png",
        tmp_path / "missing.jpg",
        tmp_path / "notes.md",
        tmp_path / "clip.mp4",
        tmp_path / "list.txt",
    ]
    result = _run("classify", *specs, "--jsonl", out, "--no-reframe")
    assert result.exit_code == 1, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    errors = {Path(x["source"]).name: x["error"] for x in lines if "error" in x}
    assert errors == {
        "missing.jpg": "does not exist",
        "notes.md": "not an image or video (unknown extension .md)",
        "gone.jpg": "does not exist",
        "clip.mp4": "a video, not a face image: use `maskwatch detect`",
    }
    assert sum("label" in x for x in lines) == 16
    assert "error: 4" in result.output


def test_video_det_size_is_checked_before_any_work(tmp_path, toy_data):
    for value in ("5", "-1"):
        result = _run("detect", toy_data, "--video-det-size", value, "--save-dir", tmp_path / "det")
        assert result.exit_code == 2, result.output
        assert f"--video-det-size must be 0 (native) or at least 32 pixels (got {value})" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "det").exists()  # refused before a photo was processed


def test_bad_output_paths_are_one_line_before_any_work(tmp_path, toy_data):
    afile = tmp_path / "afile"
    afile.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    model = tmp_path / "nope.pt"  # the output is checked first: neither model nor data are looked at
    for args, needle in [
        (("detect", toy_data, "--save-dir", afile), f"--save-dir {afile} is a file"),
        (("detect", toy_data, "--save-dir", afile / "sub"), f"cannot create it, {afile} is a file"),
        (("detect", toy_data, "--no-save", "--jsonl", folder), f"--jsonl {folder} is a folder"),
        (("detect", toy_data, "--no-save", "--jsonl", afile / "x.jsonl"), f"cannot create it, {afile} is a file"),
        (("classify", toy_data, "--jsonl", folder), f"--jsonl {folder} is a folder"),
        (("evaluate", model, "--data", toy_data, "--out", afile), f"--out {afile} is a file"),
        (("evaluate-detect", "--data", toy_data, "--out", afile), f"--out {afile} is a file"),
        (("data", "inspect", toy_data, "--out", afile), f"--out {afile} is a file"),
        (("data", "synth", "--faces", toy_data, "--out", afile), f"--out {afile} is a file"),
        (("demo", "--out", afile), f"--out {afile} is a file"),
        (("train", "--data", toy_data, "--out", afile), f"--out {afile} is a file"),
        (("export", model, "--out", folder), f"--out {folder} is a folder"),
        (("interpolate", model, model, "--alpha", "0.5", "--out", afile), f"--out {afile} is a file"),
        (("compare", "--data", toy_data, "--out", afile), f"--out {afile} is a file"),
        (("serve", "--db", folder), f"--db {folder} is a folder"),
        (("serve", "--store-images", afile), f"--store-images {afile} is a file"),
        *([(("detect", toy_data, "--save-dir", "/proc/mw"), "--save-dir /proc/mw: cannot write in /proc")] * PROC),
    ]:
        result = _run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output and "Traceback" not in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, (args, result.output)
    assert afile.read_text() == "x" and not any(folder.iterdir())


def test_existing_outputs_of_the_right_kind_are_accepted(tmp_path):
    """A re-run writes over its --jsonl file and into its folders: those are no errors."""
    from maskwatch.paths import check_output_path

    (tmp_path / "faces.jsonl").write_text("{}\n")
    check_output_path("--jsonl", tmp_path / "faces.jsonl", folder=False)
    check_output_path("--jsonl", tmp_path / "new" / "faces.jsonl", folder=False)
    check_output_path("--save-dir", tmp_path)
    check_output_path("--save-dir", tmp_path / "new" / "deeper")


def test_demo_checks_its_arguments_before_deleting_the_previous_demo(tmp_path):
    out = tmp_path / "demo"
    (out / "run").mkdir(parents=True)
    (out / ".maskwatch-demo").write_text("made by `maskwatch demo`")
    (out / "run" / "best.pt").write_text("previous results")
    result = _run("demo", "--out", out, "--epochs", "0")
    assert result.exit_code == 2, result.output
    assert "--epochs must be at least 1" in result.output
    assert (out / "run" / "best.pt").read_text() == "previous results"
    assert not (out / "data").exists()


def test_detect_faces_table_header_shows_the_box_format(tmp_path, toy_data):
    photo = toy_data / "with_mask" / "with_mask_0.png"
    result = _run("detect", photo, "--no-save")
    assert result.exit_code == 0, result.output
    assert "box [x1, y1, x2, y2]" in result.output


def test_jsonl_dash_is_stdout(tmp_path, toy_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    det = _run("detect", toy_data / "with_mask", "--no-save", "--jsonl", "-")
    assert det.exit_code == 0, det.output
    lines = [json.loads(line) for line in det.stdout.splitlines()]  # stdout holds only the JSON lines
    assert len(lines) == 16 and all("faces" in x for x in lines)
    cl = _run("classify", toy_data / "with_mask", "--no-reframe", "--jsonl", "-")
    assert cl.exit_code == 0, cl.output
    assert [set(json.loads(line)) for line in cl.stdout.splitlines()] == [{"source", "label", "score", "probs"}] * 16
    assert not (tmp_path / "-").exists()


def test_models_table_shows_whole_weight_sources():
    from maskwatch.models import get_spec, list_models

    result = _run("models")  # not a terminal: 80 columns
    assert result.exit_code == 0, result.output
    column = "".join(line.split("│")[3] for line in result.output.splitlines() if line.startswith("│"))
    column = "".join(column.split())
    for name in list_models():
        source = get_spec(name).pretrained_source or "none (trains from scratch)"
        assert "".join(source.split()) in column, source


def test_python_dash_m_maskwatch():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "maskwatch", "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("maskwatch ")


def test_classify_counts_a_file_named_twice_once(tmp_path, toy_data):
    out = tmp_path / "c.jsonl"
    one = toy_data / "with_mask" / "with_mask_1.png"
    result = _run("classify", toy_data / "with_mask", one, str(toy_data / "with_mask" / "*_1.png"), "--jsonl", out)
    assert result.exit_code == 0, result.output
    sources = [json.loads(line)["source"] for line in out.read_text().splitlines()]
    assert len(sources) == 16 and len(set(sources)) == 16


def test_resume_refuses_options_it_would_ignore(tmp_path):
    result = _run("train", "--resume", tmp_path / "run", "--lr", "0.5", "--batch-size", "32")
    assert result.exit_code == 2, result.output
    assert "takes --epochs only, not --batch-size, --lr" in " ".join(result.output.split())
    result = _run("train", "--data", tmp_path, "--dup-threshold", "40", "--split-from", tmp_path)
    assert result.exit_code == 2 and "--dup-threshold must be" in result.output, result.output


def test_every_train_option_fills_its_train_config_field():
    """``train`` builds its TrainConfig by option name: an option added without a field would be refused at run time,
    so this finds it first; and the options' values land in the fields of the same name."""
    from dataclasses import fields

    import typer.main

    from maskwatch.cli.train import _train_config
    from maskwatch.train import TrainConfig

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    options = {p.name for p in command.params} - {"resume"}
    assert options <= {f.name for f in fields(TrainConfig)}
    cfg = _train_config({"data": [Path("d")], "model": "cnn", "ratios": "0.8,0.1,0.1", "epochs": 3, "seed": 7})
    assert (cfg.model, cfg.epochs, cfg.seed, cfg.ratios, cfg.out) == ("cnn", 3, 7, [0.8, 0.1, 0.1], "runs/cnn-d")
