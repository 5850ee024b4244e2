"""`curate run RECIPE DATASET`: the whole workflow as one declarative, resumable pipeline.

A recipe (YAML) lists stages in a fixed order — audit → review → export → rebalance → backgrounds →
train-and-compare — each with the SAME option names as its command (``curate rebalance --keep-classes``
is ``keep-classes:`` or ``keep_classes:``; dashes and underscores are the same). A stage left out of the
recipe is not run and the dataset flows past it unchanged.

Why a manifest per stage: re-running a recipe must be cheap. Each stage writes
``reports/<run>/<stage>/manifest.json`` with the fingerprint of its input dataset
(:func:`curate.fiftyone.identity.fingerprint`: label bytes, image sizes/mtimes, class names), its parameters,
its outputs and timings; a stage whose input and parameters are unchanged and whose outputs exist is skipped.
``--from STAGE`` forces a stage and everything after it.

Why a review pause: fixing boxes is human work in the FiftyOne App. Unless the recipe says
``review: {skip: true}``, the run stops after the audit, printing the ``curate review`` command and the
``curate run ... --from export`` command that continues once the review is done.
"""

from __future__ import annotations

import difflib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from curate.app.manifest import (
    StagePlan,
    params_of,
    read_manifest,
    stage_dir,
    stage_params,
    why_run,
    write_manifest,
)
from curate.app.recipe import DATASET_STAGES, STAGES, PipelineError, Recipe, load_recipe
from curate.app.stages import RUNNERS
from curate.core.dataset import Dataset
from curate.fiftyone.identity import fingerprint
from curate.io.outputs import is_complete, write_text_atomic

SUMMARY = "summary.html"

#: What the command line and the tests call: the runner, plus the recipe and manifest names it builds on.
__all__ = ["PipelineError", "PipelineResult", "STAGES", "load_recipe", "plan_run", "run_name", "run_pipeline",
           "why_run", "write_summary"]  # fmt: skip


@dataclass
class PipelineResult:
    run_dir: Path
    plan: list[StagePlan]
    paused: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    summary: Path | None = None
    final: Path | None = None  # the last dataset folder


def run_name(recipe: Recipe, dataset: Dataset, name: str | None = None) -> str:
    """``<recipe>[-<profile>]-<dataset>-<key>``: a run under another profile (``--profile ci`` after a reviewed
    run) gets its own folder instead of silently replacing that run's stages."""
    profile = f"-{recipe.profile}" if recipe.profile else ""
    return name or f"{recipe.name}{profile}-{dataset.slug}"


def check_run_dir(run_dir: Path, dataset: Dataset) -> None:
    """Refuse a run folder inside the dataset (the default ``reports/`` when run from inside it) or holding it
    (stages clear their folders)."""
    from curate.io.yolo import WriteError, check_outside_inputs

    try:
        check_outside_inputs(run_dir, [dataset.root])
    except WriteError as exc:
        raise PipelineError(f"{exc} (run from another folder or pass --reports)") from None


def _from_index(from_stage: str | None, recipe: Recipe) -> int:
    if from_stage is None:
        return len(STAGES)
    s = from_stage.replace("_", "-")
    if s not in STAGES:
        hint = difflib.get_close_matches(s, STAGES, n=1)
        raise PipelineError(
            f"--from {from_stage}: unknown stage"
            + (f"; did you mean {hint[0]!r}?" if hint else f"; stages: {', '.join(STAGES)}")
        )
    if recipe.options(s) is None:
        raise PipelineError(f"--from {from_stage}: the recipe has no {s} stage (it has {', '.join(recipe.active())})")
    return STAGES.index(s)


def review_pending(recipe: Recipe, run_dir: Path, from_idx: int) -> bool:
    """True when the run must stop for a human review: not skipped, not ``--from export`` (or later), no export yet."""
    review = recipe.stages.review
    if review is None or review.skip or recipe.stages.export is None:
        return False
    if STAGES.index("review") < from_idx < len(STAGES):
        return False
    m = read_manifest(run_dir, "export")
    return not (m and m.get("status") == "ok" and m.get("params", {}).get("reviewed"))


def plan_run(
    recipe: Recipe,
    dataset: Dataset,
    *,
    reports: Path = Path("reports"),
    name: str | None = None,
    from_stage: str | None = None,
) -> list[StagePlan]:
    """What a run would do, without writing anything: per stage run/skip/pause/off and why.

    A stage after one that runs is planned to run (its input will be rewritten); the real run checks
    the actual fingerprint again, so a stage whose input came out identical is still skipped.
    """
    run_dir = Path(reports) / run_name(recipe, dataset, name)
    check_run_dir(run_dir, dataset)
    from_idx = _from_index(from_stage, recipe)
    pending = review_pending(recipe, run_dir, from_idx)
    plans: list[StagePlan] = []
    current: Dataset | None = dataset
    upstream_runs = False
    stopped = False
    for i, stage in enumerate(STAGES):
        if recipe.options(stage) is None:
            plans.append(StagePlan(stage, "off", "not in the recipe"))
            continue
        if stopped:
            plans.append(StagePlan(stage, "pause", "after the review: curate run ... --from export"))
            continue
        if stage == "review":
            if pending:
                plans.append(StagePlan(stage, "pause", "stops here for the review in the FiftyOne App"))
                stopped = True
            else:
                rv = recipe.stages.review
                plans.append(
                    StagePlan(stage, "skip", "review: skip" if rv.skip else "review done (export exists or --from)")
                )
            continue
        if i >= from_idx:
            plans.append(StagePlan(stage, "run", f"--from {STAGES[from_idx]}"))
            upstream_runs = upstream_runs or stage in DATASET_STAGES
            continue
        if upstream_runs and stage not in ("audit", "export"):
            plans.append(StagePlan(stage, "run", "an earlier stage rewrites its input"))
            continue
        fp = _input_fingerprint(stage, dataset, current)
        reason = why_run(read_manifest(run_dir, stage), fp, stage_params(recipe, stage))
        if reason:
            plans.append(StagePlan(stage, "run", reason))
            upstream_runs = upstream_runs or stage in DATASET_STAGES
            continue
        plans.append(StagePlan(stage, "skip", "input and parameters unchanged"))
        if stage in DATASET_STAGES:
            current = _load_output(run_dir, stage)
    return plans


def _input_fingerprint(stage: str, source: Dataset, current: Dataset | None) -> str | None:
    if current is None:
        return None
    if stage == "train-and-compare":
        return hashlib.sha256(f"{fingerprint(source)}\0{fingerprint(current)}".encode()).hexdigest()
    if stage in ("audit", "export"):
        return fingerprint(source)
    return fingerprint(current)


def _load_output(run_dir: Path, stage: str) -> Dataset | None:
    from curate.io.yolo import DatasetError, load_yolo

    folder = stage_dir(run_dir, stage) / "dataset"
    try:
        return load_yolo(folder) if is_complete(folder) else None
    except DatasetError:
        return None


def run_pipeline(
    recipe: Recipe,
    dataset: Dataset,
    *,
    reports: Path = Path("reports"),
    name: str | None = None,
    from_stage: str | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
    commands: dict[str, str] | None = None,
) -> PipelineResult:
    """Run (or skip) every stage of ``recipe`` on ``dataset``; write manifests and ``summary.html``.

    ``commands`` gives the exact ``review``/``continue`` command lines to print at the review pause.
    """
    from curate.io.yolo import DatasetError, load_yolo

    run_dir = Path(reports).resolve() / run_name(recipe, dataset, name)
    check_run_dir(run_dir, dataset)
    from_idx = _from_index(from_stage, recipe)
    pending = review_pending(recipe, run_dir, from_idx)
    result = PipelineResult(run_dir=run_dir, plan=[])
    current = dataset
    for i, stage in enumerate(STAGES):
        opts = recipe.options(stage)
        if opts is None:
            result.plan.append(StagePlan(stage, "off", "not in the recipe"))
            continue
        if stage == "review":
            if pending:
                result.plan.append(StagePlan(stage, "pause", "review in the FiftyOne App, then --from export"))
                write_manifest(
                    run_dir,
                    stage,
                    dataset,
                    params_of(recipe, stage),
                    {},
                    0.0,
                    status="paused",
                    extra={"commands": commands or {}},
                )
                result.paused = True
                for label, cmd in (commands or {}).items():
                    log(f"{label}: {cmd}")
                break
            result.plan.append(StagePlan(stage, "skip", "review: skip" if opts.skip else "review done"))
            continue
        params = stage_params(recipe, stage)
        fp = _input_fingerprint(stage, dataset, current)
        reason = f"--from {STAGES[from_idx]}" if i >= from_idx else why_run(read_manifest(run_dir, stage), fp, params)
        if reason is None:
            result.plan.append(StagePlan(stage, "skip", "input and parameters unchanged"))
            log(f"{stage}: skipped (input and parameters unchanged)")
            if stage in DATASET_STAGES:
                out = _load_output(run_dir, stage)
                if out is None:
                    raise PipelineError(
                        f"{stage_dir(run_dir, stage) / 'dataset'}: cannot read the stage's output; "
                        f"run with --from {stage}"
                    )
                current = out
            continue
        result.plan.append(StagePlan(stage, "run", reason))
        log(f"{stage}: running ({reason})")
        folder = stage_dir(run_dir, stage)
        write_manifest(
            run_dir,
            stage,
            current if stage not in ("audit", "export") else dataset,
            params,
            {},
            0.0,
            status="running",
            fingerprint=fp,
        )
        t0 = time.perf_counter()
        outputs = RUNNERS[stage](recipe, opts, dataset, current, folder, log=log, progress=progress)
        secs = time.perf_counter() - t0
        result.seconds[stage] = secs
        write_manifest(
            run_dir,
            stage,
            current if stage not in ("audit", "export") else dataset,
            params,
            outputs,
            secs,
            status="ok",
            fingerprint=fp,
            started=time.time() - secs,
        )
        log(f"{stage}: done in {secs:.1f} s")
        if stage in DATASET_STAGES:
            try:
                current = load_yolo(outputs["dataset"])
            except DatasetError as exc:
                raise PipelineError(f"{stage}: its output does not load ({exc})") from None
    if stage_dir(run_dir, "export").exists() or current is not dataset:
        result.final = current.root
    result.summary = write_summary(recipe, run_dir, dataset, result)
    return result


# ------------------------------------------------------------------------------------------------ summary


def write_summary(recipe: Recipe, run_dir: Path, dataset: Dataset, result: PipelineResult) -> Path:
    """``summary.html``: one self-contained page linking each stage's report and the attempt history."""
    from curate.report.run_summary import render
    from curate.train import history as hist

    stages = []
    for p in result.plan:
        m = (read_manifest(run_dir, p.stage) if p.action != "off" else None) or {}
        stages.append({"stage": p.stage, "action": p.action, "reason": p.reason,
                       "seconds": m.get("timings", {}).get("seconds"), "outputs": m.get("outputs") or {}})  # fmt: skip
    attempts = []
    hpath = hist.history_path(run_dir.parent)
    if hpath.is_file():  # the same history file holds every run's attempts: this run's only
        entries, _ = hist.read(hpath)
        attempts = [h for h in entries if Path(str(h.get("out", ""))).resolve().is_relative_to(run_dir.resolve())]
    page = render(run_dir=run_dir, recipe_name=recipe.name or "", description=recipe.description or "",
                  root=dataset.root, images=len(dataset.images), boxes=dataset.num_boxes, paused=result.paused,
                  stages=stages, attempts=attempts)  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(run_dir / SUMMARY, page)
