"""Training throughput: maskwatch's training step vs a bare timm loop, same model, batch and size.

All run in this process on the same synthetic batches, in alternating rounds (so that drift in
machine load hits each), and the script prints images/s for each and the ratios
(maskwatch / timm; aim >= 0.9). A third loop, plain timm with channels_last tensors, shows how
much of the difference is the memory format that maskwatch's trainer uses, and how much is the
step itself.

    .venv/bin/python bench/train_throughput.py --model efficientnet_lite0 --batch 32 --size 224
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
from torch import nn

from maskwatch.models import create_model, get_spec
from maskwatch.train.predict import pick_device
from maskwatch.train.trainer import train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    spec = get_spec(args.model)
    if spec.timm_name is None:
        raise SystemExit(f"{args.model} is not a timm model; pick one of the timm-backed models")
    device = pick_device(args.device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    targets = torch.randint(0, 2, (args.batch,), device=device)

    # maskwatch: the registry's model and the trainer's step, as `maskwatch train --freeze none` runs them
    ours = create_model(args.model, 2, input_size=args.size).to(device).to(memory_format=torch.channels_last).train()
    ours_opt = torch.optim.AdamW(ours.parameters(), lr=3e-4, weight_decay=1e-4)
    ours_loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    ours_images = images.contiguous(memory_format=torch.channels_last)

    def ours_step() -> None:
        train_step(ours, ours_images, targets, ours_opt, ours_loss, amp)

    # baseline: a plain timm training loop
    bare = timm.create_model(spec.timm_name, num_classes=2).to(device).train()
    bare_opt = torch.optim.AdamW(bare.parameters(), lr=3e-4, weight_decay=1e-4)
    bare_loss = nn.CrossEntropyLoss(label_smoothing=0.1)

    def bare_step() -> None:
        bare_opt.zero_grad()
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = bare_loss(bare(images), targets)
        loss.backward()
        bare_opt.step()

    # the same plain loop with channels_last tensors: isolates the step's own overhead from the memory format
    bare_cl = timm.create_model(spec.timm_name, num_classes=2).to(device).to(memory_format=torch.channels_last).train()
    bare_cl_opt = torch.optim.AdamW(bare_cl.parameters(), lr=3e-4, weight_decay=1e-4)
    cl_images = images.contiguous(memory_format=torch.channels_last)

    def bare_cl_step() -> None:
        bare_cl_opt.zero_grad()
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = bare_loss(bare_cl(cl_images), targets)
        loss.backward()
        bare_cl_opt.step()

    def rate(step) -> float:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        _sync(device)
        return args.steps * args.batch / (time.perf_counter() - t0)

    for step in (ours_step, bare_step, bare_cl_step):  # warm-up
        step()
        step()
    ours_rates, bare_rates, cl_rates = [], [], []
    for _ in range(args.rounds):
        ours_rates.append(rate(ours_step))
        bare_rates.append(rate(bare_step))
        cl_rates.append(rate(bare_cl_step))
    o, b, c = statistics.median(ours_rates), statistics.median(bare_rates), statistics.median(cl_rates)
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, model {args.model}, batch {args.batch}, "
        f"size {args.size}, {args.rounds} rounds x {args.steps} steps"
    )
    print(f"maskwatch train_step : {o:8.2f} img/s  (rounds: {', '.join(f'{r:.2f}' for r in ours_rates)})")
    print(f"bare timm loop       : {b:8.2f} img/s  (rounds: {', '.join(f'{r:.2f}' for r in bare_rates)})")
    print(f"bare timm, channels_last: {c:8.2f} img/s  (rounds: {', '.join(f'{r:.2f}' for r in cl_rates)})")
    print(f"ratio maskwatch/timm : {o / b:.3f}   (vs the channels_last loop: {o / c:.3f})")


if __name__ == "__main__":
    main()
