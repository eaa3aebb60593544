"""``maskwatch data synth`` and ``data inspect`` (data set tools), and ``maskwatch models`` (the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from maskwatch.cli.common import friendly
from maskwatch.paths import check_output_path
from maskwatch.progress import console, shown


def register(app: typer.Typer) -> None:
    """Add ``models`` and the ``data`` group (``synth``, ``inspect``) to ``app``."""
    app.command("models")(friendly(models_cmd))
    data_app = typer.Typer(no_args_is_help=True, help="Data set tools.")
    data_app.command("synth")(friendly(data_synth))
    data_app.command("inspect")(friendly(data_inspect))
    app.add_typer(data_app, name="data")


def models_cmd() -> None:
    """List the registered models, their input size and where pretrained weights come from."""
    from maskwatch.models import get_spec, list_models

    table = Table()
    for col in ("name", "input", "pretrained weights", "description"):
        table.add_column(col, overflow="fold")  # long weight names wrap, never cut to "…"
    for name in list_models():
        s = get_spec(name)
        table.add_row(name, str(s.input_size), s.pretrained_source or "none (trains from scratch)", s.description)
    console.print(table)


def data_synth(
    faces: Annotated[
        list[Path], typer.Option("--faces", help="Data sets whose without_mask faces are drawn on (repeatable).")
    ],
    out: Annotated[Path, typer.Option(help="New folder for the synthetic set.")],
    per_face: Annotated[int, typer.Option(help="Synthetic images per source face.")] = 2,
    seed: Annotated[int, typer.Option(help="Same seed, same output.")] = 0,
    negatives: Annotated[float, typer.Option(help="Share of hard negatives (hand, scarf, paper).")] = 0.15,
    incorrect: Annotated[float, typer.Option(help="Share of masks worn incorrectly.")] = 0.4,
    mix: Annotated[
        str,
        typer.Option(
            help="uniform: every style, pattern, colour and wrong placement alike | realistic: mostly plain light"
            " masks, worn wrongly mostly under the nose (see data/synth_draw.MIXES)."
        ),
    ] = "uniform",
    paired: Annotated[
        bool,
        typer.Option(
            help="Draw each mask twice, worn correctly and worn wrongly (same style, pattern, colour): only the"
            " placement tells the classes apart. --incorrect is then unused."
        ),
    ] = False,
    donors: Annotated[
        list[Path] | None,
        typer.Option(
            "--donors",
            help="Data sets whose with_mask faces lend their real masks, moved onto the unmasked faces (repeatable)."
            " Not grouped with the output: use sets (or a training part) kept out of every test.",
        ),
    ] = None,
    donor_share: Annotated[
        float, typer.Option(help="With --donors: share of masks taken from a donor (the rest are drawn).")
    ] = 1.0,
) -> None:
    """Draw masks (worn correctly or not) and hard negatives on unmasked faces: a class-folder set + manifest.csv."""
    from maskwatch.synth.make import synthesize

    check_output_path("--out", out)
    report = synthesize(
        faces,
        out,
        per_face=per_face,
        seed=seed,
        negatives=negatives,
        incorrect=incorrect,
        mix=mix,
        paired=paired,
        donors=donors,
        donor_share=donor_share,
    )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    console.print(
        f"{report.written} images from {report.faces - len(report.skipped)} of {report.faces} faces ({counts}); "
        f"{len(report.skipped)} skipped (see report.json) -> {out}"
    )
    if donors:
        console.print(
            f"masks moved from donors: {report.donors} with_mask faces offered, {len(report.donors_unusable)} of"
            " those drawn were unusable (listed in report.json)"
        )


def data_inspect(
    dirs: Annotated[list[Path], typer.Argument(help="Data set folders (class folders or Pascal VOC).")],
    out: Annotated[Path, typer.Option(help="Folder for report.json and the pictures.")] = Path("runs/inspect"),
    dup_threshold: Annotated[int, typer.Option(help="Near-duplicate distance in perceptual-hash bits.")] = 8,
    dup_embed: Annotated[
        float, typer.Option(help="Also group images whose embeddings have this cosine similarity (0: off; try 0.92).")
    ] = 0.0,
    margin: float = 0.15,
    min_box: int = 12,
) -> None:
    """Count classes, measure image sizes, list broken files and (near-)duplicate groups."""
    from maskwatch.train.inspect import inspect_data

    check_output_path("--out", out)
    r = inspect_data(
        [str(d) for d in dirs], out, threshold=dup_threshold, margin=margin, min_box=min_box, embed_threshold=dup_embed
    )
    table = Table(title=f"{r['images']} usable images")
    table.add_column("class")
    table.add_column("images", justify="right")
    for label, n in r["counts"].items():
        table.add_row(label, str(n))
    console.print(table)
    size = r["image_size"]["short_side"]
    if size:
        console.print(
            f"short side: min {size['min']}, median {size['median']:.0f}, max {size['max']} px; "
            f"{r['image_size']['short_side_under_64']} under 64 px"
        )
    for d in r["datasets"]:
        if d["kind"] == "voc":
            console.print(
                f"{shown(Path(d['root']).name)}: {d['boxes']} face boxes, {d['crops']} crops, "
                f"{d['skipped_small']} skipped (shorter side under --min-box {min_box} px)"
            )
    faces = r["image_size"]["face_box_short_side"]
    if faces:
        console.print(
            f"face boxes, short side: min {faces['min']}, median {faces['median']:.0f}, max {faces['max']} px; "
            f"{r['image_size']['face_boxes_under_20']} under 20 px"
        )
    console.print(f"problems: {len(r['problems'])} " + (str(r["problem_counts"]) if r["problems"] else ""))
    for p in r["problems"][:20]:
        console.print(f"  [yellow]{shown(p['path'])}[/]: {shown(p['reason'])}")
    if len(r["problems"]) > 20:
        console.print(f"  ... {len(r['problems']) - 20} more in report.json")
    e, n = r["exact_duplicates"], r["near_duplicates"]
    console.print(
        f"exact duplicates: {e['groups']} groups ({e['redundant_files']} redundant files); "
        f"near duplicates (phash <= {n['max_distance_bits']} bits"
        + (f" or embedding cosine >= {n['embedding_min_cosine']}" if n["embedding_min_cosine"] else "")
        + f"): {n['groups']} groups "
        f"({n['redundant_files']} redundant files, largest {n['largest_group']})"
    )
    if r["cross_class_duplicates"]:
        console.print(f"[red]cross-class duplicates: {len(r['cross_class_duplicates'])} groups[/] (see report.json)")
    console.print(
        f"report: {out / 'report.json'}, pictures: {', '.join(r['pictures'])}"
        + ("" if "duplicates.png" in r["pictures"] else " (no near-duplicate groups, so no duplicates.png)")
    )
