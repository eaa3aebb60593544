from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from maskwatch.data.toy import draw_face, make_toy_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/datasets is not here")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder and no progress bars."""
    monkeypatch.setenv("MASKWATCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("MASKWATCH_QUIET", "1")


@pytest.fixture
def toy_data(tmp_path) -> Path:
    return make_toy_dataset(tmp_path / "toy", per_class=16, size=48, seed=3)


def add_broken_files(root: Path) -> dict[str, str]:
    """Add one file of each kind of breakage; return {file name: expected reason prefix}."""
    good = root / "with_mask" / "with_mask_0.png"
    (root / "with_mask" / "empty.jpg").write_bytes(b"")
    (root / "with_mask" / "text.jpg").write_text("this is not an image")
    data = good.read_bytes()
    (root / "without_mask" / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "without_mask" / "notes.txt").write_text("hello")
    (root / "stray.jpg").write_bytes(data)
    return {
        "empty.jpg": "zero-byte file",
        "text.jpg": "not an image",
        "truncated.png": "truncated image",
        "notes.txt": "not an image file",
        "stray.jpg": "not inside a class folder",
    }


def make_voc(root: Path, n_images: int = 4, seed: int = 0) -> Path:
    """A tiny Pascal VOC scene set: drawn faces pasted into scenes, with one tiny box per image."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    names = ["with_mask", "without_mask", "mask_weared_incorrect"]
    for i in range(n_images):
        scene = Image.new("RGB", (200, 120), (rng.randint(0, 255), 90, 90))
        objects = []
        for k, name in enumerate(names):
            label = "mask_worn_incorrectly" if name == "mask_weared_incorrect" else name
            face, _ = draw_face(label, 40, rng)
            x, y = 10 + 62 * k, 30
            scene.paste(face, (x, y))
            objects.append((name, (x, y, x + 40, y + 40)))
        objects.append(("without_mask", (185, 5, 193, 13)))  # 8 px: below the default minimum
        scene.save(root / "images" / f"scene{i}.png")
        xml = "".join(
            f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
            f"<ymax>{b[3]}</ymax></bndbox></object>"
            for n, b in objects
        )
        (root / "annotations" / f"scene{i}.xml").write_text(
            f"<annotation><filename>scene{i}.png</filename><size><width>200</width><height>120</height></size>{xml}</annotation>"
        )
    return root


@pytest.fixture(scope="session")
def ray_address():
    """The address of a real local Ray cluster (``ray start --head`` on 127.0.0.1), shared by the session's tests."""
    from ray_cluster import head_node, ray_cli

    if ray_cli() is None:
        pytest.skip("ray is not installed (pip install '.[scale]')")
    with head_node() as address:
        yield address


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a real PostgreSQL server (initdb into a temporary folder, ``postgres`` on a free 127.0.0.1 port),
    shared by the session's tests; each test makes its own database with ``postgres_server.new_database``."""
    from postgres_server import postgres_bin, postgres_server

    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install '.[scale]')")
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL binaries (initdb, postgres): setup.sh installs the Debian package postgresql")
    with postgres_server() as url:
        yield url
