"""Exact and near-duplicate groups among source images (imagehash perceptual hashes).

Two images are near-duplicates when the Hamming distance of their 64-bit DCT perceptual hashes
(``imagehash.phash``) is at most ``threshold`` bits; groups are the connected components of that
relation (scipy), so chains of near-copies end up together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from maskwatch.data.dataset import Sample
from maskwatch.data.index import FileInfo
from maskwatch.errors import MaskwatchError

DEFAULT_THRESHOLD = 8
# Two unrelated images' 64-bit phashes differ in about 32 bits on average (each bit a coin flip), so from 32 bits on
# about half of all unrelated pairs would count as near-copies and every set collapses into one group: a threshold
# there is never meaningful. Re-cropped or recoloured copies sit 10-26 bits apart, so 0..32 covers every real use.
MAX_THRESHOLD = 32


@dataclass
class DuplicateReport:
    group_of: dict[Path, int]  # source image -> group id (every source has one; singletons included)
    exact_groups: list[list[Path]]  # byte-identical files (size >= 2)
    near_groups: list[list[Path]]  # connected components of near-duplicates (size >= 2)
    cross_class: list[dict]  # near/exact groups whose images carry different labels


def _hash_ints(hexes: list[str]) -> np.ndarray:
    return np.array([int(h, 16) for h in hexes], dtype=np.uint64)


def pairs_where(n: int, close: Callable[[slice], np.ndarray], chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) for which ``close(rows)`` (a boolean block: rows x all n) is true,
    computed one block of rows at a time to bound memory."""
    rows: list[np.ndarray] = [np.zeros(0, int)]
    cols: list[np.ndarray] = [np.zeros(0, int)]
    for start in range(0, n, chunk):
        i, j = np.nonzero(close(slice(start, start + chunk)))
        i = i + start
        keep = i < j
        rows.append(i[keep])
        cols.append(j[keep])
    return np.concatenate(rows), np.concatenate(cols)


def near_pairs(hashes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) whose hashes differ in at most ``threshold`` bits."""
    return pairs_where(len(hashes), lambda rows: np.bitwise_count(hashes[rows, None] ^ hashes[None, :]) <= threshold)


def similar_pairs(emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) whose (L2-normalised) embeddings have cosine similarity >= ``threshold``."""
    return pairs_where(len(emb), lambda rows: emb[rows] @ emb.T >= threshold)


def check_thresholds(threshold: int, embed_threshold: float = 0.0) -> None:
    """Refuse a near-duplicate threshold out of range, naming the option as typed (``train``, ``data inspect``,
    ``compare``): ``threshold`` bits in 0..MAX_THRESHOLD, ``embed_threshold`` 0 (off) or a cosine in (0, 1]."""
    if isinstance(threshold, bool) or int(threshold) != threshold or not 0 <= threshold <= MAX_THRESHOLD:
        raise MaskwatchError(
            f"--dup-threshold must be a whole number of phash bits from 0 to {MAX_THRESHOLD} (got {threshold}); "
            f"unrelated images already differ in about 32 of the 64 bits"
        )
    if not 0 <= embed_threshold <= 1:
        raise MaskwatchError(f"--dup-embed must be a cosine similarity in (0, 1], or 0 for off (got {embed_threshold})")


def find_duplicates(
    samples: list[Sample],
    index: dict[Path, FileInfo],
    threshold: int = DEFAULT_THRESHOLD,
    embed_threshold: float = 0.0,
    embedder: Callable[[list[Path]], np.ndarray] | None = None,
) -> DuplicateReport:
    """Group source images: equal bytes, phash distance <= ``threshold`` bits, and (when
    ``embed_threshold`` > 0) cosine similarity >= ``embed_threshold`` of the L2-normalised embeddings that
    ``embedder(paths)`` gives (``maskwatch.train.embeddings.embedder()``: a network, so the training side's)."""
    check_thresholds(threshold, embed_threshold)
    if embed_threshold > 0 and embedder is None:
        raise ValueError("embed_threshold > 0 needs an embedder (maskwatch.train.embeddings.embedder())")
    sources = sorted({s.source for s in samples if index.get(s.source) and index[s.source].ok})
    pos = {p: i for i, p in enumerate(sources)}
    n = len(sources)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    # exact duplicates: same bytes
    by_md5: dict[str, list[int]] = {}
    for p in sources:
        by_md5.setdefault(index[p].md5 or str(p), []).append(pos[p])
    exact = [sorted(sources[i] for i in ids) for ids in by_md5.values() if len(ids) > 1]
    for ids in by_md5.values():
        rows.append(np.array(ids[:-1], dtype=int))
        cols.append(np.array(ids[1:], dtype=int))
    if n:
        r, c = near_pairs(_hash_ints([index[p].phash or "0" for p in sources]), threshold)
        rows.append(r)
        cols.append(c)
    if embed_threshold > 0 and n:
        emb = embedder(sources)  # type: ignore[misc]
        r, c = similar_pairs(emb, embed_threshold)
        rows.append(r)
        cols.append(c)
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    group_of = {p: int(comp[pos[p]]) for p in sources}
    # sources that are not readable still get their own group
    next_id = int(comp.max()) + 1 if n else 0
    for s in samples:
        if s.source not in group_of:
            group_of[s.source] = next_id
            next_id += 1
    members: dict[int, list[Path]] = {}
    for p, g in group_of.items():
        members.setdefault(g, []).append(p)
    near = [sorted(m) for m in members.values() if len(m) > 1]
    largest = max((len(m) for m in near), default=1)
    if largest > max(50, 0.05 * len(group_of)):
        from maskwatch.progress import info

        info(
            f"[yellow]one near-duplicate group holds {largest} of {len(group_of)} images: the thresholds are "
            "too loose for this data (raise --dup-embed or lower --dup-threshold)"
        )
    labels_of: dict[Path, set[str]] = {}
    for s in samples:
        labels_of.setdefault(s.source, set()).add(s.label)
    cross = []
    for group in near:
        labels = sorted(set().union(*(labels_of.get(p, set()) for p in group)))
        # a VOC scene holds several labels by nature; only images that are themselves one face count
        single = [p for p in group if len(labels_of.get(p, ())) == 1]
        single_labels = sorted(set().union(*(labels_of[p] for p in single))) if single else []
        if len(single_labels) > 1:
            cross.append({"labels": labels, "files": [str(p) for p in group]})
    return DuplicateReport(group_of, exact, near, cross)


def sample_groups(samples: list[Sample], report: DuplicateReport) -> list[int]:
    """The duplicate group of each sample (samples of one source share it)."""
    return [report.group_of[s.source] for s in samples]
