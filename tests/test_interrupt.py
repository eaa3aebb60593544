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


def test_sigterm_to_the_process_group_stops_cleanly_with_workers(tmp_path):
    """`timeout`, `kill -- -PGID` and job schedulers signal the whole process group, data-loader workers included:
    the workers ignore it and the main process stops the run as on Ctrl-C (no "DataLoader worker killed")."""
    data = make_toy_dataset(tmp_path / "toy", per_class=60, size=64, seed=2)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "maskwatch.cli", "train", "--data", str(data), "--model", "cnn"]
    cmd += ["--image-size", "64", "--epochs", "40", "--patience", "0", "--workers", "2", "--out", str(run)]
    env = {**os.environ, "MASKWATCH_QUIET": "1"}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.time() + 120
        while not (run / "history.json").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (run / "history.json").exists(), proc.communicate()[0] if proc.poll() is not None else "no epoch"
        time.sleep(0.5)  # into the next epoch: its workers are loading images
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "killed by signal" not in out and "--resume" in out, out
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert (run / "last.pt").is_file()


def test_an_interrupt_that_python_drops_still_stops_the_run(tmp_path, toy_data):
    """A signal whose KeyboardInterrupt is raised where Python drops it (an at-fork callback as a DataLoader worker
    starts, a __del__) still stops the run: the trainer remembers it and raises it at the next batch."""
    from maskwatch.train import TrainConfig, train

    class Dropped:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # the KeyboardInterrupt is "ignored" in __del__

    def callback(epoch, row):
        if epoch == 1:
            Dropped()

    cfg = TrainConfig(
        data=[str(toy_data)], out=str(tmp_path / "run"), model="cnn", image_size=32, epochs=3, patience=0, workers=0
    )
    result = train(cfg, callbacks=[callback])
    assert result.status == "interrupted" and result.epochs_run == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the trainer's handler is gone
