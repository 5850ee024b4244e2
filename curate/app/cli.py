"""The `curate` command line: thin bodies that parse, validate and call the library.

Each command's options come from its options model (:mod:`curate.app.cli_options`); what it prints lives in
:mod:`curate.app.console` and :mod:`curate.app.tables`. Errors are one line on stderr and a non-zero exit,
never a traceback (``CURATE_DEBUG=1`` shows it).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from curate import __version__
from curate.app.access import connect, database_errors, load, locked
from curate.app.cli_options import build, flag_error, option
from curate.app.console import err, fail, note, out, plain, spinner, warn
from curate.audit.options import AuditOptions
from curate.fiftyone.options import ReviewOptions
from curate.ops.options import BackgroundsOptions, ExportOptions, RebalanceOptions
from curate.train.options import TrainOptions

app = typer.Typer(
    name="curate",
    help="Find what is wrong with a YOLO object-detection dataset, fix it in the FiftyOne App, rebalance it, "
    "add backgrounds, and prove with a before/after training run that it helped.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DatasetArg = Annotated[Path, typer.Argument(help="A YOLO dataset folder or its data.yaml.", show_default=False)]


def options(model, flags: dict):
    """The command's options model from its flags (its ``locals()``: the parameters are named as the model's
    fields); a bad value is one line naming the flag, worded as a recipe's error for the same field."""
    from pydantic import ValidationError

    try:
        return build(model, flags)
    except ValidationError as exc:
        fail(flag_error(exc))


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
    from curate.app.tables import info_tables

    for table in info_tables(load(dataset), findings):
        out.print(table)


@app.command()
def audit(
    dataset: DatasetArg,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Output folder. Default: reports/<dataset>-<key>/audit/.")
    ] = None,
    config: Optional[Path] = option(AuditOptions, "config"),
    fast: bool = option(AuditOptions, "fast", "--fast"),
    all_scores: bool = option(AuditOptions, "all_scores", "--all-scores"),
    model: Optional[Path] = option(AuditOptions, "model"),
    checks: Optional[str] = option(AuditOptions, "checks"),
    fiftyone: bool = option(AuditOptions, "fiftyone", "--fiftyone/--no-fiftyone"),
    cache: bool = option(AuditOptions, "cache", "--cache/--no-cache"),
) -> None:
    """Flag ambiguous, grouped, background-heavy, shifted, duplicate, class-inconsistent and missing boxes,
    near-duplicate images and split leakage; write findings.csv/json, report.html and FiftyOne views."""
    from curate.app.audit_summary import print_audit_summary
    from curate.audit.config import ConfigError
    from curate.fiftyone.identity import IdentityError
    from curate.io.yolo import WriteError

    if model is not None and not model.is_file():
        fail(f"--model {model}: no such file")
    opts = options(AuditOptions, locals())
    try:
        params = opts.params()
    except ConfigError as exc:
        fail(str(exc))
    only = opts.only
    from curate.audit.boxmodel import BOX_CHECKS, spawn_child

    child = None
    if opts.fast and (only is None or only & set(BOX_CHECKS)):
        child = spawn_child()  # starts up while the dataset is read; run_audit uses or cancels it
    try:
        ds = load(dataset)
    except BaseException:
        if child is not None:
            child.cancel()
        raise
    with locked(ds, "audit"), database_errors(), spinner() as bar:
        task = bar.add_task("audit", total=None)
        try:
            result = opts.run(
                ds,
                params=params,
                out_dir=out_dir,
                on_check=lambda m: bar.update(task, description=f"audit: {m}"),
                box_model_child=child,
                note=note,
            )
        except (IdentityError, WriteError) as exc:
            fail(str(exc))
    print_audit_summary(result)


@app.command()
def review(
    dataset: DatasetArg,
    check: Optional[str] = option(ReviewOptions, "check"),
    port: int = option(ReviewOptions, "port"),
    remote: bool = option(ReviewOptions, "remote", "--remote"),
    discard_edits: bool = option(ReviewOptions, "discard_edits", "--discard-edits"),
) -> None:
    """Open the FiftyOne App on the audit's flagged samples to fix boxes by hand (runs the audit if needed)."""
    from curate.app.serve import serve
    from curate.fiftyone.review import ReviewError, launch, prepare_review, terminate_as_interrupt
    from curate.io.yolo import WriteError

    opts = options(ReviewOptions, locals())
    ds = load(dataset)
    try:
        with locked(ds, "review"), err.status("preparing review (runs the audit if it has not run)"):
            connect()
            fo_dataset, view_name = prepare_review(
                ds,
                check=opts.check,
                discard_edits=opts.discard_edits,
                note=note,
            )
    except (ReviewError, ValueError, WriteError) as exc:
        fail(str(exc))
    out.print(plain(f"FiftyOne dataset: {fo_dataset.name}"), highlight=False)
    if view_name is None:
        out.print("the audit flagged nothing: opening the whole dataset")
    with terminate_as_interrupt():
        session = launch(fo_dataset, view_name, port=opts.port, remote=opts.remote)
        serve(session, fo_dataset, view_name, ds.root, port=opts.port, remote=opts.remote)


@app.command()
def export(
    dataset: DatasetArg,
    out_dir: Annotated[Path, typer.Option("--out", help="A NEW folder for the reviewed dataset.", show_default=False)],
    from_fiftyone: Optional[str] = option(ExportOptions, "from_fiftyone"),
    accept_proposals: bool = option(ExportOptions, "accept_proposals", "--accept-proposals"),
    min_confidence: float = option(ExportOptions, "min_confidence"),
) -> None:
    """Write the reviewed dataset back to YOLO in a new folder, with changes.csv and CHANGES.md."""
    from curate.io.yolo import WriteError
    from curate.ops.export import export_reviewed

    opts = options(ExportOptions, locals())
    ds = load(dataset)
    try:
        with locked(ds, "export"):
            connect()
            result = export_reviewed(ds, out_dir, fiftyone_name=opts.from_fiftyone, min_confidence=opts.proposal_bar)
    except (WriteError, ValueError) as exc:
        fail(str(exc))
    for w in result.warnings:
        warn(w)
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n) or "no changes"
    proposed = sum(1 for c in result.changes if c.source == "proposed")
    counts += f" ({proposed} from proposals)" if proposed else ""
    out.print(
        plain(
            f"wrote {result.out}: {result.images} images; {counts}; "
            f"{sum(m['line'] is not None for m in result.ok_marks)} label(s) and "
            f"{sum(m['line'] is None for m in result.ok_marks)} image(s) marked ok "
            f"(review read from FiftyOne dataset {result.fiftyone_name})"
        ),
        highlight=False,
    )
    out.print(plain(f"changes: {result.out / 'changes.csv'}  summary: {result.out / 'CHANGES.md'}"))


@app.command()
def rebalance(
    dataset: DatasetArg,
    out_dir: Annotated[
        Path, typer.Option("--out", help="A new output folder (must not exist, or be empty).", show_default=False)
    ],
    split: str = option(RebalanceOptions, "split"),
    seed: int = option(RebalanceOptions, "seed"),
    keep_classes: Optional[str] = option(RebalanceOptions, "keep_classes"),
    drop_class: Optional[list[str]] = option(RebalanceOptions, "drop_class"),
    merge: Optional[list[str]] = option(RebalanceOptions, "merge"),
    min_instances: int = option(RebalanceOptions, "min_instances"),
    empty_images: str = option(RebalanceOptions, "empty_images"),
    cap: Optional[int] = option(RebalanceOptions, "cap"),
    oversample: Optional[str] = option(RebalanceOptions, "oversample"),
    group_by: Optional[str] = option(RebalanceOptions, "group_by"),
    near_duplicates: bool = option(RebalanceOptions, "near_duplicates", "--near-duplicates/--no-near-duplicates"),
) -> None:
    """Drop/merge/cap/oversample classes and re-split, stratified and leak-free."""
    from curate.app.tables import rebalance_table
    from curate.io.yolo import WriteError, check_output_dir
    from curate.ops import rebalance as rb

    opts = options(RebalanceOptions, locals())
    try:
        ds = load(dataset)
        check_output_dir(out_dir, [ds.root])
        result = rb.rebalance(ds, opts)
        written = rb.write_rebalanced(result, out_dir)
    except (rb.RebalanceError, WriteError) as exc:
        fail(str(exc))
    out.print(rebalance_table(result.summary))
    for n in result.summary["notes"]:
        note(n)
    out.print(plain(f"wrote {written}  (rebalance.json: counts before/after, groups, what was dropped/merged/copied)"))


@app.command()
def backgrounds(
    dataset: DatasetArg,
    out_dir: Annotated[
        Path, typer.Option("--out", help="A new output folder (must not exist, or be empty).", show_default=False)
    ],
    fraction: float = option(BackgroundsOptions, "fraction"),
    instances: int = option(BackgroundsOptions, "instances"),
    seed: int = option(BackgroundsOptions, "seed"),
) -> None:
    """Add background-only train images made from the dataset's own photos (objects removed, U²-Net-p checked)."""
    from curate.io.yolo import WriteError, check_output_dir
    from curate.ops import backgrounds as bg

    opts = options(BackgroundsOptions, locals())
    try:
        ds = load(dataset)
        check_output_dir(out_dir, [ds.root])
        result = bg.backgrounds(ds, opts)
        written = bg.write_backgrounds(result, out_dir)
    except (bg.BackgroundError, WriteError) as exc:
        fail(str(exc))
    for w in result.warnings:
        warn(w)
    out.print(
        plain(
            f"added {len(result.backgrounds)} background and {len(result.instances)} instance images to train "
            f"in {result.seconds:.0f} s; wrote {written}  (backgrounds.json, backgrounds_contact.png)"
        )
    )


@app.command("train-and-compare", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_and_compare(
    ctx: typer.Context,
    before: DatasetArg,
    after: DatasetArg,
    test: Optional[Path] = option(TrainOptions, "test"),
    test_split: str = option(TrainOptions, "test_split"),
    test_labels: Optional[Path] = option(TrainOptions, "test_labels"),
    model: str = option(TrainOptions, "model"),
    epochs: int = option(TrainOptions, "epochs"),
    imgsz: int = option(TrainOptions, "imgsz"),
    batch: int = option(TrainOptions, "batch"),
    seed: int = option(TrainOptions, "seed"),
    seeds: int = option(TrainOptions, "seeds"),
    device: Optional[str] = option(TrainOptions, "device"),
    workers: int = option(TrainOptions, "workers"),
    resamples: int = option(TrainOptions, "resamples"),
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
    opts = options(TrainOptions, locals())
    b, a = load(before), load(after)
    t = None
    if test is not None:
        t = cmp.resolve_test(test, opts.test_split, load)
    target = out_dir or Path("reports") / "compare" / f"{b.slug}-vs-{a.slug}"
    try:
        result = cmp.compare(
            b, a, target, settings=opts, test=t, log=lambda m: err.print(plain(m), highlight=False, soft_wrap=True)
        )
    except cmp.CompareError as exc:
        fail(str(exc))
    paths = cmp.write_outputs(result)
    data = result.to_json()
    hpath = hist.append(hist.history_path(), hist.entry(data, result.out))
    for w in data["warnings"]:
        warn(w)
    from curate.report.compare import headline

    out.print(headline(data).replace("**", ""), highlight=False)
    out.print(plain(f"wrote {paths['html']}, {paths['json'].name}, {paths['md'].name}; history: {hpath}"))


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
    name: Annotated[Optional[str], typer.Option(help="Run name. Default: <recipe name>-<dataset name>-<key>.")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="STAGE.KEY=VALUE override (repeatable), e.g. train-and-compare.epochs=1."),
    ] = None,
    reports: Annotated[Path, typer.Option(help="Where run folders go: <reports>/<run>/<stage>/.")] = Path("reports"),
) -> None:
    """Run a recipe of stages (audit → review → export → rebalance → backgrounds → train-and-compare), skipping
    stages whose input and parameters are unchanged; writes reports/<run>/<stage>/manifest.json and summary.html."""
    from curate.app.run import run_recipe

    run_recipe(
        pipeline,
        dataset,
        profile=profile,
        from_stage=from_stage,
        dry_run=dry_run,
        name=name,
        sets=set_,
        reports=reports,
    )


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
        warn(p)
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
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        err.print(
            f"[bold red]error:[/] {plain(f'{type(exc).__name__}: {first}')}  (set CURATE_DEBUG=1 for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # python -m curate.app.cli (benchmarks run the CLI of the checkout they sit in)
    entry()
