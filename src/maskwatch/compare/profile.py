"""What a model costs: parameters, FLOPs per image and CPU latency (PyTorch eager, this machine)."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

LATENCY_BATCHES = (1, 32)


def count_params(model: nn.Module) -> int:
    """All parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: int) -> int:
    """FLOPs of one forward pass of one ``input_size`` x ``input_size`` RGB image (FlopCounterMode:
    convolutions and matrix products, a multiply-add counted as 2)."""
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, input_size, input_size, device=_device_of(model))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(model: nn.Module, input_size: int, batch: int, runs: int = 5, warmup: int = 2) -> float:
    """Seconds per image on the CPU: the median of ``runs`` timed forward passes of a ``batch``
    (after ``warmup`` untimed ones), divided by the batch size; eval mode, inference_mode, channels_last."""
    model = model.cpu().eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, input_size, input_size).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(max(1, runs)):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) / batch


def profile_model(model: nn.Module, input_size: int, runs: int = 5, latency: bool = True) -> dict:
    """params, FLOPs per image and (``latency``) CPU milliseconds per image at batch 1 and 32."""
    model = model.cpu().eval()
    out: dict = {"input_size": input_size, "params": count_params(model), "flops": count_flops(model, input_size)}
    if latency:
        for batch in LATENCY_BATCHES:
            out[f"latency_ms_b{batch}"] = 1000 * measure_latency(model, input_size, batch, runs=runs)
        out["latency_runs"] = runs
        out["threads"] = torch.get_num_threads()
    return out


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what platform says)."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def environment() -> dict:
    import os

    return {
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
