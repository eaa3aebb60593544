"""Ctrl-C and SIGTERM on training: a run stops cleanly at the next batch and `--resume` finishes it; data-loader
workers neither die of a group signal nor outlive the process."""

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskwatch.data.toy import make_toy_dataset


@pytest.fixture(autouse=True)
def _ctrl_c_as_at_a_terminal():
    """These tests send Ctrl-C. A process started in the background (nohup, `&`, some CI runners) inherits SIGINT
    ignored, and Python keeps it so: Ctrl-C then does nothing, here and in the processes the tests start. Give this
    process (and so its children) Ctrl-C's usual handler for the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


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


def _toy_config(tmp_path, toy_data, **kw):
    from maskwatch.train import TrainConfig

    return TrainConfig(
        data=[str(toy_data)], out=str(tmp_path / "run"), model="cnn", image_size=32, epochs=3, patience=0, **kw
    )


def test_a_signal_is_noted_and_the_run_stops_at_the_next_batch(tmp_path, toy_data):
    """The first Ctrl-C does not raise where it lands (the callback goes on): the run stops at its next check,
    after epoch 1."""
    from maskwatch.train import train

    went_on = []

    def callback(epoch, row):
        if epoch == 1:
            signal.raise_signal(signal.SIGINT)
            went_on.append(epoch)

    result = train(_toy_config(tmp_path, toy_data, workers=0), callbacks=[callback])
    assert went_on == [1]
    assert result.status == "interrupted" and result.epochs_run == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the trainer's handler is gone


def test_a_second_signal_stops_the_run_at_once(tmp_path, toy_data):
    from maskwatch.train import train

    went_on = []

    def callback(epoch, row):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # KeyboardInterrupt here
        went_on.append(epoch)

    result = train(_toy_config(tmp_path, toy_data, workers=0), callbacks=[callback])
    assert went_on == [] and result.status == "interrupted" and result.epochs_run == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_workers_leave_the_process_group_and_survive_a_signal_as_they_start(monkeypatch, tmp_path):
    """A worker forked at an epoch's start and signalled (by a signal to the whole group) before its init function
    has run must not die of it. The start is held here so the signal lands in that gap every time: blocked
    since the fork, it is dropped, and the worker delivers its items from a process group of its own."""
    import torch

    from maskwatch.train import loader as loader_module

    leave = loader_module._leave_process_group

    signalled = tmp_path / "signalled"

    def slow_start(worker_id):  # held until the test has signalled it, however slow the machine
        deadline = time.time() + 60
        while not signalled.exists() and time.time() < deadline:
            time.sleep(0.01)
        leave(worker_id)

    class Groups(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return os.getpgid(0)

    monkeypatch.setattr(loader_module, "_leave_process_group", slow_start)
    loader = loader_module.QuietLoader(Groups(), batch_size=1, num_workers=2)
    before = {p.pid for p in multiprocessing.active_children()}
    batches = iter(loader)
    workers = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGINT)
    signalled.touch()
    groups = torch.cat(list(batches)).tolist()
    assert len(groups) == 4 and os.getpgid(0) not in groups and set(groups) == set(workers)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()  # the main thread's mask is restored


def test_a_worker_left_behind_by_an_interrupt_does_not_hang_the_exit():
    """Ctrl-C between a worker's fork and torch's record of it leaves a worker that only the end of the process
    stops (`multiprocessing` ends it with SIGTERM): a worker that ignored SIGTERM hung the process there for good."""
    code = """
import multiprocessing.process, torch
from maskwatch.train.loader import QuietLoader
start = multiprocessing.process.BaseProcess.start
def start_then_interrupt(self):
    start(self)
    raise KeyboardInterrupt
multiprocessing.process.BaseProcess.start = start_then_interrupt
try:
    iter(QuietLoader(torch.utils.data.TensorDataset(torch.arange(8)), batch_size=2, num_workers=2))
except KeyboardInterrupt:
    print("interrupted")
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        out = "the process hung at exit"
    finally:
        for pid in {proc.pid, *_children(proc.pid)}:  # the worker has its own group: end it by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0 and out.strip() == "interrupted", out


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def test_train_command_puts_the_sigterm_handler_back(tmp_path, toy_data):
    """`maskwatch train` makes SIGTERM end the run like Ctrl-C only while it runs (it once left its handler behind
    in the calling process: pytest, a notebook)."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    before = signal.getsignal(signal.SIGTERM)
    args = ["--model", "cnn", "--image-size", "32", "--epochs", "1", "--workers", "0"]
    result = CliRunner().invoke(app, ["train", "--data", str(toy_data), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 0, result.output
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_in_the_final_evaluation_is_an_interrupted_run_that_resume_finishes(tmp_path, toy_data, monkeypatch):
    """Ctrl-C while the test split is scored left run.json "running" and the run unfinishable without more
    epochs; now it is "interrupted" in the evaluation, and --resume runs only the evaluation, keeping how the
    epochs ended (here the time limit, after epoch 1 of 3)."""
    import maskwatch.train.trainer as trainer
    from maskwatch.train import resume, train

    write_report = trainer.write_report

    def signal_then_write(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # during the report of validation: the test split is scored next
        return write_report(*args, **kwargs)

    monkeypatch.setattr(trainer, "write_report", signal_then_write)
    result = train(_toy_config(tmp_path, toy_data, workers=0, time_limit=1e-6))
    assert result.status == "interrupted" and result.epochs_run == 1 and result.metrics is None
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (status["status"], status["interrupted_in"], status["epochs_ended"]) == (
        "interrupted",
        "evaluation",
        "time_limit",
    )
    assert not (tmp_path / "run" / "metrics.json").exists() or "test" not in json.loads(
        (tmp_path / "run" / "metrics.json").read_text()
    )

    monkeypatch.setattr(trainer, "write_report", write_report)
    epochs = []
    again = resume(tmp_path / "run", callbacks=[lambda epoch, row: epochs.append(epoch)])
    assert epochs == [] and again.status == "time_limit" and again.metrics["accuracy"] >= 0
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert status["status"] == "time_limit" and "interrupted_in" not in status and "epochs_ended" not in status
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 1


def test_the_loader_works_without_signal_masks_or_process_groups(monkeypatch):
    """Windows has neither `signal.pthread_sigmask` nor `os.setpgid`: the workers then only ignore the signals."""
    import torch

    from maskwatch.train import loader as loader_module

    monkeypatch.setattr(loader_module, "_MASKS", False)
    monkeypatch.delattr(os, "setpgid")
    loader = loader_module.QuietLoader(torch.utils.data.TensorDataset(torch.arange(6)), batch_size=2, num_workers=2)
    assert torch.cat([b[0] for b in loader]).tolist() == list(range(6))
