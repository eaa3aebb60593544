"""What reframing costs `maskwatch classify`: images/s of ``classify_images`` with the default ``Reframer`` (find the
face in each crop, cut loose crops again) against the classifier alone, in the same process, alternating rounds.

The crops are cut from the bundled sample photos around each face the detector finds, at margins 0.15 (the
training framing: kept as given), 0.4 and 0.7 (loose: cut again), and the whole photos; each round classifies
all of them in batches of ``--batch``. Prints the median rates, the ratio (with / without) and how many crops
were cut again.

    .venv/bin/python bench/classify_reframe.py
    .venv/bin/python bench/classify_reframe.py --rounds 1 --repeat 1      # a quick check that it runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ["MASKWATCH_QUIET"] = "1"  # before maskwatch is imported: progress bars would distort the timings

SAMPLES = Path(__file__).resolve().parent.parent / "src" / "maskwatch" / "assets" / "samples"


def main() -> None:
    from PIL import Image

    from maskwatch.data.crops import crop_square
    from maskwatch.detect.detector import CenterFace
    from maskwatch.detect.reframe import Reframer
    from maskwatch.runtime.classifiers import classify_images, load_classifier

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=4, help="copies of the crop set per round")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--model", default=None, help="classifier (default: the shipped model)")
    args = ap.parse_args()

    detector = CenterFace()
    clf = load_classifier(args.model)
    crops: list[Image.Image] = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        photo = Image.open(path).convert("RGB")
        crops.append(photo)
        for box in detector.detect(np.asarray(photo)).boxes:
            crops += [crop_square(photo, box, m) for m in (0.15, 0.4, 0.7)]
    crops *= args.repeat
    reframer = Reframer(detector)

    def run(reframe: Reframer | None) -> tuple[float, int]:
        start, cut = time.perf_counter(), 0
        for i in range(0, len(crops), args.batch):
            chunk = crops[i : i + args.batch]
            results = classify_images(clf, chunk, [str(k) for k in range(len(chunk))], reframe)
            cut += sum(bool(r.get("reframed")) for r in results)
        return len(crops) / (time.perf_counter() - start), cut

    run(None), run(reframer)  # warm-up
    plain, framed, cut = [], [], 0
    for _ in range(args.rounds):
        plain.append(run(None)[0])
        rate, cut = run(reframer)
        framed.append(rate)
    p, f = statistics.median(plain), statistics.median(framed)
    print(f"{len(crops)} crops per round ({cut} cut again), {args.rounds} rounds, batch {args.batch}")
    print(f"classifier alone:      {p:7.1f} images/s")
    print(f"with reframing:        {f:7.1f} images/s")
    print(f"ratio (with / alone):  {f / p:.2f}x")


if __name__ == "__main__":
    main()
