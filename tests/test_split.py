from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maskwatch.data import Sample, load_data, load_split, make_split, save_split
from maskwatch.data.duplicates import find_duplicates, sample_groups
from maskwatch.data.toy import make_toy_dataset
from maskwatch.errors import MaskwatchError


def _fake(n: int, labels: list[str]) -> list[Sample]:
    return [Sample(f"id{i}", Path(f"/x/{i}.png"), labels[i], Path(f"/x/{i}.png"), "d") for i in range(n)]


def test_near_duplicates_are_grouped(tmp_path):
    root = make_toy_dataset(tmp_path / "d", per_class=10, size=64, seed=1, duplicates=3)
    bundle = load_data([root])
    report = find_duplicates(bundle.samples, bundle.index, threshold=8)
    group = report.group_of
    for label in ("with_mask", "without_mask"):
        for i in range(3):
            original = (root / label / f"{label}_{i}.png").resolve()
            copy = (root / label / f"{label}_{i}_dup.jpg").resolve()
            assert group[original] == group[copy]
    # an exact byte copy is an exact duplicate
    src = root / "with_mask" / "with_mask_5.png"
    (root / "with_mask" / "copy_of_5.png").write_bytes(src.read_bytes())
    bundle = load_data([root])
    report = find_duplicates(bundle.samples, bundle.index, threshold=0)
    assert [p.name for p in report.exact_groups[0]] == ["copy_of_5.png", "with_mask_5.png"]


def test_grouped_split_keeps_groups_whole_and_stratifies(tmp_path):
    root = make_toy_dataset(tmp_path / "d", per_class=40, size=48, seed=2, duplicates=10)
    bundle = load_data([root])
    groups = sample_groups(bundle.samples, find_duplicates(bundle.samples, bundle.index, 8))
    split = make_split(bundle.samples, groups, ratios=(0.7, 0.15, 0.15), seed=0)
    where = {}
    for name, part in split.parts().items():
        for s in part:
            where.setdefault(split.groups[s.id], set()).add(name)
    assert all(len(v) == 1 for v in where.values())
    assert sorted(s.id for p in split.parts().values() for s in p) == sorted(s.id for s in bundle.samples)
    for label in ("with_mask", "without_mask"):
        n = sum(s.label == label for s in bundle.samples)  # 50 each
        test_n = sum(s.label == label for s in split.test)
        assert abs(test_n - 0.15 * n) <= 2, test_n


def test_split_is_reproducible_and_seed_dependent(toy_data):
    bundle = load_data([toy_data])
    a = make_split(bundle.samples, seed=7)
    b = make_split(bundle.samples, seed=7)
    c = make_split(bundle.samples, seed=8)
    ids = lambda s: [x.id for x in s.test]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)


def test_random_split_ignores_groups():
    samples = _fake(20, ["a"] * 10 + ["b"] * 10)
    split = make_split(samples, [0] * 20, kind="random", ratios=(0.6, 0.2, 0.2))
    assert (len(split.train), len(split.val), len(split.test)) == (12, 4, 4)
    assert Counter(s.label for s in split.test) == {"a": 2, "b": 2}
    whole = make_split(samples, [0] * 20, kind="grouped", ratios=(0.6, 0.2, 0.2))
    assert sorted(map(len, whole.parts().values())) == [0, 0, 20]


def test_save_and_load_round_trip(tmp_path, toy_data):
    bundle = load_data([toy_data])
    split = make_split(bundle.samples, seed=1)
    save_split(split, tmp_path / "split")
    again = load_split(tmp_path / "split", bundle.samples)
    for name in ("train", "val", "test"):
        assert [s.id for s in again.parts()[name]] == [s.id for s in split.parts()[name]]
    assert (tmp_path / "split" / "split.json").is_file()
    more = make_toy_dataset(toy_data.parent / "more", per_class=2, size=48, seed=9)
    with pytest.raises(MaskwatchError, match="does not list"):
        load_split(tmp_path / "split", load_data([toy_data, more]).samples)


def test_extended_split_places_new_images_with_their_source(tmp_path, toy_data):
    """Synthetic images join their source face's part; the saved parts stay as they were; new sources split afresh."""
    bundle = load_data([toy_data])
    split = make_split(bundle.samples, seed=3)
    save_split(split, tmp_path / "split")
    synth = tmp_path / "synth"
    rows = ["file,label,source"]
    for i, s in enumerate(bundle.samples):
        out = synth / "mask_worn_incorrectly" / f"s{i}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(s.path.read_bytes())
        rows.append(f"mask_worn_incorrectly/s{i}.png,mask_worn_incorrectly,{s.path}")
    (synth / "manifest.csv").write_text("\n".join(rows) + "\n")
    (synth / "SYNTHETIC").write_text("")
    fresh = make_toy_dataset(tmp_path / "fresh", per_class=20, size=48, seed=9)
    grown = load_data([toy_data, synth, fresh]).samples
    again = load_split(tmp_path / "split", grown, extend=True)
    part_of = {s.id: name for name, part in again.parts().items() for s in part}
    assert sorted(part_of) == sorted(s.id for s in grown)  # every image exactly once
    for name, part in split.parts().items():
        assert [s.id for s in again.parts()[name] if s.id in {x.id for x in part}] == [s.id for s in part]
    for i, s in enumerate(bundle.samples):
        assert part_of[str((synth / "mask_worn_incorrectly" / f"s{i}.png").resolve())] == part_of[s.id]
    new = [s for s in grown if s.dataset == str(tmp_path / "fresh")]
    counts = Counter(part_of[s.id] for s in new)
    assert counts == {"train": 28, "val": 6, "test": 6}  # 40 new photos at 0.7/0.15/0.15
    assert len({again.groups[s.id] for s in new} & {again.groups[s.id] for s in bundle.samples}) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 15), st.sampled_from(["a", "b", "c"])), min_size=1, max_size=80),
    st.integers(0, 10_000),
)
def test_property_every_sample_once_and_no_group_crosses(rows, seed):
    samples = _fake(len(rows), [label for _, label in rows])
    groups = [g for g, _ in rows]
    split = make_split(samples, groups, seed=seed)
    seen = Counter(s.id for p in split.parts().values() for s in p)
    assert all(v == 1 for v in seen.values()) and len(seen) == len(samples)
    part_of_group: dict[int, set[str]] = {}
    for name, part in split.parts().items():
        for s in part:
            part_of_group.setdefault(split.groups[s.id], set()).add(name)
    assert all(len(v) == 1 for v in part_of_group.values())


def test_faces_of_one_scene_stay_in_one_split(tmp_path, toy_data):
    from conftest import make_voc

    voc = make_voc(tmp_path / "voc", n_images=12, seed=4)
    bundle = load_data([toy_data, voc])
    groups = sample_groups(bundle.samples, find_duplicates(bundle.samples, bundle.index, 8))
    split = make_split(bundle.samples, groups, seed=0)
    where: dict = {}
    for name, part in split.parts().items():
        for s in part:
            where.setdefault(s.source, set()).add(name)
    scenes = {p: v for p, v in where.items() if p.parent.name == "images"}
    assert len(scenes) == 12 and all(len(v) == 1 for v in scenes.values())


def test_embedding_search_groups_rotated_and_cropped_copies_that_phash_misses(tmp_path):
    from PIL import Image
    from skimage import data as skdata  # public-domain photos shipped with scikit-image

    folder = tmp_path / "photos" / "without_mask"
    folder.mkdir(parents=True)
    for name in ("chelsea", "astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry"):
        im = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        im.thumbnail((160, 160))
        im.save(folder / f"{name}.jpg")
    cat = Image.open(folder / "chelsea.jpg")
    cat.rotate(15, expand=True, fillcolor=(255, 255, 255)).resize(cat.size).save(folder / "chelsea_rotated.jpg")
    man = Image.open(folder / "astronaut.jpg")
    w, h = man.size
    man.crop((int(w * 0.12), int(h * 0.1), int(w * 0.95), int(h * 0.92))).save(folder / "astronaut_cropped.jpg")
    bundle = load_data([tmp_path / "photos"])
    by_name = {s.source.name: s.source for s in bundle.samples}
    hashed = find_duplicates(bundle.samples, bundle.index, threshold=8)
    assert hashed.near_groups == []  # phash: 26 and 18 bits apart
    from maskwatch.train.embeddings import embedder

    both = find_duplicates(bundle.samples, bundle.index, threshold=8, embed_threshold=0.85, embedder=embedder())
    groups = {frozenset(p.name for p in g) for g in both.near_groups}
    assert groups == {
        frozenset({"chelsea.jpg", "chelsea_rotated.jpg"}),
        frozenset({"astronaut.jpg", "astronaut_cropped.jpg"}),
    }
    assert both.group_of[by_name["coffee.jpg"]] != both.group_of[by_name["rocket.jpg"]]
