"""``maskwatch detect --engine ray``: a real Ray (its own local one, or the session's ``ray start --head`` cluster)
gives the local engine's results and error report, resumes a killed run, and fails in one line without Ray or with
a bad address. Manifests (.txt, .csv, .parquet, file:// URLs) work for both engines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from maskwatch.detect.walk import read_manifest
from maskwatch.runtime.classifiers import ASSETS
from maskwatch.serve.local import free_port
from test_no_torch import _command

SAMPLES = sorted((ASSETS / "samples").glob("*.jpg"))
BROKEN = {"bad.jpg": "cannot decode image: not an image", "empty.png": "cannot decode image: zero-byte file"}


def _cli(argv: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """The command line in a process of its own (a Ray started there is its own, stopped when it ends)."""
    cmd = [sys.executable, "-m", "maskwatch", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _photos(folder: Path, n: int) -> list[Path]:
    """``n`` photos: the shipped samples at several sizes and mirrored."""
    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        img = Image.open(SAMPLES[i % len(SAMPLES)]).convert("RGB")
        scale = 0.5 + 0.1 * (i // len(SAMPLES) % 6)
        img = img.resize((int(img.width * scale), int(img.height * scale)))
        if i // len(SAMPLES) % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(folder / f"photo{i:03d}.jpg")
        img.save(out[-1], quality=90)
    return out


def _results(jsonl: Path) -> dict[str, dict]:
    lines = jsonl.read_text().splitlines()
    results = {json.loads(line)["source"]: json.loads(line) for line in lines}
    assert len(results) == len(lines), "a photo was written twice"
    return results


def _same(a: dict[str, dict], b: dict[str, dict]) -> None:
    """The same photos, faces and labels; boxes and scores within float tolerance (thread counts differ)."""
    assert a.keys() == b.keys()
    for source in a:
        fa, fb = a[source]["faces"], b[source]["faces"]
        assert len(fa) == len(fb), source
        for x, y in zip(fa, fb, strict=True):
            assert x["label"] == y["label"], source
            assert x["box"] == pytest.approx(y["box"], abs=0.5)
            assert x["score"] == pytest.approx(y["score"], abs=2e-3)
            assert x["probs"] == pytest.approx(y["probs"], abs=2e-3)
        assert (a[source]["width"], a[source]["height"]) == (b[source]["width"], b[source]["height"])


def _error_lines(stderr: str) -> list[str]:
    return sorted(line for line in stderr.splitlines() if line.startswith("skipped "))


@pytest.fixture
def ray_installed():
    pytest.importorskip("ray", reason="ray is not installed (pip install '.[scale]')")


def test_manifests_list_paths_and_urls(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    (tmp_path / "list.txt").write_text("# photos\na.jpg\n\n/abs/b.jpg\nfile:///x/c.jpg\n")
    assert read_manifest(str(tmp_path / "list.txt")) == [str(tmp_path / "a.jpg"), "/abs/b.jpg", "file:///x/c.jpg"]
    (tmp_path / "list.csv").write_text("path,camera\na.jpg,1\ns3://bucket/d.jpg,2\n")
    assert read_manifest(str(tmp_path / "list.csv")) == [str(tmp_path / "a.jpg"), "s3://bucket/d.jpg"]
    pq.write_table(pa.table({"path": ["a.jpg", "/abs/b.jpg"]}), tmp_path / "list.parquet")
    assert read_manifest(str(tmp_path / "list.parquet")) == [str(tmp_path / "a.jpg"), "/abs/b.jpg"]
    (tmp_path / "nopath.csv").write_text("file\na.jpg\n")
    from maskwatch.detect.sources import resolve_inputs

    assert resolve_inputs(str(tmp_path / "nopath.csv"))[1][0].reason == "a CSV manifest needs a 'path' column"


def test_ray_engine_gives_the_local_results_and_error_report(tmp_path, ray_installed):
    photos = _photos(tmp_path / "photos", 9)
    (tmp_path / "photos" / "bad.jpg").write_text("not an image")
    (tmp_path / "photos" / "empty.png").write_bytes(b"")
    (tmp_path / "photos" / "notes.md").write_text("not a photo")  # passed over by both
    extra = _photos(tmp_path / "more", 2)
    # a manifest: a relative path, a file:// URL, a photo also in the folder (done once) and a missing one
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"more/{extra[0].name}\n{extra[1].as_uri()}\n{photos[0]}\nmissing.jpg\n")
    sources = [str(tmp_path / "photos"), str(manifest)]
    local = _cli(["detect", *sources, "--no-save", "--jsonl", "local.jsonl"], tmp_path)
    ray_run = _cli(
        ["detect", *sources, "--engine", "ray", "--workers", "2", "--jsonl", "ray.jsonl", "--parquet", "ray.parquet"],
        tmp_path,
    )
    assert local.returncode == ray_run.returncode == 1, ray_run.stderr  # broken files: exit 1 for both
    assert "started a local Ray" in ray_run.stderr
    ray_results = _results(tmp_path / "ray.jsonl")
    assert len(ray_results) == 11 and extra[1].as_uri() in ray_results
    _same(_results(tmp_path / "local.jsonl"), ray_results)
    errors = _error_lines(ray_run.stderr)
    assert errors == _error_lines(local.stderr)
    assert [e for e in errors if "bad.jpg" in e or "empty.png" in e or "missing.jpg" in e] == errors
    assert len(errors) == 3
    assert ray_run.stderr.splitlines()[-1] == local.stderr.splitlines()[-1]  # "done: 11 images; 3 failed ..."
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "ray.parquet").to_pylist()
    assert {row["source"]: len(row["faces"]) for row in table} == {s: len(r["faces"]) for s, r in ray_results.items()}


def test_ray_joins_a_cluster_and_a_killed_run_resumes(tmp_path, ray_address):
    photos = _photos(tmp_path / "photos", 48)
    out = tmp_path / "ray.jsonl"
    argv = ["detect", "photos", "--engine", "ray", "--address", ray_address, "--workers", "1", "--batch-size", "2"]
    argv += ["--jsonl", str(out), "--actor-threads", "1"]
    cmd = [sys.executable, "-m", "maskwatch", *argv]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (out.exists() and out.read_bytes().count(b"\n") >= 4):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no results from the cluster"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stderr.close()
    written = out.read_bytes().count(b"\n")
    assert written < len(photos), "the run ended before it was killed: nothing to resume"
    with out.open("a") as f:  # as if killed in the middle of writing a line
        f.write('{"source": "photos/photo0')
    again = _cli(argv, tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"joined the cluster at {ray_address}" in again.stderr
    assert f"resume: {written} of {len(photos)} photos already in" in again.stderr
    assert _cli(["detect", "photos", "--no-save", "--jsonl", "local.jsonl"], tmp_path).returncode == 0
    _same(_results(tmp_path / "local.jsonl"), _results(out))  # every photo exactly once, as the local engine


def test_without_ray_the_engine_says_what_to_install(tmp_path):
    _photos(tmp_path / "photos", 1)
    cmd = _command(["detect", "photos", "--engine", "ray", "--jsonl", "out.jsonl"], ("ray",))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: this needs Ray, which is not installed: pip install 'maskwatch[scale]'"
    ]


def test_a_bad_address_is_one_line(tmp_path, ray_installed):
    _photos(tmp_path / "photos", 1)
    port = free_port()
    for address, expected in (
        (f"127.0.0.1:{port}", f"error: cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused)"),
        ("nowhere", "error: --address nowhere: expected HOST:PORT of a Ray head node (or auto)"),
    ):
        proc = _cli(["detect", "photos", "--engine", "ray", "--address", address], tmp_path, timeout=120)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [expected]
