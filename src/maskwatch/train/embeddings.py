"""Image embeddings for near-duplicate search beyond perceptual hashes.

A perceptual hash misses copies that were rotated, re-cropped or colour-shifted (face-mask-4094's
``augmented_image_*`` files are such copies). The pooled features of a fixed ImageNet network
(EfficientNet-Lite0 from its PyPI package, 128 px, L2-normalised) see through that: cosine
similarity of such copies is about 0.9-0.96 on face photos. The threshold is data-dependent
(drawn or very small images look alike to ImageNet features), so this search is opt-in.
Embeddings are cached per file (path, size, modification time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from maskwatch.data.images import BadImageError, open_rgb
from maskwatch.data.index import file_stamp
from maskwatch.io import atomic_path
from maskwatch.progress import track

EMBED_MODEL = "efficientnet_lite0"
EMBED_SIZE = 128
EMBED_VERSION = 1


def embedder(cache_root: Path | None = None) -> Callable[[list[Path]], np.ndarray]:
    """``data.duplicates.find_duplicates``' embedder: ``embed_files`` with the cache (default: maskwatch's) and a
    cache name from the files' data set folder."""
    from maskwatch.paths import cache_dir

    def embed(paths: list[Path]) -> np.ndarray:
        return embed_files(paths, cache_root or cache_dir(), name=str(paths[0].parent.parent))

    return embed


@torch.inference_mode()
def embed_files(paths: list[Path], cache_root: Path, name: str = "files", batch_size: int = 64) -> np.ndarray:
    """L2-normalised embeddings, one row per path (zeros for unreadable files)."""
    from maskwatch.models import create_model
    from maskwatch.train.augment import eval_transform

    key = hashlib.sha1(f"{name}|{EMBED_MODEL}|{EMBED_SIZE}|{EMBED_VERSION}".encode()).hexdigest()[:12]
    cache_file = cache_root / "embeddings" / f"{Path(name).name or 'files'}-{key}.npz"
    cached: dict[str, np.ndarray] = {}
    if cache_file.is_file():
        try:
            with np.load(cache_file) as data:
                cached = dict(zip(data["keys"].tolist(), data["emb"], strict=True))
        except (OSError, ValueError, KeyError):
            cached = {}
    stamps = [f"{p}|{file_stamp(p)}" for p in paths]
    todo = [i for i, s in enumerate(stamps) if s not in cached]
    if todo:
        model = create_model(EMBED_MODEL, 2, pretrained=True).eval().to(memory_format=torch.channels_last)
        tf = eval_transform(EMBED_SIZE, model.spec.mean, model.spec.std)
        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        for batch in track(batches, f"embedding {len(todo)} images"):
            images, ok = [], []
            for i in batch:
                try:
                    images.append(tf(open_rgb(paths[i])))
                    ok.append(i)
                except BadImageError:
                    cached[stamps[i]] = np.zeros(model.num_features, dtype=np.float32)
            if images:
                x = torch.stack(images).contiguous(memory_format=torch.channels_last)
                emb = torch.nn.functional.normalize(model.backbone(x).float(), dim=1).numpy()
                for i, row in zip(ok, emb, strict=True):
                    cached[stamps[i]] = row
        with atomic_path(cache_file) as tmp:
            np.savez(tmp, keys=np.array(list(cached)), emb=np.stack(list(cached.values())))
    return np.stack([cached[s] for s in stamps]).astype(np.float32)
