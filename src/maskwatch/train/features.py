"""Frozen-backbone features, computed once and cached on disk.

With the backbone frozen (the study's transfer learning), only the head learns, so each image's
features are computed once: the plain view plus ``views - 1`` augmented views per training image,
so the head still sees augmentation. The cache key covers everything the features depend on, each
image file's size and modification time included (a file replaced in place is not served stale).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path

import torch

from maskwatch.data.dataset import Sample
from maskwatch.data.index import file_stamp
from maskwatch.io import save_torch
from maskwatch.models import MaskNet
from maskwatch.progress import track
from maskwatch.train.dataset import ImageDataset
from maskwatch.train.loader import QuietLoader

FEATURES_VERSION = 2


def feature_key(model: MaskNet, samples: Sequence[Sample], **params: object) -> str:
    h = hashlib.sha1()
    h.update(
        json.dumps(
            [FEATURES_VERSION, model.spec.name, model.pretrained, model.input_size, params], sort_keys=True, default=str
        ).encode()
    )
    if model.pretrained is None or str(model.pretrained).startswith(("file:", "init:")):
        # random, user-given or --init weights (a file that may be rewritten): key on the weights themselves
        for t in model.backbone.state_dict().values():
            h.update(t.detach().cpu().numpy().tobytes()[:4096])
    for s in samples:
        try:
            stamp = file_stamp(s.path)
        except OSError:  # gone since it was listed: reading it will report that
            stamp = "missing"
        h.update(f"{s.id}\t{s.label}\t{s.path}\t{stamp}\n".encode())
    return h.hexdigest()[:20]


@torch.inference_mode()
def compute_features(
    model: MaskNet,
    samples: Sequence[Sample],
    labels: Sequence[str],
    transform,
    device: torch.device,
    batch_size: int,
    workers: int,
    seed: int,
    description: str,
) -> torch.Tensor:
    """The backbone's features of ``samples`` through ``transform``, its random draws seeded by ``seed``.

    The global random generators are seeded for the computation and then restored, so that what the run draws
    afterwards (the head's dropout, the next epochs) does not depend on whether the features came from the cache."""
    model.backbone.eval()
    python_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):  # CPU generator (the backbone in eval mode draws nothing on a GPU)
            random.seed(seed)
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            loader = QuietLoader(
                ImageDataset(samples, labels, transform),
                batch_size=batch_size,
                shuffle=False,
                num_workers=workers,
                generator=gen,
            )
            out = []
            for images, _ in track(loader, description, total=len(loader)):
                images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    out.append(model.backbone(images).float().cpu())
    finally:
        random.setstate(python_state)
    return torch.cat(out)


def cached_features(cache_root: Path, key: str, build) -> dict[str, torch.Tensor]:
    """Load the features stored under ``key``, or compute them with ``build()`` and store them."""
    path = cache_root / "features" / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a damaged cache file is recomputed
            path.unlink(missing_ok=True)
    feats = build()
    save_torch(path, feats)
    return feats
