"""The `curate` command line: thin bodies that parse, validate and call the library.

Errors are one line on stderr and a non-zero exit, never a traceback (``CURATE_DEBUG=1`` shows it).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from curate import __version__

app = typer.Typer(
    name="curate",
    help="Find what is wrong with a YOLO object-detection dataset, fix it in the FiftyOne App, rebalance it, "
    "add backgrounds, and prove with a before/after training run that it helped.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DatasetArg = Annotated[Path, typer.Argument(help="A YOLO dataset folder or its data.yaml.", show_default=False)]


def fail(message: str, code: int = 1) -> None:
    """One clear line on stderr, then exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load(path: Path):
    """Load a dataset, turning a DatasetError into one line; print the reader's warnings."""
    from curate.io.yolo import DatasetError, load_yolo

    try:
        ds = load_yolo(path)
    except DatasetError as exc:
        fail(str(exc))
    for w in ds.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    return ds


@contextlib.contextmanager
def locked(ds, command: str):
    """Hold ``ds``'s lock (:mod:`curate.io.locks`) for a command body; when another command holds it, say which
    and wait for it: two commands on one dataset would share its FiftyOne dataset and output folders."""
    from curate.io.locks import dataset_lock_path, hold

    def waiting(holder: str) -> None:
        err.print(f"waiting for {holder} on {ds.root}…", highlight=False, soft_wrap=True)

    with hold(dataset_lock_path(ds.slug), command=f"curate {command}", on_wait=waiting):
        yield


@contextlib.contextmanager
def database_errors():
    """FiftyOne's database unreachable or not starting (:class:`curate.fiftyone.database.DatabaseError`): one
    line, exit 1."""
    from curate.fiftyone.database import DatabaseError

    try:
        yield
    except DatabaseError as exc:
        fail(str(exc))


def connect() -> None:
    """Connect to FiftyOne's database before a command's FiftyOne work
    (:func:`curate.fiftyone.database.connect_database`)."""
    from curate.fiftyone.database import connect_database

    with database_errors():
        connect_database()


@app.callback(invoke_without_command=True)
def main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    from curate.runtime import env

    env.configure()
    if version:
        out.print(f"curate {__version__}")
        raise typer.Exit()


@app.command()
def info(
    dataset: DatasetArg, findings: Annotated[int, typer.Option(help="Show at most this many format findings.")] = 20
) -> None:
    """Print splits, images, boxes, background images, per-class counts per split and format findings."""
    ds = load(dataset)
    splits = ds.splits
    t = Table(title=f"{ds.name}  ({ds.root})", title_justify="left")
    for col in ("split", "images", "boxes", "polygons", "background images", "empty label files", "format findings"):
        t.add_column(col, justify="left" if col == "split" else "right")
    for s in splits + ["all"]:
        recs = ds.images if s == "all" else ds.split(s)
        fnd = [f for f in ds.findings if s == "all" or f.split == s]
        t.add_row(
            s,
            str(len(recs)),
            str(sum(len(r.labels) for r in recs)),
            str(sum(1 for r in recs for lb in r.labels if lb.polygon is not None)),
            str(sum(1 for r in recs if r.is_background)),
            str(sum(1 for r in recs if r.label_path is not None and r.label_path.stat().st_size == 0)),
            str(len(fnd)),
            style="bold" if s == "all" else None,
        )
    out.print(t)
    counts = {s: Counter(lb.class_id for r in ds.split(s) for lb in r.labels) for s in splits}
    c = Table(title=f"{len(ds.names)} classes: instances per split", title_justify="left")
    c.add_column("id", justify="right")
    c.add_column("class")
    for s in splits:
        c.add_column(s, justify="right")
    for i, name in enumerate(ds.names):
        c.add_row(str(i), name, *(str(counts[s][i]) if counts[s][i] else "[red]0[/]" for s in splits))
    out.print(c)
    if ds.findings:
        f = Table(title=f"format findings ({len(ds.findings)})", title_justify="left")
        for col in ("file", "line", "reason"):
            f.add_column(col)
        for x in ds.findings[:findings]:
            f.add_row(x.data.get("label_file", x.image), "" if x.line is None else str(x.line), x.message)
        out.print(f)
        if len(ds.findings) > findings:
            out.print(f"… and {len(ds.findings) - findings} more (`curate audit` writes them all to findings.csv)")
    else:
        out.print("no format findings")


@app.command()
def audit(
    dataset: DatasetArg,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Output folder [default: reports/<dataset>-<key>/audit].")
    ] = None,
    config: Annotated[
        Optional[Path], typer.Option(help="YAML of per-check options: checks: {grouped: {threshold: 0.6}}.")
    ] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="No pixel work beyond hashing: geometry and image-level checks only.")
    ] = False,
    all_scores: Annotated[
        bool, typer.Option("--all-scores", help="Also write every scored box/image to all_scores.csv.")
    ] = False,
    model: Annotated[
        Optional[Path], typer.Option(help="A trained YOLO .pt: its predictions feed cleanlab's ObjectLab check.")
    ] = None,
    checks: Annotated[Optional[str], typer.Option(help="Run only these checks (comma-separated names).")] = None,
    fiftyone: Annotated[
        bool, typer.Option("--fiftyone/--no-fiftyone", help="Tag findings in FiftyOne and save views.")
    ] = True,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Reuse cached check results when nothing changed.")
    ] = True,
) -> None:
    """Flag ambiguous, grouped, background-heavy, shifted, duplicate, class-inconsistent and missing boxes,
    near-duplicate images and split leakage; write findings.csv/json, report.html and FiftyOne views."""
    from curate.audit.runner import ConfigError, all_check_names, load_config, run_audit
    from curate.fiftyone.identity import IdentityError
    from curate.io.yolo import WriteError

    if model is not None and not model.is_file():
        fail(f"--model {model}: no such file")
    try:
        params = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    only = None
    if checks:
        only = {c.strip() for c in checks.split(",") if c.strip()}
        known = set(all_check_names())
        for c in sorted(only - known):
            import difflib

            hint = difflib.get_close_matches(c, sorted(known), n=1)
            fail(f"--checks: unknown check {c!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    from curate.audit.boxmodel import BOX_CHECKS, spawn_child

    child = None
    if fast and (only is None or only & set(BOX_CHECKS)):
        child = spawn_child()  # starts up while the dataset is read; run_audit uses or cancels it
    try:
        ds = load(dataset)
    except BaseException:
        if child is not None:
            child.cancel()
        raise
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    )
    with locked(ds, "audit"), database_errors(), progress as bar:
        task = bar.add_task("audit", total=None)
        try:
            result = run_audit(
                ds,
                out_dir=out_dir,
                params=params,
                fast=fast,
                model=str(model) if model else None,
                all_scores=all_scores,
                only=only,
                fiftyone=fiftyone,
                use_cache=cache,
                on_check=lambda m: bar.update(task, description=f"audit: {m}"),
                box_model_child=child,
                note=lambda m: err.print(f"[yellow]note:[/] {m}", highlight=False, soft_wrap=True),
            )
        except (IdentityError, WriteError) as exc:
            fail(str(exc))
    print_audit_summary(result)


def print_audit_summary(result) -> None:
    """The rich summary table: findings per check, worst score, threshold, seconds."""
    from curate.audit.checks import by_name
    from curate.audit.runner import all_check_names

    per_check: dict[str, list] = {}
    for f in result.findings:
        per_check.setdefault(f.check, []).append(f)
    scored = result.scored
    module_of = {n: c.module for n, c in by_name().items()}
    t = Table(
        title=f"audit of {result.dataset.name}: {len(result.dataset.images)} images, {result.dataset.num_boxes} boxes",
        title_justify="left",
    )
    for col in ("check", "flagged", "scored", "worst", "seconds"):
        t.add_column(col, justify="left" if col == "check" else "right")
    for name in all_check_names():
        flagged = per_check.get(name, [])
        module = module_of.get(name)
        if module in result.errors:
            t.add_row(name, "[red]failed[/]", "", "", "")
            continue
        if name in result.skipped:
            t.add_row(name, f"[dim]not run ({result.skipped[name]})[/]", "", "", "")
            continue
        secs = result.timings.get(module, 0.0) if module else 0.0
        worst = f"{max(f.score for f in flagged):.2f}" if flagged else ""
        t.add_row(
            name,
            f"[bold]{len(flagged)}[/]" if flagged else "0",
            str(scored.get(name, "")),
            worst,
            f"{secs:.1f}" if module else "",
        )
    out.print(t)
    for module, e in result.errors.items():
        err.print(f"[red]check {module} failed:[/] {e}", highlight=False)
    out.print(f"findings: {result.out_dir / 'findings.csv'}  ({len(result.findings)} rows)")
    if result.report:
        out.print(f"report:   {result.report}")
    if result.fiftyone_name:
        out.print(
            f"FiftyOne: dataset {result.fiftyone_name!r}, saved views audit/<check>  →  "
            f"curate review {result.dataset.root}"
        )
    out.print(f"took {result.timings.get('total', 0):.1f} s")


@app.command()
def review(
    dataset: DatasetArg,
    check: Annotated[
        Optional[str], typer.Option(help="Open the view of this check only [default: all flagged samples].")
    ] = None,
    port: Annotated[int, typer.Option(help="Port of the FiftyOne App.")] = 5151,
    remote: Annotated[
        bool, typer.Option("--remote", help="Serve on all interfaces, for a browser on another machine.")
    ] = False,
    discard_edits: Annotated[
        bool,
        typer.Option(
            "--discard-edits",
            help="The dataset changed on disk: start over, deleting the review held in FiftyOne "
            "(by default it is carried over or kept).",
        ),
    ] = False,
) -> None:
    """Open the FiftyOne App on the audit's flagged samples to fix boxes by hand (runs the audit if needed)."""
    from curate.fiftyone.review import ReviewError, launch, prepare_review, terminate_as_interrupt
    from curate.io.yolo import WriteError

    ds = load(dataset)
    try:
        with locked(ds, "review"), err.status("preparing review (runs the audit if it has not run)"):
            connect()
            fo_dataset, view_name = prepare_review(
                ds,
                check=check,
                discard_edits=discard_edits,
                note=lambda m: err.print(f"[yellow]note:[/] {m}", highlight=False, soft_wrap=True),
            )
    except (ReviewError, ValueError, WriteError) as exc:
        fail(str(exc))
    out.print(f"FiftyOne dataset: {fo_dataset.name}", highlight=False)
    if view_name is None:
        out.print("the audit flagged nothing: opening the whole dataset")
    with terminate_as_interrupt():
        session = launch(fo_dataset, view_name, port=port, remote=remote)
        serve(session, fo_dataset, view_name, ds.root, port=port, remote=remote)


def serve(session, fo_dataset, view_name: str | None, root: Path, *, port: int, remote: bool) -> None:
    """Print where the App is and what to do, then block until Ctrl-C; always stop the App server."""
    from curate.fiftyone.review import close, instructions, view_url

    try:
        out.print(
            f"FiftyOne App: {view_url(session, fo_dataset, view_name)}"
            + (f"  (view {view_name})" if view_name else ""),
            soft_wrap=True,
        )
        if remote:
            out.print(
                f"remote: from your machine, `ssh -N -L {port}:127.0.0.1:{port} USER@HOST`, then open http://localhost:{port}"
            )
        out.print(instructions(root), highlight=False, soft_wrap=True)
        session.wait(-1)
    except KeyboardInterrupt:
        out.print("stopping the App")
    finally:
        close(session)


@app.command()
def export(
    dataset: DatasetArg,
    out_dir: Annotated[Path, typer.Option("--out", help="A NEW folder for the reviewed dataset.", show_default=False)],
    from_fiftyone: Annotated[
        Optional[str],
        typer.Option(
            "--from-fiftyone",
            help="Export the review held in this FiftyOne dataset (a dated copy kept by a rebuild) "
            "[default: the dataset's own].",
        ),
    ] = None,
    accept_proposals: Annotated[
        bool,
        typer.Option(
            "--accept-proposals",
            help="Also apply every audit proposal at or above --min-confidence that the reviewer did not reject "
            "(no human needed).",
        ),
    ] = False,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="The bar for --accept-proposals.")] = 0.9,
) -> None:
    """Write the reviewed dataset back to YOLO in a new folder, with changes.csv and CHANGES.md."""
    from curate.io.yolo import WriteError
    from curate.ops.export import export_reviewed

    ds = load(dataset)
    try:
        with locked(ds, "export"):
            connect()
            result = export_reviewed(
                ds, out_dir, fiftyone_name=from_fiftyone, min_confidence=min_confidence if accept_proposals else None
            )
    except (WriteError, ValueError) as exc:
        fail(str(exc))
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n) or "no changes"
    proposed = sum(1 for c in result.changes if c.source == "proposed")
    counts += f" ({proposed} from proposals)" if proposed else ""
    out.print(
        f"wrote {result.out}: {result.images} images; {counts}; {len(result.ok_marks)} label(s) marked ok "
        f"(review read from FiftyOne dataset {result.fiftyone_name})",
        highlight=False,
    )
    out.print(f"changes: {result.out / 'changes.csv'}  summary: {result.out / 'CHANGES.md'}")


@app.command()
def rebalance(
    dataset: DatasetArg,
    out_dir: Annotated[
        Path, typer.Option("--out", help="A new output folder (must not exist, or be empty).", show_default=False)
    ],
    split: Annotated[
        str, typer.Option(help="Train/val/test percentages summing to 100, or 2 ratios for train/val only.")
    ] = "80/10/10",
    seed: Annotated[int, typer.Option(help="Seed of every random choice: same seed, same output.")] = 0,
    keep_classes: Annotated[
        Optional[str], typer.Option(help="Keep only these classes (comma-separated names).")
    ] = None,
    drop_class: Annotated[Optional[list[str]], typer.Option(help="Drop this class (repeatable).")] = None,
    merge: Annotated[Optional[list[str]], typer.Option(help="SRC=DST: relabel SRC boxes as DST (repeatable).")] = None,
    min_instances: Annotated[int, typer.Option(help="Drop classes with fewer instances than this (after merges).")] = 0,
    empty_images: Annotated[
        str, typer.Option(help="Images left with no boxes: keep (as background) or drop.")
    ] = "keep",
    cap: Annotated[
        Optional[int],
        typer.Option(help="Train only: at most N instances of a class (drops images, rare classes spared)."),
    ] = None,
    oversample: Annotated[
        Optional[str],
        typer.Option(help="Train only: repeat images of rare classes up to TARGET instances ('median' or a number)."),
    ] = None,
    group_by: Annotated[
        Optional[str],
        typer.Option(help="REGEX on file names: images with the same first capture group stay in one split."),
    ] = None,
    near_duplicates: Annotated[
        bool,
        typer.Option(
            "--near-duplicates/--no-near-duplicates",
            help="Keep near-duplicate images (perceptual hashes) in one split.",
        ),
    ] = True,
) -> None:
    """Drop/merge/cap/oversample classes and re-split, stratified and leak-free."""
    from curate.app.tables import rebalance_table
    from curate.io.yolo import WriteError, check_output_dir
    from curate.ops import rebalance as rb

    try:
        options = rb.RebalanceOptions(
            ratios=rb.parse_ratios(split),
            seed=seed,
            keep=rb.parse_names(keep_classes),
            drop=list(drop_class or []),
            merge=rb.parse_merge(merge or []),
            min_instances=min_instances,
            empty_images=empty_images,
            cap=cap,
            oversample=None
            if oversample is None
            else ("median" if oversample == "median" else int(oversample) if oversample.isdigit() else oversample),
            group_by=group_by,
            near_duplicates=near_duplicates,
        )
        ds = load(dataset)
        check_output_dir(out_dir, [ds.root])
        result = rb.rebalance(ds, options)
        written = rb.write_rebalanced(result, out_dir)
    except (rb.RebalanceError, WriteError) as exc:
        fail(str(exc))
    out.print(rebalance_table(result.summary))
    for note in result.summary["notes"]:
        err.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    out.print(f"wrote {written}  (rebalance.json: counts before/after, groups, what was dropped/merged/copied)")


@app.command()
def backgrounds(
    dataset: DatasetArg,
    out_dir: Annotated[
        Path, typer.Option("--out", help="A new output folder (must not exist, or be empty).", show_default=False)
    ],
    fraction: Annotated[
        float, typer.Option(help="Background images to add, as a share of train images (Ultralytics advises 0-0.10).")
    ] = 0.05,
    instances: Annotated[
        int, typer.Option(help="Also add N instance-only images (one object pasted on a background or plain canvas).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of every random choice: same seed, same output.")] = 0,
) -> None:
    """Add background-only train images made from the dataset's own photos (objects removed, U²-Net-p checked)."""
    from curate.io.yolo import WriteError, check_output_dir
    from curate.ops import backgrounds as bg

    try:
        ds = load(dataset)
        check_output_dir(out_dir, [ds.root])
        result = bg.backgrounds(ds, fraction=fraction, instances=instances, seed=seed)
        written = bg.write_backgrounds(result, out_dir)
    except (bg.BackgroundError, WriteError) as exc:
        fail(str(exc))
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    out.print(
        f"added {len(result.backgrounds)} background and {len(result.instances)} instance images to train "
        f"in {result.seconds:.0f} s; wrote {written}  (backgrounds.json, backgrounds_contact.png)"
    )


@app.command("train-and-compare", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_and_compare(
    ctx: typer.Context,
    before: DatasetArg,
    after: DatasetArg,
    test: Annotated[
        Optional[Path],
        typer.Option(
            help="Fixed test set: a dataset (its --test-split) or a split folder of one. Default: AFTER's test split."
        ),
    ] = None,
    test_split: Annotated[str, typer.Option(help="Split of --test to use.")] = "test",
    model: Annotated[str, typer.Option(help="Ultralytics model: a .yaml (from scratch) or your .pt.")] = "yolov8n.yaml",
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    imgsz: Annotated[int, typer.Option(min=32)] = 640,
    batch: Annotated[int, typer.Option(min=1)] = 16,
    seed: Annotated[int, typer.Option()] = 0,
    seeds: Annotated[
        int, typer.Option(min=1, help="Train this many seeds per side; seed variance is folded into the interval.")
    ] = 1,
    device: Annotated[
        Optional[str], typer.Option(help="cpu, 0, or 0,1 for several GPUs. Default: CUDA when available.")
    ] = None,
    workers: Annotated[int, typer.Option(min=0)] = 2,
    resamples: Annotated[int, typer.Option(min=100, help="Paired bootstrap resamples.")] = 1000,
    out_dir: Annotated[
        Optional[Path],
        typer.Option("--out", help="Output folder. Default: reports/compare/<before>-<key>-vs-<after>-<key>/."),
    ] = None,
) -> None:
    """Train the same model on BEFORE and AFTER and compare them on one fixed test set.

    Extra key=value arguments go to Ultralytics' train() as they are (e.g. lr0=0.005 mosaic=0).
    Re-running the same command resumes an interrupted run from its last checkpoint.
    """
    from curate.train import compare as cmp
    from curate.train import history as hist

    try:
        extra = cmp.parse_extras(list(ctx.args))
    except cmp.CompareError as exc:
        fail(str(exc))
    b, a = load(before), load(after)
    t = None
    if test is not None:
        t = cmp.resolve_test(test, test_split, load)
    target = out_dir or Path("reports") / "compare" / f"{b.slug}-vs-{a.slug}"
    settings = cmp.TrainSettings(
        model=model,
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        seed=seed,
        seeds=seeds,
        device=device,
        workers=workers,
        resamples=resamples,
        extra=extra,
    )
    try:
        result = cmp.compare(
            b, a, target, settings=settings, test=t, log=lambda m: err.print(m, highlight=False, soft_wrap=True)
        )
    except cmp.CompareError as exc:
        fail(str(exc))
    paths = cmp.write_outputs(result)
    data = result.to_json()
    hpath = hist.append(hist.history_path(), hist.entry(data, result.out))
    for w in data["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    from curate.report.compare import headline

    out.print(headline(data).replace("**", ""), highlight=False)
    out.print(f"wrote {paths['html']}, {paths['json'].name}, {paths['md'].name}; history: {hpath}")


@app.command()
def run(
    pipeline: Annotated[
        Path, typer.Argument(help="A pipeline recipe YAML (e.g. pipelines/default.yaml).", show_default=False)
    ],
    dataset: DatasetArg,
    profile: Annotated[
        Optional[str], typer.Option(help="A profile of the recipe (its overrides), e.g. cpu or gpu.")
    ] = None,
    from_stage: Annotated[
        Optional[str],
        typer.Option("--from", help="Force this stage and every later one to run (after a review: --from export)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (which stages run or skip, and why) and write nothing.")
    ] = False,
    name: Annotated[Optional[str], typer.Option(help="Run name [default: <recipe name>-<dataset name>-<key>].")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="STAGE.KEY=VALUE override (repeatable), e.g. train-and-compare.epochs=1."),
    ] = None,
    reports: Annotated[Path, typer.Option(help="Where run folders go: <reports>/<run>/<stage>/.")] = Path("reports"),
) -> None:
    """Run a recipe of stages (audit → review → export → rebalance → backgrounds → train-and-compare), skipping
    stages whose input and parameters are unchanged; writes reports/<run>/<stage>/manifest.json and summary.html."""
    from curate.app import pipeline as pl

    try:
        recipe = pl.load_recipe(pipeline, profile=profile, overrides=list(set_ or []))
    except pl.PipelineError as exc:
        fail(str(exc))
    ds = load(dataset)
    try:
        plan = pl.plan_run(recipe, ds, reports=reports, name=name, from_stage=from_stage)
    except pl.PipelineError as exc:
        fail(str(exc))
    run_name = pl.run_name(recipe, ds, name)
    t = Table(title=f"plan of {run_name} ({reports / run_name})", title_justify="left")
    for col in ("stage", "action", "why"):
        t.add_column(col)
    style = {"run": "bold green", "skip": "dim", "pause": "bold yellow", "off": "dim"}
    for p in plan:
        t.add_row(p.stage, f"[{style[p.action]}]{p.action}[/]", p.reason)
    out.print(t)
    if dry_run:
        out.print("dry run: nothing written")
        return
    extra = (
        (f" --profile {profile}" if profile else "")
        + "".join(f" --set {s}" for s in set_ or [])
        + (f" --name {name}" if name else "")
    )
    extra += f" --reports {reports}" if reports != Path("reports") else ""
    rv = recipe.stages.review
    review_cmd = (
        f"curate review {dataset}"
        + (f" --check {rv.check}" if rv and rv.check else "")
        + (f" --port {rv.port}" if rv and rv.port != 5151 else "")
        + (" --remote" if rv and rv.remote else "")
    )
    commands = {
        "review the flagged boxes": review_cmd,
        "then continue with": f"curate run {pipeline} {dataset}{extra} --from export",
    }
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    )
    with locked(ds, "run"), database_errors(), progress as bar:
        if rv and not rv.skip and any(p.stage == "export" and p.action == "run" for p in plan):
            connect()  # the export reads the review from FiftyOne; the audit stage connects by itself
        task = bar.add_task("pipeline", total=None)
        try:
            result = pl.run_pipeline(
                recipe,
                ds,
                reports=reports,
                name=name,
                from_stage=from_stage,
                log=lambda m: out.print(m, highlight=False, soft_wrap=True),
                progress=lambda m: bar.update(task, description=m),
                commands=commands,
            )
        except pl.PipelineError as exc:
            fail(str(exc))
    if result.paused:
        out.print("paused for the review (exit 0): run the two commands above")
    ran = ", ".join(f"{s} {t:.0f} s" for s, t in result.seconds.items()) or "nothing (every stage up to date)"
    out.print(f"ran: {ran}")
    if result.final is not None:
        out.print(f"dataset: {result.final}")
    out.print(f"summary: {result.summary}")


@app.command()
def history(
    path: Annotated[Path, typer.Argument(help="A history.jsonl (written by train-and-compare).")] = Path(
        "reports/history.jsonl"
    ),
) -> None:
    """Print the attempt history of train-and-compare runs."""
    from curate.train import history as hist

    if not path.is_file():
        fail(f"no history at {path} (train-and-compare writes one; pass its path)")
    rows, problems = hist.read(path)
    for p in problems:
        err.print(f"[yellow]warning:[/] {p}", highlight=False)
    out.print(hist.table(rows))


#: The garbage collector's thresholds for a CLI run (Python's default: 700, 10, 10).
#: Why: an audit keeps ~100,000 objects alive (labels, 34,000 scores with their data, imported modules),
#: and with a new collection every 700 allocations the full ones rescanned all of them: 0.3 s of the
#: main process's CPU on food-ingredients (3 full collections of ~70 ms, 34 middle, 378 young), 0.1 s
#: with these. Nothing is kept longer than that: cycles are still collected, only less often.
GC_THRESHOLDS = (10_000, 10, 10)


def entry() -> None:
    """Console-script entry: no traceback for an unexpected error unless CURATE_DEBUG is set."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 — the promise is one line, never a traceback
        if os.environ.get("CURATE_DEBUG"):
            raise
        err.print(
            f"[bold red]error:[/] {type(exc).__name__}: {exc}  (set CURATE_DEBUG=1 for the traceback)", highlight=False
        )
        sys.exit(1)


if __name__ == "__main__":  # python -m curate.app.cli (benchmarks run the CLI of the checkout they sit in)
    entry()
