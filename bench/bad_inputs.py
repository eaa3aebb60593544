"""The bad-input campaign, repeatable: bad and odd files through ``maskwatch detect`` and ``maskwatch classify``.

Generates in a temporary folder (all small: decompression bombs are headers that claim huge sizes, or highly
compressible data) PNG 1-bit and 16-bit, GIF, TIFF, WebP and JPEG bombs, a 100000 x 10 strip, zero-byte, truncated
JPEG/PNG, wrong extensions, text named .jpg, corrupt and huge EXIF, 16-bit and float TIFF, CMYK JPEG, animated
GIF, transparency, HEIC/AVIF, names with newlines, ESC sequences, spaces, brackets, unicode and a bidi override,
symbolic link loops, dangling links, a link to a device, a FIFO, an unreadable folder, bad videos. Then runs

    maskwatch detect DIR --jsonl OUT --no-save     and     maskwatch classify DIR --jsonl OUT

each in a subprocess (its peak memory: VmHWM at its exit), and ``decode_rgb`` on every file's bytes in
this process, and checks: no crash, no traceback, no silent skip (every generated entry is in the output, as a
result or as an error line naming it), peak memory under 1 GB. Prints a table; exit 1 when a check fails.

    .venv/bin/python bench/bad_inputs.py                 # the whole campaign
    .venv/bin/python bench/bad_inputs.py --quick         # the subset tests/test_bad_inputs.py runs
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src" / "maskwatch" / "assets" / "samples" / "astronaut.jpg"
PEAK_LIMIT_MB = 1000
TIMEOUT_S = 300  # a run that takes longer is stuck (a FIFO opened for reading blocks for ever)


# ------------------------------------------------------------------------------------------------- generating


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, depth: int = 1, colour: int = 0, rows: int | None = None) -> bytes:
    """A PNG whose header claims width x height; ``rows`` rows of zeros are really compressed in (None: all of
    them, streamed, so 170 million rows make a file of a few hundred KB)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\x00" * (1 + (width * depth * channels + 7) // 8)
    comp = zlib.compressobj(9)
    n = height if rows is None else rows
    block = row * max(1, min(n, 1_000_000 // len(row)))
    out, done = [], 0
    while done < n:
        take = min(n - done, len(block) // len(row))
        out.append(comp.compress(block[: take * len(row)]))
        done += take
    out.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(out)) + _chunk(b"IEND", b"")


def gif_claiming(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + image + b";"


def tiff_claiming(width: int, height: int, bits: int = 8, sample_format: int = 1, samples: int = 1) -> bytes:
    """A little-endian baseline TIFF whose tags claim width x height (a few bytes of strip data)."""
    data = b"\x00" * 64
    tags = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, bits),
        (259, 3, 1, 1),
        (262, 3, 1, 2 if samples == 3 else 1),
        (273, 4, 1, 8),
        (277, 3, 1, samples),
        (278, 4, 1, height),
        (279, 4, 1, len(data)),
        (339, 3, 1, sample_format),
    ]
    ifd_at = 8 + len(data)
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_at) + data + ifd


def _jpeg(image, **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **save)
    return buf.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF marker is patched to claim width x height."""
    from PIL import Image

    data = bytearray(_jpeg(Image.new("RGB", (16, 16), (90, 120, 150))))
    at = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A small real lossless WebP whose VP8L header is patched to claim width x height (each at most 16384)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buf, "WEBP", lossless=True)
    data = bytearray(buf.getvalue())
    at = data.find(b"VP8L") + 8  # the chunk's payload: 0x2f, then 14 bits width-1, 14 bits height-1, ...
    bits = struct.unpack_from("<I", data, at + 1)[0]
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, at + 1, bits)
    return bytes(data)


def _exif_jpeg(exif: bytes) -> bytes:
    """The sample photo with an APP1 segment ``exif`` (up to 65,533 bytes) put after SOI."""
    photo = SAMPLE.read_bytes()
    return photo[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + photo[2:]


@dataclass
class Entry:
    name: str  # relative to the campaign folder; what the output must mention
    what: str


@dataclass
class Campaign:
    root: Path
    entries: list[Entry] = field(default_factory=list)

    def add(self, name: str, what: str, data: bytes | None = None) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        self.entries.append(Entry(name, what))
        return path


def generate(root: Path, quick: bool = False) -> Campaign:
    """Write the campaign's inputs under ``root``; ``quick``: the subset the fast test runs (header bombs, links,
    FIFO, names, formats; no real compressible bomb, no videos)."""
    from PIL import Image

    c = Campaign(root)
    photo = SAMPLE.read_bytes()
    small = Image.open(SAMPLE).convert("RGB").resize((96, 96))
    # decompression bombs: headers that claim huge sizes
    c.add("bomb-png-1bit-20000x20000.png", "PNG 1-bit bomb (header)", png_claiming(20_000, 20_000, rows=8))
    c.add("bomb-png-1bit-1x170M-header.png", "PNG 1-bit strip bomb (header)", png_claiming(1, 170_000_000, rows=8))
    c.add("bomb-png-16bit-12000.png", "PNG 16-bit bomb", png_claiming(12_000, 12_000, depth=16, rows=8))
    c.add("bomb-gif-65535.gif", "GIF bomb", gif_claiming(65_535, 65_535))
    c.add("bomb-gif-12000.gif", "GIF under Pillow's limit, over the budget", gif_claiming(12_000, 12_000))
    c.add("bomb-tiff-20000.tif", "TIFF bomb", tiff_claiming(20_000, 20_000))
    c.add("bomb-tiff-float-8000.tif", "float TIFF over the budget", tiff_claiming(8_000, 8_000, 32, 3))
    c.add("bomb-webp-12000.webp", "WebP over the budget", webp_claiming(12_000, 12_000))
    c.add("bomb-jpeg-60000.jpg", "JPEG bomb", jpeg_claiming(60_000, 60_000))
    c.add("bomb-jpeg-12000.jpg", "JPEG over the budget", jpeg_claiming(12_000, 12_000))
    if not quick:  # the campaign's 5 GB file: 1 x 170,000,000 1-bit pixels, all really there (a few hundred KB)
        c.add("bomb-png-1bit-1x170M.png", "PNG 1-bit strip bomb (real)", png_claiming(1, 170_000_000))
        c.add("big-png-1bit-6000x6000.png", "PNG 1-bit 36 Mpx (real, under the budget)", png_claiming(6000, 6000))
    # odd but fine
    c.add("ok.jpg", "a photo", photo)
    strip = Image.new("RGB", (100_000, 10), (128, 128, 128))
    buf = io.BytesIO()
    strip.save(buf, "PNG")
    c.add("strip-100000x10.png", "a 100000 x 10 strip", buf.getvalue())
    c.add("cmyk.jpg", "CMYK JPEG", _jpeg(small.convert("CMYK")))
    for mode, name in (("I;16", "gray16.tif"), ("F", "float.tif")):
        buf = io.BytesIO()
        Image.new(mode, (64, 64), 300).save(buf, "TIFF")
        c.add(name, f"{mode} TIFF", buf.getvalue())
    frames = [small, small.rotate(90), small.rotate(180)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    c.add("animated.gif", "animated GIF", buf.getvalue())
    buf = io.BytesIO()
    small.convert("RGBA").save(buf, "PNG")
    c.add("rgba.png", "transparency", buf.getvalue())
    c.add("corrupt-exif.jpg", "corrupt EXIF", _exif_jpeg(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x00" * 40))
    c.add("huge-exif.jpg", "64 KB EXIF", _exif_jpeg(b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + b"\xab" * 65_000))
    c.add("jpeg-named.png", "a JPEG named .png", photo)
    # broken
    c.add("zero.jpg", "zero-byte", b"")
    c.add("truncated.jpg", "truncated JPEG", photo[: len(photo) // 3])
    png = io.BytesIO()
    small.save(png, "PNG")
    c.add("truncated.png", "truncated PNG", png.getvalue()[: len(png.getvalue()) // 2])
    c.add("text.jpg", "text named .jpg", b"hello, this is not an image\n" * 10)
    c.add("png-named.gif", "a PNG header cut short", png.getvalue()[:40])
    c.add("photo.heic", "HEIC (no decoder)", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    buf = io.BytesIO()
    try:
        small.save(buf, "AVIF")
        c.add("photo.avif", "AVIF", buf.getvalue())
    except (KeyError, OSError):
        c.add("photo.avif", "AVIF (no encoder here: junk)", b"\x00\x00\x00\x1cftypavif")
    # names
    for name in (
        "new\nline.jpg",
        "esc\x1b[31mred\x1b[0m.jpg",
        "space name.jpg",
        "brackets [red] x.jpg",
        "ünïcødé 照片.jpg",
        "bidi\u202egpj.txt.jpg",
        "cr\rreturn.jpg",
    ):
        c.add(name, f"name {name!r}", photo)
    # links, FIFO, devices, folders
    os.symlink("loop.jpg", root / "loop.jpg")
    c.add("loop.jpg", "symlink loop")
    os.symlink("missing.jpg", root / "dangling.jpg")
    c.add("dangling.jpg", "dangling symlink")
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "up")
    c.add("sub/up", "symlink to a parent folder")
    c.add("sub/in-sub.jpg", "a photo in a subfolder", photo)
    os.mkfifo(root / "fifo.jpg")
    c.add("fifo.jpg", "FIFO named .jpg")
    os.symlink("/dev/zero", root / "devzero.jpg")
    c.add("devzero.jpg", "link to /dev/zero named .jpg")
    c.add("locked/inside.jpg", "a photo in an unreadable folder (root reads it)", photo)
    os.chmod(root / "locked", 0)
    c.entries.append(Entry("locked", "unreadable folder"))
    if not quick:
        c.add("text.mp4", "text named .mp4", b"not a video\n" * 100)
        c.add("zero.mp4", "zero-byte video", b"")
    (root / "notes.txt").write_text("not media: ignored and counted\n")
    return c


# ------------------------------------------------------------------------------------------------------ running


@dataclass
class Run:
    name: str
    command: list[str]
    code: int = 0
    peak_mb: float = 0.0
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    results: int = 0
    errors: int = 0
    missing: list[str] = field(default_factory=list)
    tracebacks: int = 0

    @property
    def crashed(self) -> bool:
        return self.code not in (0, 1)


# The child's own peak (VmHWM, its memory since exec) written at exit: rusage's ru_maxrss keeps the parent's size
# from before exec (under pytest, a 1.3 GB process), so it is only the fallback where /proc is missing.
PEAK_LAUNCHER = """
import atexit, os, runpy, sys
def _peak():
    try:
        with open('/proc/self/status') as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
        with open(os.environ['BAD_INPUTS_PEAK_FILE'], 'w') as f:
            f.write(str(kb))
    except (OSError, StopIteration):
        pass
atexit.register(_peak)
sys.argv[0] = 'maskwatch'
runpy.run_module('maskwatch', run_name='__main__', alter_sys=True)
"""


def run_measured(name: str, command: list[str], workdir: Path, env: dict[str, str]) -> Run:
    """Run ``command`` (a ``python -m maskwatch ...`` one), its output to files, with its own peak memory and a
    timeout."""
    run = Run(name, command)
    out, err = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    peak_file = workdir / f"{name}.peak"
    env = {**env, "BAD_INPUTS_PEAK_FILE": str(peak_file)}
    if command[1:3] == ["-m", "maskwatch"]:
        command = [command[0], "-c", PEAK_LAUNCHER, *command[3:]]
    start = time.perf_counter()
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(command, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > TIMEOUT_S:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.code = proc.returncode
    run.seconds = time.perf_counter() - start
    run.peak_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    if peak_file.exists() and peak_file.read_text().strip():
        run.peak_mb = int(peak_file.read_text()) / 1024
    run.stdout = out.read_text(encoding="utf-8", errors="replace")
    run.stderr = err.read_text(encoding="utf-8", errors="replace")
    run.tracebacks = (run.stdout + run.stderr).count("Traceback")
    return run


def check_entries(run: Run, campaign: Campaign, jsonl: Path) -> None:
    """Every generated entry in the run's JSON lines (as a source) or on an error line (its printable name)."""
    sys.path.insert(0, str(ROOT / "src"))
    from maskwatch.progress import printable

    sources: list[str] = []
    if jsonl.exists():
        for line in jsonl.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            sources.append(row["source"])
            run.errors += "error" in row
            run.results += "error" not in row
    seen = set(sources)
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith(("skipped ", "not saved "))]
    if run.name.startswith("detect"):
        run.errors = len(lines)
    text = "\n".join(lines)
    for entry in campaign.entries:
        path = str(campaign.root / entry.name)
        inside = [s for s in seen if s == path or s.startswith(path + os.sep)]
        if not inside and printable(path) not in text:
            run.missing.append(entry.name)


def decode_all(campaign: Campaign) -> tuple[int, int, float]:
    """``decode_rgb`` (the server's decoding) on every generated regular file; (decoded, refused, the peak MB this
    process grew by while decoding them: under pytest the process is large before it starts)."""
    sys.path.insert(0, str(ROOT / "src"))
    from maskwatch.data.images import BadImageError, decode_rgb

    ok = bad = 0
    before = _vm_hwm_mb()
    for entry in campaign.entries:
        path = campaign.root / entry.name
        if path.is_symlink() or not path.is_file() or not os.access(path, os.R_OK):
            continue
        try:
            decode_rgb(path.read_bytes(), entry.name)
            ok += 1
        except BadImageError:
            bad += 1
    after = _vm_hwm_mb()
    if before is None or after is None:
        return ok, bad, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # standalone, the process's own peak; in a process already large (pytest), how much decoding raised it
    return ok, bad, after if before < PEAK_LIMIT_MB / 2 else after - before


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return None


def campaign(quick: bool = False, keep: Path | None = None) -> tuple[Campaign, list[Run], tuple[int, int, float]]:
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="maskwatch-bad-"))
    root = tmp / "inputs"
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    c = generate(root, quick=quick)
    env = {**os.environ, "MASKWATCH_QUIET": "1", "PYTHONPATH": str(ROOT / "src")}
    env.pop("MASKWATCH_DEBUG", None)
    exe = [sys.executable, "-m", "maskwatch"]
    runs = []
    for name, args in (
        ("detect", ["detect", str(root), "--jsonl", str(tmp / "detect.jsonl"), "--no-save"]),
        ("classify", ["classify", str(root), "--jsonl", str(tmp / "classify.jsonl")]),
    ):
        run = run_measured(name, exe + args, tmp, env)
        check_entries(run, c, tmp / f"{name}.jsonl")
        runs.append(run)
    decoded = decode_all(c)
    os.chmod(root / "locked", 0o755)  # so that the folder can be removed
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return c, runs, decoded


def failures(runs: list[Run], decoded: tuple[int, int, float]) -> list[str]:
    out = []
    for r in runs:
        if r.crashed:
            out.append(f"{r.name}: exit code {r.code}")
        if r.tracebacks:
            out.append(f"{r.name}: {r.tracebacks} traceback(s)")
        if r.missing:
            out.append(f"{r.name}: silently skipped {r.missing!r}")
        if r.peak_mb >= PEAK_LIMIT_MB:
            out.append(f"{r.name}: peak memory {r.peak_mb:.0f} MB")
        if r.code != 1:
            out.append(f"{r.name}: exit code {r.code}, not 1 (inputs failed)")
    if decoded[2] >= PEAK_LIMIT_MB:
        out.append(f"decode_rgb: peak memory {decoded[2]:.0f} MB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the fast subset (tests/test_bad_inputs.py)")
    parser.add_argument("--keep", type=Path, help="generate and keep everything in this folder")
    args = parser.parse_args()
    start = time.perf_counter()
    c, runs, decoded = campaign(args.quick, args.keep)
    print(f"{len(c.entries)} generated entries ({'quick' if args.quick else 'full'} campaign)\n")
    print("| run | entries | results | error lines | silent skips | tracebacks | exit | peak MB | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| maskwatch {r.name} | {len(c.entries)} | {r.results} | {r.errors} | {len(r.missing)} |"
            f" {r.tracebacks} | {r.code} | {r.peak_mb:.0f} | {r.seconds:.1f} |"
        )
    print(
        f"| decode_rgb (in process) | {decoded[0] + decoded[1]} files | {decoded[0]} | {decoded[1]} | - | 0 | - |"
        f" {decoded[2]:.0f} | - |"
    )
    print(f"\nwhole campaign: {time.perf_counter() - start:.1f} s")
    problems = failures(runs, decoded)
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        for r in runs:
            print(f"--- {r.name} stderr (last 40 lines)\n" + "\n".join(r.stderr.splitlines()[-40:]))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
