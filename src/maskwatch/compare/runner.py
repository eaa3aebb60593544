"""``maskwatch compare``: several registered models trained under the same conditions, then compared.

One split (``OUT/split/``) for every model, the same augmentation and budget, the same test images;
each model's run folder is ``OUT/runs/<model>/`` (an ordinary training run), its cross-data-set
report ``OUT/cross/<model>/``, and what the comparison learnt about it ``OUT/models/<model>.json``.
A model that fails is reported with its reason and the others go on.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.markup import escape

from maskwatch.compare.plan import ComparePlan, CompareRequest
from maskwatch.compare.presets import (
    Probe,
    get_preset,
    one_line,
    probe_pretrained,
    resolve_settings,
)
from maskwatch.errors import MaskwatchError
from maskwatch.io import read_json, write_json
from maskwatch.models import get_spec
from maskwatch.progress import info
from maskwatch.train.config import TrainConfig

__all__ = ["ComparePlan", "CompareRequest", "CompareResult", "plan_comparison", "run_comparison"]
DONE = ("finished", "stopped_early", "time_limit")


@dataclass
class CompareResult:
    out: Path
    rows: list[dict]
    interrupted: bool = False


def plan_comparison(request: CompareRequest, probe: Probe = probe_pretrained) -> ComparePlan:
    """Check the request and resolve every model's settings (pretrained weights are tried once)."""
    out = Path(request.out).expanduser()
    if (out / "compare.json").is_file() and not request.resume:
        raise MaskwatchError(f"{out} already holds a comparison; add --resume to continue it or use another --out")
    if not request.data:
        raise MaskwatchError("give at least one --data DIR")
    for root in [*request.data, *request.eval_data]:
        if not Path(root).expanduser().is_dir():
            raise MaskwatchError(f"data set folder not found: {root}")
    if not request.models:
        raise MaskwatchError("--models needs at least one model name")
    for name in request.models:
        get_spec(name)
    if len(request.ratios) != 3 or request.ratios[2] <= 0:
        raise MaskwatchError("--ratios must give the test split a share above 0: every model is compared on it")
    if request.latency_runs < 1:
        raise MaskwatchError("--latency-runs must be at least 1")
    overlap = {str(Path(d).expanduser().resolve()) for d in request.data} & {
        str(Path(d).expanduser().resolve()) for d in request.eval_data
    }
    if overlap:
        info(f"[yellow]--eval-data also trains the models ({', '.join(sorted(overlap))}): not a cross-data-set test")
    preset = get_preset(request.preset)
    settings = resolve_settings(list(request.models), preset, request.overrides, probe)
    plan = ComparePlan(request, preset, settings)
    for name, s in settings.items():
        if s.error is None:
            plan.train_config(name).validate()  # bad flags are the user's error, not a model's failure
    return plan


def run_comparison(plan: ComparePlan) -> CompareResult:
    """Make (or reuse) the split, train and measure each model in turn, write results and plots."""
    from maskwatch.compare.profile import environment
    from maskwatch.compare.report import write_plots, write_results

    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    meta = _write_plan(plan, env)
    split_summary = _ensure_split(plan)
    meta["split"] = split_summary
    rows: list[dict] = []
    interrupted = False
    for i, name in enumerate(plan.request.models, 1):
        info(f"[bold]model {i}/{len(plan.request.models)}: {name}")
        try:
            row = _compare_one(plan, name)
        except KeyboardInterrupt:
            row = collect_row(plan, name, {"status": "interrupted", "reason": "interrupted (Ctrl-C or SIGTERM)"})
        rows.append(row)
        write_results(out, meta, rows)
        if row["status"] == "interrupted":
            interrupted = True
            info(f"[yellow]comparison interrupted; continue it with the same command and --resume (--out {out})")
            break
        if row["status"] == "failed":
            info(f"[red]{name} failed:[/] {escape(str(row['reason']))}")
    write_results(out, meta, rows)
    write_plots(out, rows)
    return CompareResult(out, rows, interrupted)


def _write_plan(plan: ComparePlan, env: dict) -> dict:
    path = plan.out / "compare.json"
    previous = read_json(path) if path.is_file() else {}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {
        "created": previous.get("created", now),
        "updated": now,
        "request": asdict(plan.request),
        "preset": asdict(plan.preset),
        "settings": {name: asdict(s) for name, s in plan.settings.items()},
        "environment": env,
    }
    write_json(path, meta)
    return meta


def _ensure_split(plan: ComparePlan) -> dict:
    """The one split every model uses: made once into OUT/split/, reused on --resume."""
    from maskwatch.data.dataset import load_data
    from maskwatch.data.duplicates import find_duplicates, sample_groups
    from maskwatch.data.split import load_split, make_split, save_split
    from maskwatch.paths import cache_dir

    r = plan.request
    split_dir = plan.out / "split"
    cache = cache_dir()
    bundle = load_data(r.data, margin=r.margin, min_box=r.min_box, cache=cache)
    if r.resume and (split_dir / "split.json").is_file():
        split = load_split(split_dir, bundle.samples)
        info(f"reusing the split in {split_dir}")
    else:
        from maskwatch.train.embeddings import embedder

        report = find_duplicates(
            bundle.samples,
            bundle.index,
            r.dup_threshold,
            embed_threshold=r.dup_embed,
            embedder=embedder(cache) if r.dup_embed else None,
        )
        groups = sample_groups(bundle.samples, report)
        split = make_split(bundle.samples, groups, kind=r.split, ratios=tuple(r.ratios), seed=r.seed)
        save_split(split, split_dir)
    if not split.train or not split.val or not split.test:
        raise MaskwatchError("the split left no training, validation or test images; add data or change --ratios")
    summary = split.summary()
    info(
        f"split ({summary['kind']}, seed {summary['seed']}): {summary['train']['images']} train, "
        f"{summary['val']['images']} validation, {summary['test']['images']} test images -> {split_dir}"
    )
    return summary


def _run_status(run_dir: Path) -> str | None:
    path = run_dir / "run.json"
    return read_json(path).get("status") if path.is_file() else None


def _compare_one(plan: ComparePlan, name: str) -> dict:
    """Train (or skip/resume), evaluate across data sets and profile one model; return its result row."""
    from maskwatch.train.trainer import resume as resume_run
    from maskwatch.train.trainer import train as train_run

    s, r = plan.settings[name], plan.request
    run_dir = plan.run_dir(name)
    record_path = plan.out / "models" / f"{name}.json"
    old = read_json(record_path) if r.resume and record_path.is_file() else {}
    record: dict = {"train_seconds": old.get("train_seconds", 0.0)}
    if s.error is not None:
        record.update(status="failed", reason=s.error, profile=_profile_untrained(plan, name))
        write_json(record_path, record)
        return collect_row(plan, name, record)
    skipped = r.resume and _run_status(run_dir) in DONE and (run_dir / "metrics.json").is_file()
    if skipped:
        info(f"{name}: finished earlier ({_run_status(run_dir)}); not retrained")
        drift = _drift(plan, name)
        if drift:
            info(f"[yellow]{name}: the reused run was trained with other settings: {drift}")
            record["drift"] = drift
    else:
        t0 = time.perf_counter()
        try:
            if r.resume and (run_dir / "config.json").is_file():
                info(f"{name}: continuing the run in {run_dir}")
                result = resume_run(run_dir, epochs=s.epochs)
            else:
                result = train_run(plan.train_config(name))
        except KeyboardInterrupt:
            record["train_seconds"] += time.perf_counter() - t0
            record.update(status="interrupted", reason="interrupted (Ctrl-C or SIGTERM)")
            write_json(record_path, record)
            return collect_row(plan, name, record)
        except Exception as exc:  # one model's failure (out of memory, missing weights, ...) ends only its run
            record["train_seconds"] += time.perf_counter() - t0
            record.update(status="failed", reason=one_line(exc), profile=_profile_untrained(plan, name))
            write_json(record_path, record)
            _free_memory()
            return collect_row(plan, name, record)
        record["train_seconds"] += time.perf_counter() - t0
        if result.status == "interrupted":
            record.update(status="interrupted", reason="interrupted (Ctrl-C or SIGTERM)")
            write_json(record_path, record)
            return collect_row(plan, name, record)
        del result
    _free_memory()
    record["status"] = "ok"
    record["reused"] = skipped
    if r.eval_data:
        same = old.get("cross", {}).get("eval_data") == list(r.eval_data) and "error" not in old.get("cross", {})
        record["cross"] = old["cross"] if skipped and same else _cross(plan, name)
    record["profile"] = (
        old["profile"] if skipped and "latency_ms_b32" in old.get("profile", {}) else _profile_trained(plan, name)
    )
    write_json(record_path, record)
    return collect_row(plan, name, record)


def _drift(plan: ComparePlan, name: str) -> str:
    """How a finished run's settings differ from what the comparison would use now (empty: not at all)."""
    saved = TrainConfig.load(plan.run_dir(name)).to_dict()
    wanted = plan.train_config(name).to_dict()
    keys = ("image_size", "epochs", "batch_size", "freeze", "time_limit", "patience", "augment", "pretrained", "seed")
    return ", ".join(f"{k} {saved.get(k)} (now {wanted[k]})" for k in keys if saved.get(k) != wanted[k])


def _cross(plan: ComparePlan, name: str) -> dict:
    from maskwatch.train.evaluate import evaluate_model

    r = plan.request
    where = plan.out / "cross" / name
    try:
        report = evaluate_model(
            plan.run_dir(name),
            list(r.eval_data),
            out=where,
            device=r.device,
            margin=r.margin,
            min_box=r.min_box,
            workers=r.workers,
        )
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        info(f"[yellow]{name}: cross-data-set evaluation failed: {escape(one_line(exc))}")
        return {"eval_data": list(r.eval_data), "error": one_line(exc)}
    m = report["metrics"]
    return {
        "eval_data": list(r.eval_data),
        "samples": m["samples"],
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "out": str(where),
    }


def _profile_trained(plan: ComparePlan, name: str) -> dict:
    from maskwatch.compare.profile import profile_model
    from maskwatch.train.checkpoint import load_model

    try:
        net, _ = load_model(plan.run_dir(name))
        return profile_model(net, net.input_size, runs=plan.request.latency_runs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        info(f"[yellow]{name}: profiling failed: {escape(one_line(exc))}")
        return {"error": one_line(exc)}


def _profile_untrained(plan: ComparePlan, name: str) -> dict:
    """Params and FLOPs of a failed model, where it can be built at all (no latency)."""
    from maskwatch.compare.profile import profile_model
    from maskwatch.models import create_model

    s = plan.settings[name]
    try:
        net = create_model(name, 3, pretrained=False, input_size=s.image_size)
        return profile_model(net, net.input_size, latency=False)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return {"error": one_line(exc)}


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def collect_row(plan: ComparePlan, name: str, record: dict) -> dict:
    """One model's results: the comparison's record plus what its run folder says."""
    s = plan.settings[name]
    run_dir = plan.run_dir(name)
    run = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    metrics_path = run_dir / "metrics.json"
    ok = record.get("status") == "ok"
    test = read_json(metrics_path).get("test") if ok and metrics_path.is_file() else None
    history = read_json(run_dir / "history.json") if (run_dir / "history.json").is_file() else []
    profile = record.get("profile") or {}
    cross = record.get("cross") or {}
    loaded = run.get("pretrained")  # what really loaded, written by the trainer
    row: dict = {
        "model": name,
        "status": record.get("status", "failed"),
        "reason": record.get("reason"),
        "run_status": run.get("status"),
        "pretrained": bool(loaded),
        "pretrained_source": loaded,
        "frozen_backbone": run.get("frozen_backbone", s.freeze == "backbone"),
        "image_size": profile.get("input_size", s.image_size),
        "params": profile.get("params"),
        "flops": profile.get("flops"),
        "latency_ms_b1": profile.get("latency_ms_b1"),
        "latency_ms_b32": profile.get("latency_ms_b32"),
        "train_time_s": round(record["train_seconds"], 1) if record.get("train_seconds") else None,
        "epoch_time_s": round(sum(h["seconds"] for h in history), 1) if history else None,
        "epochs_run": len(history) if history else None,
        "best_epoch": run.get("best_epoch") if history else None,
        "max_epochs": s.epochs,
        "time_limit_s": s.time_limit,
        "test_samples": None,
        "test_loss": None,
        "accuracy": None,
        "macro_precision": None,
        "macro_recall": None,
        "macro_f1": None,
        "ece": None,
        "per_class_f1": {},
        "cross_samples": cross.get("samples"),
        "cross_accuracy": cross.get("accuracy"),
        "cross_macro_f1": cross.get("macro_f1"),
        "cross_error": cross.get("error"),
        "note": "; ".join(
            x
            for x in (
                s.note,
                "reused a finished run" if record.get("reused") else "",
                f"trained with {record['drift']}" if record.get("drift") else "",
            )
            if x
        ),
        "run_dir": str(run_dir.relative_to(plan.out)) if run_dir.is_dir() else None,
        "confusion_matrix": None,
    }
    if test:
        present = [v for v in test["per_class"].values() if v["support"] > 0]
        row.update(
            test_samples=test["samples"],
            test_loss=test["loss"],
            accuracy=test["accuracy"],
            macro_precision=sum(v["precision"] for v in present) / max(len(present), 1),
            macro_recall=sum(v["recall"] for v in present) / max(len(present), 1),
            macro_f1=test["macro_f1"],
            ece=test["ece"],
            per_class_f1={label: v["f1"] for label, v in test["per_class"].items()},
            confusion_matrix=test["confusion_matrix"],
        )
    elif ok:
        row.update(status="failed", reason="the run wrote no test metrics")
    return row
