"""The whole comparison: both sides trained with identical settings, evaluated on one test set, the
paired bootstrap's verdict; compare.json/.md/.html written."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curate.core.dataset import Dataset
from curate.train.bootstrap import BootstrapResult, ImageStats, paired_bootstrap
from curate.train.compare.data import (
    choose_test_set,
    content_fingerprint,
    is_segmentation,
    seg_model_name,
    test_folder,
    training_folder,
    with_val,
)
from curate.train.compare.evaluation import evaluate, remap_stats
from curate.train.compare.ground_truth import audit_labels, corrected_labels, suspect_line
from curate.train.compare.settings import MANIFESTS, PLATEAU_EPOCHS, PLATEAU_TOL, CompareError, RunResult
from curate.train.compare.training import (
    auto_device,
    find_plateau,
    loss_summary,
    read_results,
    train_one,
    training_curve,
)
from curate.train.options import TrainOptions


@dataclass
class Comparison:
    """Everything compare.json holds (see :func:`to_json`)."""

    out: Path
    before: dict
    after: dict
    test: dict
    settings: dict
    bootstrap: BootstrapResult
    runs: list[RunResult]
    warnings: list[str]
    task: str
    #: scored on a reviewed copy's labels (``--test-labels``): its test info, per-side metrics and bootstrap
    corrected: dict | None = None

    def to_json(self) -> dict:
        b = self.bootstrap
        corrected = None
        if self.corrected is not None:
            c = self.corrected
            corrected = {
                **{k: v for k, v in c.items() if k != "bootstrap"},
                "bootstrap": _bootstrap_json(c["bootstrap"], c["test"]["common_classes"]),
                "verdict": c["bootstrap"].verdict,
            }
        return {
            "before": self.before,
            "after": self.after,
            "test": self.test,
            "settings": self.settings,
            "task": self.task,
            "delta": {
                k: self.after["metrics"]["box"][k] - self.before["metrics"]["box"][k]
                for k in ("mAP50", "mAP50-95", "precision", "recall", "F1")
            },
            "bootstrap": _bootstrap_json(b, self.test["common_classes"]),
            "verdict": b.verdict,
            "corrected": corrected,
            "runs": [{**asdict(r), "run_dir": str(r.run_dir), "best": str(r.best)} for r in self.runs],
            "warnings": self.warnings,
        }


def _bootstrap_json(b: BootstrapResult, classes: list[str]) -> dict:
    return {
        "resamples": b.resamples,
        "classes": classes,
        "before": b.before,
        "after": b.after,
        "delta": b.delta,
        "ci95": {k: list(v) for k, v in b.ci95.items()},
        "verdicts": b.verdicts,
        "per_class": {n: pc for n, pc in zip(classes, b.per_class) if pc},
    }


def _mean_metrics(all_metrics: list[dict]) -> dict:
    """Mean over seeds of every number (per-class too); plots from the first seed."""
    if len(all_metrics) == 1:
        return all_metrics[0]

    def merge(items: list[Any]) -> Any:
        if isinstance(items[0], dict):
            keys = set.intersection(*(set(i) for i in items)) if all(isinstance(i, dict) for i in items) else set()
            return {k: merge([i[k] for i in items]) for k in items[0] if k in keys}
        if isinstance(items[0], (int, float)):
            return float(np.mean(items))
        return items[0]

    merged = merge(all_metrics)
    merged["plots"] = all_metrics[0].get("plots", {})
    return merged


def manifests(root: Path) -> dict[str, Any]:
    """What changed, from manifests other curate commands write into their output folders."""
    found: dict[str, Any] = {}
    for name in MANIFESTS:
        p = root / name
        if not p.exists():
            continue
        if name == "changes.csv":
            with p.open(newline="", encoding="utf-8") as fh:
                kinds: dict[str, int] = {}
                for row in csv.DictReader(fh):
                    kinds[row.get("kind", "?")] = kinds.get(row.get("kind", "?"), 0) + 1
            found[name] = kinds
        elif name.endswith(".json"):
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found[name] = (
                {
                    k: v
                    for k, v in data.items()
                    if isinstance(v, (str, int, float, bool))
                    or (isinstance(v, (list, dict)) and len(json.dumps(v)) < 200)
                }
                if isinstance(data, dict)
                else {}
            )
        else:
            found[name] = p.read_text(encoding="utf-8").splitlines()[:1]
    return found


def describe(dataset: Dataset) -> dict:
    return {
        "name": dataset.name,
        "path": str(dataset.root),
        "fingerprint": content_fingerprint(dataset),
        "images": {s: len(dataset.split(s)) for s in dataset.splits},
        "boxes": dataset.num_boxes,
        "classes": len(dataset.names),
        "changes": manifests(dataset.root),
    }


def compare(
    before: Dataset,
    after: Dataset,
    out: Path,
    *,
    settings: TrainOptions,
    test: tuple[Dataset, str] | None = None,
    log: Callable[[str], None] = print,
) -> Comparison:
    """Train both sides with identical settings, evaluate on one test set, bootstrap the difference."""
    from curate.io.outputs import remove_leftovers, unmark
    from curate.io.yolo import WriteError, check_outside_inputs
    from curate.runtime import env

    env.configure()
    out = Path(out).resolve()
    try:
        check_outside_inputs(out, [before.root, after.root] + ([test[0].root] if test else []))
    except WriteError as exc:
        raise CompareError(f"{exc} (run from another folder or pass --out)") from None
    out.mkdir(parents=True, exist_ok=True)
    unmark(out)  # rewritten from here on: not a finished result until write_outputs marks it again
    remove_leftovers(out)
    chosen = choose_test_set(before, after, test, log)
    before, test_ds, test_split, test_recs = chosen.before, chosen.dataset, chosen.split, chosen.images
    warnings: list[str] = list(chosen.notes)
    segment = is_segmentation(before) or is_segmentation(after)
    model = seg_model_name(settings.model) if segment else settings.model
    task = "segment" if segment else "detect"

    folders = {}
    for side, ds in (("before", before), ("after", after)):
        ds, note = with_val(ds, seed=settings.seed)
        if note:
            warnings.append(note)
        if not ds.split("train"):
            raise CompareError(f"{side.upper()} ({ds.root}) has no train split")
        folders[side] = (ds, training_folder(ds, out / "data" / side))

    test_info: dict[str, Any] = {
        "path": str(test_ds.root),
        "split": test_split,
        "images": len(test_recs),
        "boxes": sum(len(r.labels) for r in test_recs),
        "default": test is None,
        "leaked": chosen.leaked,
        "leaked_any": chosen.leaked_any,
        "held_out_of_before": chosen.held_out,
        "left_out": chosen.left_out,
    }
    test_yamls = {}
    for side in ("before", "after"):
        names = folders[side][0].names
        y, dropped = test_folder(test_recs, test_ds.names, names, out / "data" / f"test-{side}", root=test_ds.root)
        test_yamls[side] = y
        test_info[f"dropped_for_{side}"] = dropped
        if dropped:
            warnings.append(
                f"{sum(dropped.values())} test box(es) of {len(dropped)} class(es) {side.upper()}'s model "
                f"does not know are left out of its evaluation: {', '.join(sorted(dropped))}"
            )
    common = _common_classes(test_recs, test_ds.names, folders["before"][0].names, folders["after"][0].names)
    if not common:
        raise CompareError("BEFORE, AFTER and the test set share no class name: nothing to compare on")
    test_info["common_classes"] = common
    test_info["audit"] = audit_labels(test_ds, test_recs, out / "test-audit")
    log(f"test labels: {suspect_line(test_info['audit'])}")
    corrected = _corrected_test(settings, test_recs, test_ds, folders, out, log) if settings.test_labels else None

    runs: list[RunResult] = []
    metrics: dict[str, list[dict]] = {"before": [], "after": []}
    stats: dict[str, list[list[ImageStats]]] = {"before": [], "after": []}
    seeds = [settings.seed + k for k in range(max(1, settings.seeds))]
    for seed in seeds:
        for side in ("before", "after"):
            ds, data_yaml = folders[side]
            run = train_one(
                data_yaml, out / "runs" / f"{side}-seed{seed}", settings, side=side, seed=seed, model=model, log=log
            )
            rows = read_results(run.run_dir / "results.csv")
            plateau = find_plateau(rows, epochs=PLATEAU_EPOCHS, tol=PLATEAU_TOL)
            if plateau:
                run.notes.append(
                    f"loss plateau from epoch {plateau['epoch']} ({plateau['epochs']} epochs within "
                    f"{PLATEAU_TOL:.0%}) at learning rate {plateau['lr']:.2e}"
                )
            runs.append(run)
            m, per_image = evaluate(
                run.best, test_yamls[side], out / "eval" / f"{side}-seed{seed}", settings, segment=segment
            )
            m["losses"] = loss_summary(rows)
            m["curve"] = training_curve(rows, plateau)
            m["train_plots"] = {p.name: str(p) for p in sorted(run.run_dir.glob("results.png"))}
            metrics[side].append(m)
            stats[side].append(remap_stats(per_image, ds.names, common))
            if corrected is not None:
                mc, per_image = evaluate(
                    run.best, corrected["yamls"][side], out / "eval" / f"{side}-seed{seed}-corrected", settings,
                    segment=segment,
                )  # fmt: skip
                corrected["metrics"][side].append(mc)
                corrected["stats"][side].append(remap_stats(per_image, ds.names, corrected["test"]["common_classes"]))
            for n in run.notes:
                log(f"{side} seed {seed}: {n}")
    boot = paired_bootstrap(
        list(zip(stats["before"], stats["after"])),
        np.arange(len(common)),
        resamples=settings.resamples,
        seed=settings.seed,
    )
    sides = {
        s: {
            **describe(folders[s][0]),
            "metrics": _mean_metrics(metrics[s]),
            "seeds": metrics[s] if len(seeds) > 1 else None,
        }
        for s in ("before", "after")
    }
    sset = recorded_settings(settings, model=model, seeds=seeds)
    on_reviewed = None
    if corrected is not None:
        on_reviewed = {
            "test": corrected["test"],
            **{s: {"metrics": _mean_metrics(corrected["metrics"][s])} for s in ("before", "after")},
            "bootstrap": paired_bootstrap(
                list(zip(corrected["stats"]["before"], corrected["stats"]["after"])),
                np.arange(len(corrected["test"]["common_classes"])),
                resamples=settings.resamples,
                seed=settings.seed,
            ),
        }
    return Comparison(
        out, sides["before"], sides["after"], test_info, sset, boot, runs, warnings, task, corrected=on_reviewed
    )


def _common_classes(recs: list, test_names: list[str], before: list[str], after: list[str]) -> list[str]:
    """The classes both models know that the test labels hold: what the paired bootstrap compares."""
    present = {test_names[l.class_id] if 0 <= l.class_id < len(test_names) else "" for r in recs for l in r.labels}
    return [n for n in before if n in set(after) and n in present]


def _corrected_test(
    settings: TrainOptions, test_recs: list, test_ds: Dataset, folders: dict, out: Path, log: Callable[[str], None]
) -> dict:
    """``--test-labels``: the test images with the reviewed copy's labels, one evaluation folder per side (made
    before any training, so a copy that does not match stops the run at once)."""
    from curate.io.yolo import DatasetError, load_yolo

    path = Path(settings.test_labels or "")
    try:
        reviewed = load_yolo(path)
    except DatasetError as exc:
        raise CompareError(f"--test-labels {path}: {exc}") from None
    fixed = corrected_labels(test_recs, test_ds.names, reviewed)
    info: dict[str, Any] = {
        "path": str(reviewed.root),
        "images": len(fixed.images),
        "boxes": sum(len(r.labels) for r in fixed.images),
        "removed": fixed.removed,
        "added": fixed.added,
    }
    yamls = {}
    for side in ("before", "after"):
        names = folders[side][0].names
        yamls[side], dropped = test_folder(
            fixed.images, reviewed.names, names, out / "data" / f"test-{side}-corrected", root=test_ds.root
        )
        info[f"dropped_for_{side}"] = dropped
    info["common_classes"] = _common_classes(
        fixed.images, reviewed.names, folders["before"][0].names, folders["after"][0].names
    )
    if not info["common_classes"]:
        raise CompareError(f"--test-labels {path}: BEFORE, AFTER and its labels share no class name")
    log(
        f"reviewed test labels: {reviewed.root} — {fixed.removed} of the test labels removed or changed, "
        f"{fixed.added} added or changed into; both models are scored on these too"
    )
    return {"test": info, "yamls": yamls, "metrics": {"before": [], "after": []}, "stats": {"before": [], "after": []}}


def recorded_settings(settings: TrainOptions, *, model: str, seeds: list[int]) -> dict[str, Any]:
    """compare.json's ``settings``: what both sides trained with (the model and device as actually used)."""
    return {
        "model": model,
        "epochs": settings.epochs,
        "imgsz": settings.imgsz,
        "batch": settings.batch,
        "seed": settings.seed,
        "seeds": settings.seeds,
        "device": auto_device(settings.device),
        "workers": settings.workers,
        "resamples": settings.resamples,
        "plateau_epochs": PLATEAU_EPOCHS,
        "plateau_tol": PLATEAU_TOL,
        "extra": dict(settings.extra),
        "seeds_used": seeds,
    }


def write_outputs(c: Comparison) -> dict[str, Path]:
    """compare.json, compare.md, compare.html in ``c.out``, each whole; then ``c.out`` is marked complete."""
    from curate.io.outputs import mark_complete, write_text_atomic
    from curate.report.compare import render_html, render_md

    data = c.to_json()
    paths = {"json": c.out / "compare.json", "md": c.out / "compare.md", "html": c.out / "compare.html"}
    write_text_atomic(paths["json"], json.dumps(data, indent=2, default=_json_default) + "\n")
    write_text_atomic(paths["md"], render_md(data))
    write_text_atomic(paths["html"], render_html(data))
    mark_complete(c.out, "train-and-compare")
    return paths


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def parse_extras(items: list[str]) -> dict[str, Any]:
    """``["lr0=0.005", "mosaic=0"]`` → typed values for Ultralytics (YAML scalars)."""
    import yaml as pyyaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CompareError(f"extra argument {item!r} is not key=value (e.g. lr0=0.005)")
        k, v = item.split("=", 1)
        out[k.strip()] = pyyaml.safe_load(v)
    return out
