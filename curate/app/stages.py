"""The stage adapters: each runs one command's library call for the pipeline and returns its outputs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from curate.app.manifest import MANIFEST, export_params, fresh_folder
from curate.app.recipe import ExportStage, PipelineError, Recipe
from curate.audit.options import AuditOptions
from curate.core.dataset import Dataset
from curate.io.outputs import atomic_output
from curate.ops.options import BackgroundsOptions, RebalanceOptions
from curate.train.options import TrainOptions


def _run_audit(
    recipe: Recipe, o: AuditOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.audit.config import ConfigError

    try:
        params = o.params()
    except ConfigError as exc:
        raise PipelineError(f"stages.audit.config: {exc}") from None
    if o.model and not Path(o.model).is_file():
        raise PipelineError(f"stages.audit.model: {o.model}: no such file")
    for f in folder.glob("*"):
        if f.name != MANIFEST:
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    res = o.run(
        source, params=params, out_dir=folder, on_check=(lambda m: progress(f"audit: {m}")) if progress else None
    )
    counts = ", ".join(f"{n} {c}" for c, n in sorted(res.counts().items())) or "nothing flagged"
    log(f"audit: {len(res.findings)} findings ({counts})")
    outs: dict[str, Path] = {"findings": folder / "findings.csv"}
    if res.report:
        outs["report"] = res.report
    return outs


def _run_export(
    recipe: Recipe, o: ExportStage, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import WriteError, save_yolo

    out = fresh_folder(folder / "dataset")
    try:
        if export_params(recipe)["reviewed"]:
            from curate.ops.export import export_reviewed

            res = export_reviewed(source, out)
            for w in res.warnings:
                log(f"export: warning: {w}")
            log(f"export: {', '.join(f'{n} {k}' for k, n in res.counts().items() if n) or 'no changes'}")
            return {"dataset": out, "report": out / "CHANGES.md", "changes": out / "changes.csv"}
        with atomic_output(out, "export") as tmp:
            save_yolo(source, tmp)
    except (WriteError, ValueError) as exc:
        raise PipelineError(f"export: {exc}") from None
    log("export: review skipped; unreviewed copy (labels byte-identical)")
    return {"dataset": out}


def _run_rebalance(
    recipe: Recipe, o: RebalanceOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import WriteError
    from curate.ops import rebalance as rb

    try:
        result = rb.rebalance(current, o)
        out = rb.write_rebalanced(result, fresh_folder(folder / "dataset"))
    except (rb.RebalanceError, WriteError) as exc:
        raise PipelineError(f"rebalance: {exc}") from None
    for note in result.summary.get("notes", []):
        log(f"rebalance: note: {note}")
    return {"dataset": out, "report": out / "rebalance.json"}


def _run_backgrounds(
    recipe: Recipe, o: BackgroundsOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import WriteError
    from curate.ops import backgrounds as bg

    try:
        result = bg.backgrounds(current, o)
        out = bg.write_backgrounds(result, fresh_folder(folder / "dataset"))
    except (bg.BackgroundError, WriteError) as exc:
        raise PipelineError(f"backgrounds: {exc}") from None
    for w in result.warnings:
        log(f"backgrounds: warning: {w}")
    log(f"backgrounds: added {len(result.backgrounds)} background and {len(result.instances)} instance images")
    outs = {"dataset": out, "report": out / "backgrounds.json"}
    if (out / "backgrounds_contact.png").exists():
        outs["contact"] = out / "backgrounds_contact.png"
    return outs


def _run_compare(
    recipe: Recipe, o: TrainOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import DatasetError, load_yolo
    from curate.train import compare as cmp
    from curate.train import history as hist

    def loader(p: Path) -> Dataset:
        try:
            return load_yolo(p)
        except DatasetError as exc:
            raise PipelineError(f"stages.train-and-compare.test: {exc}") from None

    test = cmp.resolve_test(Path(o.test), o.test_split, loader) if o.test else None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        res = cmp.compare(source, current, folder, settings=o, test=test, log=log)
    except cmp.CompareError as exc:
        raise PipelineError(f"train-and-compare: {exc}") from None
    paths = cmp.write_outputs(res)
    data = res.to_json()
    hpath = hist.append(hist.history_path(folder.parent.parent), hist.entry(data, res.out))  # <reports>/history.jsonl
    from curate.report.compare import headline

    log("train-and-compare: " + headline(data).replace("**", ""))
    return {"report": paths["html"], "json": paths["json"], "history": hpath}


RUNNERS: dict[str, Callable[..., dict]] = {
    "audit": _run_audit,
    "export": _run_export,
    "rebalance": _run_rebalance,
    "backgrounds": _run_backgrounds,
    "train-and-compare": _run_compare,
}
