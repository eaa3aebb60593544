"""``maskwatch detect --engine ray``: the photos of a run through Ray Data, on this machine or a cluster.

The same steps as the local engine (``detect.run``), spread out: the driver resolves the SOURCE arguments
(folders, globs, manifests) as ``detect`` does, skips the photos already in the output JSON Lines (a killed run,
run again, finishes what is missing), and streams the rest through two Ray Data stages: decoding in tasks
(``detect.sources.iter_frames``, so every broken file gets the local engine's reason) and detection +
classification in a pool of actors, each holding one ``Pipeline`` (one ONNX session per model) loaded once. The
driver writes each result line as it arrives (``run.json_line``: the same JSON Lines, in the order results
arrive), reports problems as the local engine does (``run.report_error``) and shows progress.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.run import (
    DetectOptions,
    DetectReport,
    SourceSummary,
    count_image,
    image_faces,
    json_line,
    report_error,
    resolve_sources,
)
from maskwatch.detect.sources import Frame, Input, SourceError, iter_frames
from maskwatch.detect.tracking import summarise
from maskwatch.detect.walk import url_scheme
from maskwatch.errors import MaskwatchError
from maskwatch.paths import is_stdout
from maskwatch.progress import console, shown
from maskwatch.scale.cluster import connect, disconnect, require_ray

# Photos per Ray Data batch and onnxruntime threads per detector actor: starting values, not yet tuned
# (bench/ray_batch.py --tune measures the alternatives; docs/results/scale-batch.md).
DEFAULT_BATCH_SIZE = 8
DEFAULT_THREADS = 1
DECODE_CPUS = 0.0  # decoding tasks reserve no CPU: the actors hold them all, and decoding would wait for ever


@dataclass
class RayOptions:
    address: str | None = None  # HOST:PORT of a cluster's head node (`ray start --head`); None: a local Ray
    workers: int | None = None  # detector actors (None: one per `threads` CPUs of the machine or cluster)
    batch_size: int = DEFAULT_BATCH_SIZE
    threads: int = DEFAULT_THREADS  # onnxruntime intra-op threads per actor
    parquet: Path | None = None  # also write the results (all of them, resumed ones too) as one Parquet file
    max_decode_mb: float | None = None  # the decoding budget in the decoding tasks (None: their default)


def _decode(batch: dict[str, np.ndarray], max_decode_mb: float | None) -> dict[str, Any]:
    """Ray Data task: decode a batch of photos (paths or URLs) as the local engine does; a failure is its reason."""
    from maskwatch.data.images import set_decode_budget

    set_decode_budget(max_decode_mb)
    images: list[np.ndarray] = []
    errors: list[str] = []
    for location in batch["location"]:
        item = next(iter(iter_frames(Input("image", str(location)))))
        if isinstance(item, SourceError):
            images.append(np.zeros((1, 1, 3), np.uint8))  # a placeholder: the column holds arrays only
            errors.append(item.reason)
        else:
            images.append(item.image)
            errors.append("")
    return {"source": batch["source"], "image": images, "error": errors}


class _Detector:
    """Ray Data actor: one ``Pipeline`` loaded once, then a JSON line (or the reason there is none) per photo."""

    def __init__(self, model: str | None, config: DetectorConfig, threads: int, landmarks: bool) -> None:
        os.environ["MASKWATCH_THREADS"] = str(threads)  # read by runtime.onnx when the sessions are made
        os.environ["MASKWATCH_QUIET"] = "1"
        from maskwatch.detect.pipeline import load_pipeline

        self.pipeline = load_pipeline(model, config=config)
        self.landmarks = landmarks

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        lines: list[str] = []
        errors: list[str] = []
        for source, image, error in zip(batch["source"], batch["image"], batch["error"], strict=True):
            line, reason = self._one(Frame(str(source), None, np.ascontiguousarray(image)), str(error))
            lines.append(line)
            errors.append(reason)
        return {"source": batch["source"], "line": lines, "error": errors}

    def _one(self, frame: Frame, error: str) -> tuple[str, str]:
        """(the JSON line, "") of one photo, or ("", why there is none)."""
        if error:
            return "", error
        faces = image_faces(self.pipeline, frame)
        if isinstance(faces, SourceError):
            return "", faces.reason
        return json_line(self.pipeline.result(frame.image, faces, frame.source, None), self.landmarks), ""


def written_sources(jsonl: Path) -> tuple[set[str], list[str]]:
    """The sources already in a JSON Lines output, and its lines. A last line cut short (a run killed while writing
    it) is cut off the file, so that appending goes on from a whole line."""
    if not jsonl.is_file():
        return set(), []
    data = jsonl.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with jsonl.open("r+b") as f:
            f.truncate(end)
    done: set[str] = set()
    lines: list[str] = []
    for line in data[:end].decode("utf-8", errors="replace").splitlines():
        try:
            source = json.loads(line)["source"]
        except (ValueError, KeyError, TypeError):
            continue  # not one of ours: its photo is done again
        done.add(source)
        lines.append(line)
    return done, lines


def _photos(inputs: list[Input], report: DetectReport) -> list[Input]:
    for inp in inputs:
        if inp.kind != "image":
            reason = f"a {inp.kind}: --engine ray reads photos (use --engine local for videos, webcams and streams)"
            report_error(report, SourceError(inp.name(), reason))
    return [i for i in inputs if i.kind == "image"]


def _cluster_cpus() -> int:
    ray = require_ray()
    return int(ray.cluster_resources().get("CPU", 1))


def dataset(sources: list[str], model: str | None, config: DetectorConfig, landmarks: bool, opts: RayOptions) -> Any:
    """The Ray Data pipeline over ``sources``: decoding tasks, then a pool of detector actors (Ray connected)."""
    require_ray()
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its start and end lines: the driver says what matters
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows its own
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    workers = opts.workers or max(1, _cluster_cpus() // opts.threads)
    blocks = max(1, min(len(sources), max(2 * workers, -(-len(sources) // opts.batch_size))))
    # a worker's current folder is not the driver's (on a cluster, not even its machine): it reads absolute paths
    items = [{"source": s, "location": s if url_scheme(s) else os.path.abspath(s)} for s in sources]
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    ds = ds.map_batches(
        _decode,
        batch_size=opts.batch_size,
        fn_kwargs={"max_decode_mb": opts.max_decode_mb},
        num_cpus=DECODE_CPUS,
        # tasks that reserve no CPU are otherwise started without bound (Ray started 80+ worker processes on 2 CPUs
        # in bench/ray_batch.py): at most one decoding task per detector actor at a time
        compute=ray.data.TaskPoolStrategy(size=workers),
    )
    with warnings.catch_warnings():  # max_restarts goes through ray_remote_args, deprecated but still the way
        warnings.simplefilter("ignore")
        return ds.map_batches(
            _Detector,
            fn_constructor_kwargs={"model": model, "config": config, "threads": opts.threads, "landmarks": landmarks},
            batch_size=opts.batch_size,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=opts.threads,
            max_restarts=0,  # a lost actor fails the run (run it again: it resumes); restarts would need its arguments
        )


def detect_ray(
    specs: Sequence[str],
    model: str | None,
    config: DetectorConfig,
    options: DetectOptions,
    ray_options: RayOptions | None = None,
) -> DetectReport:
    """Run the photos that ``specs`` name through Ray Data; a ``DetectReport`` as ``detect_sources`` gives."""
    from maskwatch.progress import make_progress
    from maskwatch.runtime.classifiers import load_classifier, model_spec

    opts = ray_options or RayOptions()
    require_ray()
    labels_order = list(load_classifier(model).labels)  # a missing or wrong model: one line before Ray starts
    model_path = str(model_spec(model)[0].resolve())  # the actors' (on a cluster: the same path on every node)
    report = DetectReport()
    photos = _photos(resolve_sources(specs, report), report)
    to_stdout = is_stdout(options.jsonl)
    done, previous = written_sources(options.jsonl) if options.jsonl and not to_stdout else (set(), [])
    todo = [i.location for i in photos if i.name() not in done]
    if done:
        skipped = len(photos) - len(todo)
        console.print(f"resume: {skipped} of {len(photos)} photos already in {shown(options.jsonl)}: skipped")
    summary = SourceSummary("images", "image")
    labels: list[str] = []
    lines: list[str] = list(previous) if opts.parquet else []
    jsonl: IO[str] | None = None
    joined = True
    if options.jsonl and not to_stdout:
        options.jsonl.parent.mkdir(parents=True, exist_ok=True)
    try:
        if todo:
            joined = require_ray().is_initialized()  # a caller's connection (a benchmark's) stays open after
            connect(opts.address, None if opts.address else (opts.workers or os.cpu_count() or 1) * opts.threads)
            where = f"joined the cluster at {opts.address}" if opts.address else "started a local Ray"
            console.print(f"ray: {shown(where)} ({_cluster_cpus()} CPUs); {len(todo)} photos to do")
            ds = dataset(todo, model_path, config, options.landmarks, opts)
            if options.jsonl:
                jsonl = sys.stdout if to_stdout else options.jsonl.open("a", encoding="utf-8")
            with make_progress() as progress, warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The minimum number of concurrent actors")  # a few photos left
                task = progress.add_task("photos (ray)", total=len(todo))
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    for source, line, error in zip(batch["source"], batch["line"], batch["error"], strict=True):
                        if error:
                            report_error(report, SourceError(str(source), str(error)))
                            continue
                        count_image(summary, labels, [f["label"] for f in json.loads(line)["faces"]])
                        if jsonl:
                            jsonl.write(line)
                        if opts.parquet:
                            lines.append(line)
                    if jsonl:
                        jsonl.flush()
                    progress.advance(task, len(batch["source"]))
    finally:
        if jsonl and not to_stdout:
            jsonl.close()
        if todo and not joined:
            disconnect()
    if summary.frames:
        summary.summary = summarise(labels, labels_order, unit="faces")
        report.sources.append(summary)
    if opts.parquet:
        write_parquet(lines, opts.parquet)
    return report


def write_parquet(lines: list[str], path: Path) -> None:
    """JSON Lines results as one Parquet file (the same fields; faces a list of structs)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MaskwatchError("--parquet needs pyarrow: pip install 'maskwatch[scale]'") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([json.loads(line) for line in lines]), path)
