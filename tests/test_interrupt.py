"""Ctrl-C on a real `maskwatch train` process: it stops cleanly and `--resume` finishes the run."""

import json
import os
import signal
import subprocess
import sys
import time

from maskwatch.data.toy import make_toy_dataset


def test_sigint_stops_cleanly_and_resume_finishes(tmp_path):
    data = make_toy_dataset(tmp_path / "toy", per_class=40, size=64, seed=2)
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "maskwatch.cli",
        "train",
        "--data",
        str(data),
        "--model",
        "cnn",
        "--image-size",
        "64",
        "--epochs",
        "40",
        "--patience",
        "0",
        "--workers",
        "0",
        "--out",
        str(run),
    ]
    env = {**os.environ, "MASKWATCH_QUIET": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (run / "history.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert (run / "history.json").exists(), proc.communicate()[0] if proc.poll() is not None else "no epoch in 120 s"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "--resume" in out
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "interrupted"
    done = len(json.loads((run / "history.json").read_text()))
    assert 1 <= done < 40
    # finish quickly: resume with a new total of one more epoch
    resumed = subprocess.run(
        [sys.executable, "-m", "maskwatch.cli", "train", "--resume", str(run), "--epochs", str(done + 1)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, done + 2))
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert json.loads((run / "config.json").read_text())["epochs"] == done + 1
