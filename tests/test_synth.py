"""``maskwatch data synth``: output layout, manifest, determinism, grouping with the source faces, bad inputs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.data import load_data, make_split
from maskwatch.data.duplicates import find_duplicates, sample_groups
from maskwatch.errors import MaskwatchError
from maskwatch.runtime.classifiers import ASSETS
from maskwatch.synth.make import MANIFEST, synthesize

runner = CliRunner()


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A class-folder set: three unmasked face photos made from the bundled astronaut, a blank image (no face)
    and a broken file."""
    root = tmp_path_factory.mktemp("faces")
    (root / "without_mask").mkdir()
    (root / "with_mask").mkdir()
    astro = Image.open(ASSETS / "samples" / "astronaut.jpg").convert("RGB")
    face = astro.crop((140, 20, 310, 210))
    face.save(root / "without_mask" / "a.jpg")
    face.transpose(Image.FLIP_LEFT_RIGHT).save(root / "without_mask" / "b.jpg")
    face.resize((120, 134)).rotate(8, fillcolor=(90, 90, 90)).save(root / "without_mask" / "c.jpg")
    Image.new("RGB", (120, 120), (30, 120, 60)).save(root / "without_mask" / "blank.jpg")
    (root / "without_mask" / "broken.jpg").write_bytes(b"not an image")
    face.save(root / "with_mask" / "ignored.jpg")  # only without_mask faces are drawn on
    return root


def _rows(out):
    with (out / MANIFEST).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_synth_writes_class_folders_manifest_and_marker(tmp_path, faces):
    out = tmp_path / "synth"
    report = synthesize([faces], out, per_face=4, seed=1)
    assert report.faces == 4  # a, b, c and the blank (the broken file is a load problem)
    assert [s["reason"] for s in report.skipped] == ["no face found"]
    rows = _rows(out)
    assert len(rows) == report.written == 3 * 4
    assert (out / "SYNTHETIC").is_file()
    for row in rows:
        path = out / row["file"]
        assert path.is_file() and path.parent.name == row["label"]
        assert row["source"].endswith(("a.jpg", "b.jpg", "c.jpg"))
        if row["kind"] == "mask":
            assert (row["placement"] == "correct") == (row["label"] == "with_mask")
        else:
            assert row["label"] == "without_mask" and row["style"] in ("hand", "scarf", "paper")
    saved = json.loads((out / "report.json").read_text())
    assert saved["written"] == 12 and sum(saved["counts"].values()) == 12
    with pytest.raises(MaskwatchError, match="not empty"):
        synthesize([faces], out, per_face=1)


def test_synth_is_deterministic(tmp_path, faces):
    a, b, c = (synthesize([faces], tmp_path / n, per_face=2, seed=s) for n, s in (("a", 5), ("b", 5), ("c", 6)))
    assert a.written == b.written == c.written
    rows_a, rows_b, rows_c = _rows(a.out), _rows(b.out), _rows(c.out)
    assert rows_a == rows_b
    for row in rows_a:
        assert (a.out / row["file"]).read_bytes() == (b.out / row["file"]).read_bytes()
    differs = [
        r
        for r in rows_c
        if not (a.out / r["file"]).exists() or (a.out / r["file"]).read_bytes() != (c.out / r["file"]).read_bytes()
    ]
    assert differs  # another seed, other images
    # the same faces elsewhere: the same file names and images (draws depend on paths inside the set, not on where)
    import shutil

    moved = tmp_path / "elsewhere" / "faces"
    shutil.copytree(faces, moved)
    d = synthesize([moved], tmp_path / "d", per_face=2, seed=5)
    rows_d = _rows(d.out)
    assert [r["file"] for r in rows_d] == [r["file"] for r in rows_a]
    for row in rows_d:
        assert (d.out / row["file"]).read_bytes() == (a.out / row["file"]).read_bytes()


def test_synthetic_images_are_grouped_with_their_source_face(tmp_path, faces, monkeypatch):
    out = tmp_path / "synth"
    synthesize([faces], out, per_face=3, seed=2)
    monkeypatch.chdir(tmp_path)  # a set named by a relative path (as on the command line) must group the same way
    bundle = load_data([str(faces), "synth"])
    synthetic = [s for s in bundle.samples if s.synthetic]
    assert synthetic and all(
        s.source.parent.name == "without_mask" and s.source.parent.parent == faces for s in synthetic
    )
    report = find_duplicates(bundle.samples, bundle.index)
    groups = sample_groups(bundle.samples, report)
    for seed in range(5):
        split = make_split(bundle.samples, groups, kind="grouped", seed=seed)
        where = {}
        for part, members in (("train", split.train), ("val", split.val), ("test", split.test)):
            for s in members:
                where.setdefault(s.source, set()).add(part)
        assert all(len(parts) == 1 for parts in where.values())  # no source face on two sides


def test_synth_cli_and_bad_inputs(tmp_path, faces):
    out = tmp_path / "cli"
    result = runner.invoke(app, ["data", "synth", "--faces", str(faces), "--out", str(out), "--per-face", "1"])
    assert result.exit_code == 0, result.output
    assert "3 images from 3 of 4 faces" in result.output
    for args, needle in [
        (["--faces", str(faces), "--out", str(out)], "not empty"),
        (["--faces", str(faces), "--out", str(tmp_path / "x"), "--per-face", "0"], "--per-face"),
        (["--faces", str(faces), "--out", str(tmp_path / "y"), "--negatives", "0.7", "--incorrect", "0.5"], "shares"),
        (["--faces", str(tmp_path / "missing"), "--out", str(tmp_path / "z")], "not found"),
    ]:
        bad = runner.invoke(app, ["data", "synth", *args])
        assert bad.exit_code == 2, (args, bad.output)
        assert needle in bad.output and len(bad.output.strip().splitlines()) == 1
    blank = tmp_path / "blank"
    (blank / "without_mask").mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(blank / "without_mask" / "x.jpg")
    none = runner.invoke(app, ["data", "synth", "--faces", str(blank), "--out", str(tmp_path / "n")])
    assert none.exit_code == 2 and "no face found" in none.output


def test_realistic_mix_follows_its_weights(tmp_path, faces):
    from collections import Counter

    from maskwatch.synth.draw import MIXES

    out = tmp_path / "realistic"
    synthesize([faces], out, per_face=40, seed=1, mix="realistic", negatives=0.0, incorrect=0.5)
    rows = _rows(out)
    assert json.loads((out / "report.json").read_text())["mix"] == "realistic"
    wrong = Counter(r["placement"] for r in rows if r["label"] == "mask_worn_incorrectly")
    colours = Counter(r["color"] for r in rows)
    patterns = Counter(r["pattern"] for r in rows)
    assert wrong.most_common(1)[0][0] == "under_nose" and wrong["under_nose"] > wrong["slipped_side"]
    assert colours.most_common(1)[0][0] == "light_blue" and patterns.most_common(1)[0][0] == "plain"
    weights = MIXES["realistic"]
    assert all(abs(sum(w.values()) - 1) < 1e-9 for w in weights.values())  # each set of weights sums to 1
    with pytest.raises(MaskwatchError, match="--mix"):
        synthesize([faces], tmp_path / "bad", mix="pastel")


def test_paired_draws_each_mask_worn_both_ways(tmp_path, faces):
    """--paired: per face and variant one with_mask and one wrongly worn image of the same mask; the pair differs
    where the mask sits and not above the eyes; hard negatives come on top of the pair."""
    out = tmp_path / "paired"
    report = synthesize([faces], out, per_face=3, seed=2, negatives=0.4, paired=True, mix="realistic")
    rows = _rows(out)
    assert json.loads((out / "report.json").read_text())["paired"] is True
    by_variant: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_variant.setdefault((row["source_id"], row["file"].rsplit("-", 1)[1][0]), []).append(row)
    assert len(by_variant) == 3 * 3  # 3 faces x 3 variants
    negatives = 0
    for variant in by_variant.values():
        masks = sorted((r for r in variant if r["kind"] == "mask"), key=lambda r: r["label"])
        negatives += sum(r["kind"] == "occluder" for r in variant)
        assert [r["label"] for r in masks] == ["mask_worn_incorrectly", "with_mask"]
        wrong, right = masks
        assert right["placement"] == "correct" and wrong["placement"] != "correct"
        assert (wrong["style"], wrong["pattern"], wrong["color"]) == (right["style"], right["pattern"], right["color"])
        a = np.asarray(Image.open(out / wrong["file"]), np.int16)
        b = np.asarray(Image.open(out / right["file"]), np.int16)
        assert np.abs(a - b).max() > 60  # the mask moved
        assert np.abs(a[:16] - b[:16]).max() <= 2  # the forehead did not
    assert 0 < negatives < 9 and report.counts["without_mask"] == negatives
    assert report.counts["with_mask"] == report.counts["mask_worn_incorrectly"] == 9


def test_donor_masks_are_moved_onto_faces_and_recorded(tmp_path, faces):
    """--donors: masks come from the donors' with_mask faces (recorded in the manifest), the same seed gives the
    same images, faceless donors are reported and skipped, and a donor set without with_mask faces is an error."""
    donors = tmp_path / "donors"
    (donors / "with_mask").mkdir(parents=True)
    astro = Image.open(ASSETS / "samples" / "astronaut.jpg").convert("RGB").crop((140, 20, 310, 210))
    masked = np.asarray(astro).copy()
    masked[95:190, 30:140] = (30, 160, 60)  # a green "mask" over the lower face
    Image.fromarray(masked).save(donors / "with_mask" / "green.png")
    Image.new("RGB", (120, 120), (200, 200, 200)).save(donors / "with_mask" / "empty.png")
    a, b = (
        synthesize([faces], tmp_path / n, per_face=2, seed=3, paired=True, negatives=0.0, donors=[donors])
        for n in ("a", "b")
    )
    rows = _rows(a.out)
    assert rows == _rows(b.out) and len(rows) == 3 * 2 * 2
    for row in rows:
        assert row["style"] == "transplant" and row["donor"].endswith("green.png") and row["color"] == ""
        assert (a.out / row["file"]).read_bytes() == (b.out / row["file"]).read_bytes()
    saved = json.loads((a.out / "report.json").read_text())
    assert saved["donor_faces"] == 2 and [d["reason"] for d in saved["donors_unusable"]] == ["no face found"]
    green = np.asarray(Image.open(a.out / rows[0]["file"]), np.int16)
    assert ((green[..., 1] - green[..., 0] > 80) & (green[..., 1] - green[..., 2] > 60)).sum() > 500
    mixed = synthesize([faces], tmp_path / "m", per_face=8, seed=3, paired=True, donors=[donors], donor_share=0.5)
    styles = {r["style"] for r in _rows(mixed.out) if r["kind"] == "mask"}
    assert "transplant" in styles and len(styles) > 1
    bare = tmp_path / "bare"
    (bare / "without_mask").mkdir(parents=True)
    astro.save(bare / "without_mask" / "face.jpg")
    with pytest.raises(MaskwatchError, match="no with_mask faces"):
        synthesize([faces], tmp_path / "x", donors=[bare])
    with pytest.raises(MaskwatchError, match="--donor-share"):
        synthesize([faces], tmp_path / "y", donors=[donors], donor_share=0)


def test_a_synth_set_does_not_report_its_own_files_as_problems(tmp_path, faces):
    out = tmp_path / "synth"
    synthesize([faces], out, per_face=1, seed=1)
    written = {p.name for p in out.iterdir() if p.is_file()}
    assert {"manifest.csv", "SYNTHETIC", "report.json"} <= written
    (out / "stray.jpg").write_bytes((faces / "without_mask" / "a.jpg").read_bytes())  # a real stray image still is
    bundle = load_data([str(out)])
    assert [(p.path.name, p.reason) for p in bundle.problems] == [("stray.jpg", "not inside a class folder")]
    # outside a synthetic set, report.json is a stray file like any other
    plain = tmp_path / "plain"
    (plain / "without_mask").mkdir(parents=True)
    (plain / "without_mask" / "a.jpg").write_bytes((faces / "without_mask" / "a.jpg").read_bytes())
    (plain / "report.json").write_text("{}")
    assert [p.path.name for p in load_data([str(plain)]).problems] == ["report.json"]
