"""Train/val/test splits: stratified by label, grouped by near-duplicate group, reproducible.

``grouped`` (the default) keeps every duplicate group inside one split, so no copy of a test
image is trained on. ``random`` splits single images, as the study did, to show how much that
protocol flatters a model. Splits are saved as CSV file lists and can be reused.
"""

from __future__ import annotations

import csv
import random as _random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from maskwatch.data.dataset import Sample
from maskwatch.errors import MaskwatchError
from maskwatch.io import atomic_path, read_json, write_json

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    kind: str = "grouped"
    seed: int = 0
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    groups: dict[str, int] = field(default_factory=dict)  # sample id -> group id

    def parts(self) -> dict[str, list[Sample]]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def summary(self) -> dict:
        out: dict = {"kind": self.kind, "seed": self.seed, "ratios": list(self.ratios)}
        for name, part in self.parts().items():
            out[name] = {
                "images": len(part),
                "groups": len({self.groups.get(s.id, -1) for s in part}),
                "counts": dict(sorted(Counter(s.label for s in part).items())),
            }
        return out


def parse_ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        raise MaskwatchError(f"--ratios must be three numbers like 0.7,0.15,0.15, got '{text}'") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise MaskwatchError(f"--ratios must be three non-negative numbers like 0.7,0.15,0.15, got '{text}'")
    total = sum(parts)
    return parts[0] / total, parts[1] / total, parts[2] / total


def make_split(
    samples: list[Sample],
    groups: list[int] | None = None,
    *,
    kind: str = "grouped",
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> Split:
    """Assign whole groups to splits so that each label reaches its share in each split.

    Groups are visited largest first (ties in seeded random order); each goes to the split whose
    quota for the group's majority label is least filled. With singleton groups this is a
    stratified random split.
    """
    if kind not in ("grouped", "random"):
        raise MaskwatchError(f"unknown split kind '{kind}' (use grouped or random)")
    if kind == "random" or groups is None:
        groups = list(range(len(samples)))
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    rng = _random.Random(seed)
    order = sorted(members)
    rng.shuffle(order)
    order.sort(key=lambda g: -len(members[g]))  # stable: equal sizes keep the shuffled order
    totals = Counter(s.label for s in samples)
    quota = {(k, label): ratios[k] * n for k in range(3) for label, n in totals.items()}
    filled: Counter = Counter()
    assign = [0] * len(samples)
    for g in order:
        idx = members[g]
        label = Counter(samples[i].label for i in idx).most_common(1)[0][0]

        def need(k: int, label: str = label) -> float:
            q = quota[(k, label)]
            return (q - filled[(k, label)]) / q if q > 0 else float("-inf")

        best = max(range(3), key=lambda k: (need(k), ratios[k]))
        for i in idx:
            assign[i] = best
            filled[(best, samples[i].label)] += 1
    parts: list[list[Sample]] = [[], [], []]
    for i, k in enumerate(assign):
        parts[k].append(samples[i])
    gmap = {s.id: int(g) for s, g in zip(samples, groups, strict=True)}
    return Split(parts[0], parts[1], parts[2], kind=kind, seed=seed, ratios=ratios, groups=gmap)


def save_split(split: Split, folder: Path) -> None:
    """Write ``train.csv``, ``val.csv``, ``test.csv`` (id, label, group, path) and ``split.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in split.parts().items():
        with atomic_path(folder / f"{name}.csv") as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "label", "group", "path"])
            for s in part:
                writer.writerow([s.id, s.label, split.groups.get(s.id, ""), s.path])
    write_json(folder / "split.json", split.summary())


def split_rows(folder: Path, part: str) -> list[dict[str, str]]:
    """The rows (id, label, group, path) of one part of a split saved by ``save_split``; [] when it has no such
    file."""
    path = Path(folder) / f"{part}.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_split(folder: Path, samples: list[Sample], *, extend: bool = False) -> Split:
    """Rebuild a saved split over freshly loaded samples (matched by id).

    Samples the saved split does not list are an error, unless ``extend``: then each new sample
    joins the part that holds its source photo (a synthetic face goes where the face it was drawn
    on went; a new crop of a listed scene goes where that scene went), and new samples from new
    sources are split among themselves with the saved ratios and seed, grouped by source. The
    listed samples keep their parts, so a test set stays exactly the test set.
    """
    folder = Path(folder)
    if (folder / "split").is_dir():
        folder = folder / "split"
    meta_path = folder / "split.json"
    if not meta_path.is_file():
        raise MaskwatchError(f"no saved split in {folder} (expected split.json and train/val/test.csv)")
    meta = read_json(meta_path)
    by_id = {s.id: s for s in samples}
    parts: dict[str, list[Sample]] = {}
    groups: dict[str, int] = {}
    missing = 0
    for name in SPLITS:
        parts[name] = []
        if not (folder / f"{name}.csv").is_file():
            raise MaskwatchError(f"no saved split in {folder} (expected split.json and train/val/test.csv)")
        for row in split_rows(folder, name):
            sample = by_id.get(row["id"])
            if sample is None:
                missing += 1
                continue
            parts[name].append(sample)
            if row.get("group", "") != "":
                groups[sample.id] = int(row["group"])
    if missing:
        from maskwatch.progress import info

        info(f"[yellow]split {folder}: {missing} listed images are no longer in the data and were left out")
    listed = {s.id for p in parts.values() for s in p}
    extra = [s for s in samples if s.id not in listed]
    kind = meta.get("kind", "grouped")
    seed = meta.get("seed", 0)
    ratios = tuple(meta.get("ratios", (0.7, 0.15, 0.15)))
    if extra and not extend:
        raise MaskwatchError(
            f"the data holds {len(extra)} images that the saved split in {folder} does not list "
            f"(e.g. {extra[0].id}); use the same --data as the run that made it"
        )
    if extra:
        _place_new_samples(parts, groups, extra, folder, kind=kind, seed=seed, ratios=ratios)
    return Split(parts["train"], parts["val"], parts["test"], kind=kind, seed=seed, ratios=ratios, groups=groups)


def _place_new_samples(
    parts: dict[str, list[Sample]],
    groups: dict[str, int],
    extra: list[Sample],
    folder: Path,
    *,
    kind: str,
    seed: int,
    ratios: tuple[float, float, float],
) -> None:
    """Add samples a saved split does not list: by their source's part, else split afresh (see load_split)."""
    where: dict[Path, Counter] = defaultdict(Counter)
    group_of_source: dict[Path, int] = {}
    for name in SPLITS:
        for s in parts[name]:
            where[s.source][name] += 1
            if s.id in groups:
                group_of_source.setdefault(s.source, groups[s.id])
    next_group = max(groups.values(), default=-1) + 1
    placed: Counter = Counter()
    fresh: list[Sample] = []
    for s in extra:
        if s.source in where:
            name = where[s.source].most_common(1)[0][0]
            parts[name].append(s)
            placed[name] += 1
            if s.source in group_of_source:
                groups[s.id] = group_of_source[s.source]
        else:
            fresh.append(s)
    if fresh:
        ids: dict[Path, int] = {}
        fresh_groups = [ids.setdefault(s.source, len(ids)) for s in fresh]
        split = make_split(fresh, fresh_groups, kind=kind, ratios=ratios, seed=seed)
        for name, part in split.parts().items():
            parts[name] += part
            placed[f"{name} (new sources)"] += len(part)
        for s in fresh:
            groups[s.id] = next_group + split.groups[s.id]
    from maskwatch.progress import info

    detail = ", ".join(f"{n} to {name}" for name, n in sorted(placed.items()))
    info(f"split {folder}: {len(extra)} images it does not list were added: {detail}")
