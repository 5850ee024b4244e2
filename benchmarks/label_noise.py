"""Label-noise benchmark: plant known errors into a dataset's train split, run the audit, score it.

    python benchmarks/label_noise.py --dataset ../shared/datasets/food-ingredients --seeds 0 1 2 \\
        --rate 0.03 --out reports/bench

For each seed, :func:`planted_noise.plant_errors` makes an in-memory noisy copy (images are shared by path,
labels are new). The audit checks run on the noisy dataset (all splits; only train is scored) and every
train box is ranked by its best score:

- per type, average precision (sklearn) of ranking by the check mapped to the type (grouped→grouped,
  loose→background_heavy, shifted→shifted, swapped→class_inconsistent, duplicate→duplicate,
  ambiguous→ambiguous) and by the max over ALL checks. Positives: the planted boxes of that type.
  Negatives: untouched boxes. Excluded: boxes planted as other types, and the source box of a
  duplicate/ambiguous copy (the pair is the error: flagging either half is right, so the source is
  neither positive nor negative);
- recall at a budget equal to the number planted (share of positives among the top-k, k = #positives);
- missing: share of deleted boxes matched (IoU ≥ 0.3) by a region finding (``finding.region`` on the same
  image) whose score ≥ that check's threshold (``ctx.threshold(check)``, 0.5 by default);
- false flags per 100 untouched boxes at score ≥ 0.5, any check (and per check);
- "any check" is the merged worst-first list a user reviews (``audit/all``): each box's best score over
  every check except the notes (``curate.core.findings.NOTE_CHECKS``: a box cut by the border is a fact, not an
  error);
- a naive baseline — per-class z-score of log box area (|z|/3, capped at 1) averaged with the box's max
  IoU with any other box of the image — scored the same way.

Checks that don't exist yet (or fail) are skipped and shown as "—". Writes ``label_noise.json`` and
``label_noise.md`` to ``--out``; ``benchmarks/pool_table.py`` turns the JSON of several datasets into one
table with the mean and the worst dataset. ``--known``: each type's check and, with every known real error
of any kind set aside, the merged list and the baseline are scored again (a real error ranked above the
planted ones is no false flag). ``--dump``: each seed's train boxes, their findings and the baseline are
pickled to ``--out`` (``<name>-seed<N>.pkl``), to read which boxes outrank the planted ones without a re-run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.audit.checks import by_name, registered  # noqa: E402
from curate.audit.checks.base import AuditContext  # noqa: E402
from curate.core.dataset import Dataset, ImageRecord, Label  # noqa: E402
from curate.core.findings import NOTE_CHECKS, Finding  # noqa: E402
from curate.core.overlap import iou_one, pairwise_iou, xyxy_array  # noqa: E402
from planted_noise import NOISE_TYPES, PlantedTruth, plant_errors  # noqa: E402

#: The check that should catch each planted type.
TYPE_TO_CHECK: dict[str, str] = {
    "grouped": "grouped",
    "loose": "background_heavy",
    "shifted": "shifted",
    "swapped": "class_inconsistent",
    "duplicate": "duplicate",
    "ambiguous": "ambiguous",
    "missing": "missing",
}
BOX_TYPES = tuple(t for t in NOISE_TYPES if t != "missing")
DEFAULT_CHECKS = ("duplicate", "ambiguous", "grouped", "background_heavy", "shifted", "class_inconsistent", "missing")
FLAG_SCORE = 0.5  # a box at or above this score (any check) counts as flagged
MISSING_IOU = 0.3  # a region finding matches a deleted box at this IoU
OPERATING_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)  # thresholds the operating-point table reports


# --- loading -----------------------------------------------------------------------------------------


def _fallback_load(source: Path) -> Dataset:
    """Minimal Roboflow-layout reader (train/valid/test with images/ and labels/), used only until
    ``curate.io.yolo.load_yolo`` exists."""
    import yaml

    root = source if source.is_dir() else source.parent
    meta = yaml.safe_load((root / "data.yaml").read_text())
    names = meta["names"] if isinstance(meta["names"], list) else [meta["names"][k] for k in sorted(meta["names"])]
    images: list[ImageRecord] = []
    for folder, split in (("train", "train"), ("valid", "val"), ("val", "val"), ("test", "test")):
        img_dir = root / folder / "images"
        if not img_dir.is_dir():
            continue
        for img in sorted(img_dir.iterdir()):
            if img.suffix.lower() not in {".jpg", ".jpeg", ".png", ".bmp", ".webp"}:
                continue
            lab_path = root / folder / "labels" / f"{img.stem}.txt"
            labels = []
            if lab_path.exists():
                for n, line in enumerate(lab_path.read_text().splitlines(), start=1):
                    parts = line.split()
                    if len(parts) == 5:
                        labels.append(Label(int(parts[0]), *map(float, parts[1:]), line=n))
            images.append(
                ImageRecord(
                    split, img, img.relative_to(root).as_posix(), lab_path if lab_path.exists() else None, labels
                )
            )
    return Dataset(root=root, name=root.name, names=list(names), images=images, yaml_path=root / "data.yaml")


def load_dataset(source: Path) -> Dataset:
    try:
        from curate.io.yolo import load_yolo
    except ImportError:
        return _fallback_load(source)
    return load_yolo(source)


def limit_images(dataset: Dataset, limit: int | None) -> Dataset:
    """At most ``limit`` images per split (the first ones in the dataset's order), for quick runs."""
    if not limit:
        return dataset
    kept: list[ImageRecord] = []
    seen: dict[str, int] = {}
    for rec in dataset.images:
        if seen.get(rec.split, 0) < limit:
            kept.append(rec)
            seen[rec.split] = seen.get(rec.split, 0) + 1
    return replace(dataset, images=kept)


# --- running checks ----------------------------------------------------------------------------------


def run_selected(ctx: AuditContext, checks: set[str]) -> tuple[list[Finding], dict[str, float], dict[str, str]]:
    """Run each check that emits one of ``checks``; findings, seconds per check module, errors."""
    findings: list[Finding] = []
    timing: dict[str, float] = {}
    errors: dict[str, str] = {}
    for check in registered():
        name = check.module
        if not set(check.names) & checks or check.skipped(ctx) is not None:
            continue
        t0 = time.perf_counter()
        try:
            findings.extend(check.run(ctx))
        except Exception as exc:  # a broken check must not sink the whole benchmark
            errors[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        timing[name] = time.perf_counter() - t0
    return findings, timing, errors


# --- scoring -----------------------------------------------------------------------------------------


def baseline_scores(dataset: Dataset) -> dict[tuple[str, int], float]:
    """Naive geometry: per-class |z| of log box area (÷3, capped at 1), averaged with max IoU overlap."""
    train = dataset.split("train")
    by_class: dict[int, list[float]] = {}
    for rec in train:
        for lab in rec.labels:
            by_class.setdefault(lab.class_id, []).append(np.log(max(lab.area, 1e-9)))
    stats = {c: (float(np.mean(v)), float(np.std(v)) or 1.0) for c, v in by_class.items()}
    out: dict[tuple[str, int], float] = {}
    for rec in train:
        boxes = xyxy_array(rec.labels)
        iou = pairwise_iou(boxes, boxes)
        np.fill_diagonal(iou, 0.0)
        max_iou = iou.max(axis=1) if len(boxes) > 1 else np.zeros(len(boxes))
        for k, lab in enumerate(rec.labels):
            mu, sd = stats[lab.class_id]
            z = min(abs(np.log(max(lab.area, 1e-9)) - mu) / sd / 3.0, 1.0)
            out[(rec.rel, lab.line)] = 0.5 * z + 0.5 * float(max_iou[k])
    return out


def box_scores(findings: list[Finding], split: str = "train") -> dict[str, dict[tuple[str, int], float]]:
    """check → (image, line) → best score, for box findings of ``split``."""
    out: dict[str, dict[tuple[str, int], float]] = {}
    for f in findings:
        if f.split != split or f.line is None:
            continue
        m = out.setdefault(f.check, {})
        key = (f.image, f.line)
        m[key] = max(m.get(key, 0.0), f.score)
    return out


def rank_metrics(
    keys: list[tuple[str, int]],
    truth: PlantedTruth,
    kind: str,
    score: dict,
    exclude: set[tuple[str, int]] = frozenset(),
) -> dict[str, float]:
    """AP and recall@#positives of ranking the boxes ``keys`` by ``score`` for planted type ``kind``, and the
    share of planted boxes flagged by default (score ≥ FLAG_SCORE: what a user sees in findings.csv).

    ``exclude``: untouched boxes that are neither positive nor negative (``--known``: the dataset's own
    errors of this type, found by eye before planting)."""
    from sklearn.metrics import average_precision_score

    y, s = [], []
    for key in keys:
        t = truth.truth(*key)
        if t == kind:
            y.append(1)
        elif t is None and key not in exclude:
            y.append(0)
        else:
            continue  # other planted types and copy sources: excluded
        s.append(score.get(key, 0.0))
    y_arr, s_arr = np.array(y), np.array(s)
    npos = int(y_arr.sum())
    if npos == 0 or npos == len(y_arr):
        return {
            "ap": float("nan"),
            "recall_at_budget": float("nan"),
            "flagged": float("nan"),
            "n": npos,
            "chance": float("nan"),
        }
    # stable tie-break by a fixed random order so ties (e.g. many 0.0) don't favour either class
    order = np.lexsort((np.random.default_rng(0).random(len(s_arr)), -s_arr))
    recall = float(y_arr[order[:npos]].sum() / npos)
    return {
        "ap": float(average_precision_score(y_arr, s_arr)),
        "recall_at_budget": recall,
        "flagged": float((s_arr[y_arr == 1] >= FLAG_SCORE).mean()),
        "n": npos,
        "chance": float(npos / len(y_arr)),
    }


def missing_recall(findings: list[Finding], truth: PlantedTruth, ctx: AuditContext) -> dict[str, Any]:
    """Share of deleted boxes matched (IoU ≥ 0.3) by a region finding ≥ its check's threshold."""
    regions: dict[str, list[tuple[float, float, float, float]]] = {}
    for f in findings:
        if f.split == "train" and f.region is not None and f.score >= ctx.threshold(f.check):
            cx, cy, w, h = f.region
            regions.setdefault(f.image, []).append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    hits = sum(any(iou_one(lab.xyxy, r) >= MISSING_IOU for r in regions.get(rel, [])) for rel, lab in truth.missing)
    n = len(truth.missing)
    n_boxes = max(sum(len(rec.labels) for rec in ctx.dataset.split("train")), 1)
    n_regions = sum(map(len, regions.values()))
    return {
        "recall": hits / n if n else float("nan"),
        "hits": hits,
        "n": n,
        "regions": n_regions,
        "regions_per_100": 100.0 * n_regions / n_boxes,
    }


def load_known(path: Path | None) -> dict[str, set[tuple[str, int]]]:
    """``--known`` CSV (image, line, class, real_type, note): boxes of the UNMODIFIED dataset checked by eye.

    Returns real_type → {(image, line)} for the rows whose ``real_type`` is set (an empty one means "looked
    at, looks right": kept in the file to show what was checked, and not excluded)."""
    import csv

    if path is None:
        return {}
    out: dict[str, set[tuple[str, int]]] = {}
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            kind = (row.get("real_type") or "").strip()
            if kind:
                out.setdefault(kind, set()).add((row["image"], int(row["line"])))
    return out


def known_keys(
    dataset: Dataset, noisy: Dataset, known: dict[str, set[tuple[str, int]]]
) -> dict[str, set[tuple[str, int]]]:
    """The noisy dataset's (image, line) of each known error: an untouched box keeps its class and coordinates
    but may change line (a planted group or deletion renumbers the file), so it is matched on those."""
    if not known:
        return {}
    where: dict[tuple, tuple[str, int]] = {}
    for rec in noisy.split("train"):
        for lab in rec.labels:
            where[(rec.rel, lab.class_id, lab.cx, lab.cy, lab.w, lab.h)] = (rec.rel, lab.line)
    out: dict[str, set[tuple[str, int]]] = {}
    for rec in dataset.split("train"):
        for lab in rec.labels:
            for kind, rows in known.items():
                if (rec.rel, lab.line) in rows:
                    hit = where.get((rec.rel, lab.class_id, lab.cx, lab.cy, lab.w, lab.h))
                    if hit is not None:
                        out.setdefault(kind, set()).add(hit)
    return out


def merged_scores(per_check: dict[str, dict[tuple[str, int], float]]) -> dict[tuple[str, int], float]:
    """Each box's best score over every check but the notes: the merged worst-first list that ``audit/all`` and
    findings.csv show."""
    out: dict[tuple[str, int], float] = {}
    for check, scores in per_check.items():
        if check in NOTE_CHECKS:
            continue
        for key, value in scores.items():
            out[key] = max(out.get(key, 0.0), value)
    return out


def score_seed(
    noisy: Dataset,
    truth: PlantedTruth,
    findings: list[Finding],
    ctx: AuditContext,
    checks_ran: set[str],
    known: dict[str, set[tuple[str, int]]] | None = None,
) -> dict[str, Any]:
    keys = [(rec.rel, lab.line) for rec in noisy.split("train") for lab in rec.labels]
    per_check = box_scores(findings)
    any_check = merged_scores(per_check)
    base = baseline_scores(noisy)
    result: dict[str, Any] = {"types": {}, "counts": truth.counts}
    for kind in BOX_TYPES:
        if truth.counts.get(kind, 0) == 0:
            continue
        check = TYPE_TO_CHECK[kind]
        row = {
            "check": rank_metrics(keys, truth, kind, per_check.get(check, {})) if check in checks_ran else None,
            "any": rank_metrics(keys, truth, kind, any_check) if checks_ran else None,
            "baseline": rank_metrics(keys, truth, kind, base),
        }
        if known and known.get(kind) and check in checks_ran:
            row["known"] = rank_metrics(keys, truth, kind, per_check.get(check, {}), exclude=known[kind])
            row["known"]["excluded"] = len(known[kind])
        if known and checks_ran:  # the merged list and the baseline with every real error of any kind set aside
            real = set().union(*known.values())
            row["any_known"] = rank_metrics(keys, truth, kind, any_check, exclude=real)
            row["baseline_known"] = rank_metrics(keys, truth, kind, base, exclude=real)
        result["types"][kind] = row
    if truth.counts.get("missing", 0):
        result["missing"] = (
            missing_recall(findings, truth, ctx)
            if "missing" in checks_ran
            else {"recall": None, "n": len(truth.missing)}
        )
    untouched = [k for k in keys if truth.truth(*k) is None]
    n_clean = max(len(untouched), 1)
    result["false_flags_per_100"] = 100.0 * sum(any_check.get(k, 0.0) >= FLAG_SCORE for k in untouched) / n_clean
    result["false_flags_per_100_by_check"] = {
        c: 100.0 * sum(m.get(k, 0.0) >= FLAG_SCORE for k in untouched) / n_clean for c, m in per_check.items()
    }
    result["baseline_false_flags_per_100"] = 100.0 * sum(base.get(k, 0.0) >= FLAG_SCORE for k in untouched) / n_clean
    result["n_untouched"] = len(untouched)
    result["operating_points"] = operating_points(keys, truth, per_check, untouched)
    return result


def operating_points(
    keys: list[tuple[str, int]], truth: PlantedTruth, per_check: dict[str, dict], untouched: list[tuple[str, int]]
) -> dict[str, dict[str, dict[str, float]]]:
    """check → threshold → share of its type's planted boxes at or above it, and untouched boxes per 100 at
    or above it: what another default threshold would show a user, and what it would cost in false flags."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in BOX_TYPES:
        check = TYPE_TO_CHECK[kind]
        scores = per_check.get(check)
        planted = [k for k in keys if truth.truth(*k) == kind]
        if scores is None or not planted:
            continue
        pos = np.array([scores.get(k, 0.0) for k in planted])
        neg = np.array([scores.get(k, 0.0) for k in untouched])
        out[check] = {
            f"{t:.1f}": {"flagged": float((pos >= t).mean()), "false_per_100": float(100.0 * (neg >= t).mean())}
            for t in OPERATING_THRESHOLDS
        }
    return out


# --- aggregation and output --------------------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float] | None:
    vals = [v for v in values if v is not None and not np.isnan(v)]
    if not vals:
        return None
    return float(np.mean(vals)), float(np.std(vals))


def _fmt(ms: tuple[float, float] | None, digits: int = 2) -> str:
    if ms is None:
        return "—"
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def summarize(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds for every number in the per-seed results."""
    rows: dict[str, Any] = {}
    for kind in BOX_TYPES:
        per = [s["types"].get(kind) for s in seeds if kind in s["types"]]
        if not per:
            continue
        row: dict[str, Any] = {"check": TYPE_TO_CHECK[kind], "planted": _mean_std([p["baseline"]["n"] for p in per])}
        for src in ("check", "any", "baseline"):
            for metric in ("ap", "recall_at_budget", "flagged", "chance"):
                row[f"{src}_{metric}"] = _mean_std([p[src].get(metric) if p[src] else None for p in per])
        if any("known" in p for p in per):
            row["known_ap"] = _mean_std([p["known"]["ap"] for p in per if "known" in p])
            row["known_excluded"] = _mean_std([p["known"]["excluded"] for p in per if "known" in p])
        rows[kind] = row
    miss = [s.get("missing") for s in seeds if "missing" in s]
    out: dict[str, Any] = {"types": rows}
    if miss:
        out["missing_recall"] = _mean_std([m["recall"] for m in miss])
        out["missing_planted"] = _mean_std([m["n"] for m in miss])
    out["false_flags_per_100"] = _mean_std([s["false_flags_per_100"] for s in seeds])
    out["baseline_false_flags_per_100"] = _mean_std([s["baseline_false_flags_per_100"] for s in seeds])
    checks = sorted({c for s in seeds for c in s["false_flags_per_100_by_check"]})
    out["false_flags_per_100_by_check"] = {
        c: _mean_std([s["false_flags_per_100_by_check"].get(c, 0.0) for s in seeds]) for c in checks
    }
    ops: dict[str, dict[str, dict[str, tuple[float, float] | None]]] = {}
    for s in seeds:
        for c, by_t in s.get("operating_points", {}).items():
            for t in by_t:
                ops.setdefault(c, {})[t] = {}
    for c, by_t in ops.items():
        for t in by_t:
            for metric in ("flagged", "false_per_100"):
                by_t[t][metric] = _mean_std(
                    [s["operating_points"][c][t][metric] for s in seeds if c in s.get("operating_points", {})]
                )
    out["operating_points"] = ops
    return out


def markdown_table(
    name: str, summary: dict[str, Any], timing: dict[str, tuple[float, float] | None], n_seeds: int, rate: float
) -> str:
    lines = [
        f"### {name} ({n_seeds} seeds, rate {rate:.0%} of train boxes per type; mean ± std)",
        "",
        f"| type | check | planted | AP (its check) | recall@budget | flagged (≥ {FLAG_SCORE}) | "
        "AP (any check) | AP baseline | chance |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, row in summary["types"].items():
        lines.append(
            f"| {kind} | {row['check']} | {_fmt(row['planted'], 0)} | {_fmt(row['check_ap'])} | "
            f"{_fmt(row['check_recall_at_budget'])} | {_fmt(row['check_flagged'])} | {_fmt(row['any_ap'])} | "
            f"{_fmt(row['baseline_ap'])} | "
            f"{_fmt(row['baseline_chance'], 3)} |"
        )
    if "missing_recall" in summary:
        lines.append(
            f"| missing | missing (region recall, IoU ≥ {MISSING_IOU}) | {_fmt(summary['missing_planted'], 0)} | "
            f"{_fmt(summary['missing_recall'])} | | | | | |"
        )
    for kind, row in summary["types"].items():
        if "known_ap" in row:
            lines += [
                "",
                f"{kind}, with the dataset's own {kind} boxes found by eye (`--known`, "
                f"{_fmt(row['known_excluded'], 0)} untouched boxes) left out of the negatives: "
                f"AP {_fmt(row['known_ap'])}",
            ]
    lines += [
        "",
        f"False flags per 100 untouched train boxes at score ≥ {FLAG_SCORE}: any check "
        f"{_fmt(summary['false_flags_per_100'])}; baseline {_fmt(summary['baseline_false_flags_per_100'])}; "
        + ", ".join(f"{c} {_fmt(v)}" for c, v in summary["false_flags_per_100_by_check"].items()),
        "",
        "Seconds per check module (per seed): " + (", ".join(f"{c} {_fmt(v, 1)}" for c, v in timing.items()) or "—"),
        "",
    ]
    ops = summary.get("operating_points") or {}
    if ops:
        ts = list(next(iter(ops.values())))
        lines += [
            "Operating points (planted boxes of the check's type flagged / false flags per 100 untouched boxes, "
            "at each threshold):",
            "",
            "| check | " + " | ".join(f"≥ {t}" for t in ts) + " |",
            "|---|" + "---|" * len(ts),
        ]
        for c, by_t in ops.items():
            cells = [
                f"{by_t[t]['flagged'][0]:.2f} / {by_t[t]['false_per_100'][0]:.2f}" if by_t[t].get("flagged") else "—"
                for t in ts
            ]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def print_rich(name: str, summary: dict[str, Any], timing: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"label noise — {name}")
    for col in (
        "type",
        "check",
        "planted",
        "AP (check)",
        "R@budget",
        f"flagged ≥{FLAG_SCORE}",
        "AP (any)",
        "AP baseline",
        "chance",
    ):
        table.add_column(col)
    for kind, row in summary["types"].items():
        table.add_row(
            kind,
            row["check"],
            _fmt(row["planted"], 0),
            _fmt(row["check_ap"]),
            _fmt(row["check_recall_at_budget"]),
            _fmt(row["check_flagged"]),
            _fmt(row["any_ap"]),
            _fmt(row["baseline_ap"]),
            _fmt(row["baseline_chance"], 3),
        )
    if "missing_recall" in summary:
        table.add_row(
            "missing",
            "missing (region recall)",
            _fmt(summary["missing_planted"], 0),
            _fmt(summary["missing_recall"]),
            "",
            "",
            "",
            "",
            "",
        )
    for kind, row in summary["types"].items():
        if "known_ap" in row:
            table.add_row(
                f"{kind} (--known)",
                row["check"],
                f"−{_fmt(row['known_excluded'], 0)} negatives",
                _fmt(row["known_ap"]),
                "",
                "",
                "",
                "",
                "",
            )
    console = Console(width=max(Console().width, 130))
    console.print(table)
    console.print(
        f"false flags / 100 untouched (score ≥ {FLAG_SCORE}): any {_fmt(summary['false_flags_per_100'])}"
        f"  baseline {_fmt(summary['baseline_false_flags_per_100'])}  "
        + "  ".join(f"{c} {_fmt(v)}" for c, v in summary["false_flags_per_100_by_check"].items())
    )
    console.print("seconds per check: " + ("  ".join(f"{c} {_fmt(v, 1)}" for c, v in timing.items()) or "—"))


def dump_seed(path: Path, noisy: Dataset, truth: PlantedTruth, findings: list[Finding]) -> None:
    """Pickle one seed's train boxes (class, xyxy, planted type), their box findings and the baseline, so a
    diagnosis (which check, which boxes outrank the planted ones) or a re-ranking is read offline, not re-run."""
    import pickle

    boxes = {
        (rec.rel, lab.line): (lab.class_id, tuple(lab.xyxy), truth.truth(rec.rel, lab.line))
        for rec in noisy.split("train")
        for lab in rec.labels
    }
    rows = [f.to_row() for f in findings if f.split == "train" and f.line is not None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"boxes": boxes, "findings": rows, "baseline": baseline_scores(noisy)}))


def run_dataset(
    source: Path,
    *,
    seeds: list[int],
    rate: float,
    types: tuple[str, ...],
    checks: set[str],
    limit: int | None,
    params: dict[str, dict[str, Any]],
    fast: bool,
    model: str | None = None,
    known: dict[str, set[tuple[str, int]]] | None = None,
    dump: Path | None = None,
) -> dict[str, Any]:
    dataset = limit_images(load_dataset(source), limit)
    per_seed: list[dict[str, Any]] = []
    timings: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    ran: set[str] = set()
    for seed in seeds:
        noisy, truth = plant_errors(dataset, rate=rate, types=types, seed=seed)
        ctx = AuditContext(noisy, params=params, fast=fast, model=model, seed=seed)
        findings, timing, errs = run_selected(ctx, checks)
        errors.update(errs)
        for mod_name, secs in timing.items():
            timings.setdefault(mod_name, []).append(secs)
            if mod_name not in errs:
                ran |= {n for n, c in by_name().items() if c.module == mod_name} & checks
        result = score_seed(noisy, truth, findings, ctx, ran, known_keys(dataset, noisy, known or {}))
        result["seed"] = seed
        if dump is not None:
            dump_seed(dump / f"{dataset.name}-seed{seed}.pkl", noisy, truth, findings)
        per_seed.append(result)
    summary = summarize(per_seed)
    timing_ms = {k: _mean_std(v) for k, v in timings.items()}
    return {
        "dataset": str(source),
        "name": dataset.name,
        "images": len(dataset.images),
        "train_boxes": sum(len(r.labels) for r in dataset.split("train")),
        "checks_ran": sorted(ran),
        "checks_missing": sorted(checks - ran),
        "errors": errors,
        "seconds_per_check": timing_ms,
        "summary": summary,
        "per_seed": per_seed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", type=Path, required=True, help="dataset folder(s) or data.yaml")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rate", type=float, default=0.03, help="share of train boxes planted per type")
    parser.add_argument("--types", nargs="+", default=list(NOISE_TYPES), choices=NOISE_TYPES)
    parser.add_argument("--checks", nargs="+", default=list(DEFAULT_CHECKS), help="check names to run")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument("--limit-images", type=int, default=None, help="at most N images per split")
    parser.add_argument("--fast", action="store_true", help="run checks in --fast mode (no pixels)")
    parser.add_argument("--model", type=str, default=None, help="YOLO weights for the objectlab check")
    parser.add_argument(
        "--known",
        nargs="+",
        type=Path,
        default=None,
        help="per dataset, in the same order ('-' for none): CSV of its own errors found by eye "
        "(image,line,class,real_type,note); also reports AP with them left out of the negatives",
    )
    parser.add_argument("--dump", action="store_true", help="also pickle each seed's boxes and findings to --out")
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

    results = []
    md = ["## Label noise", ""]
    knowns = args.known or []
    for i, source in enumerate(args.dataset):
        known_file = knowns[i] if i < len(knowns) else None
        res = run_dataset(
            source,
            seeds=args.seeds,
            rate=args.rate,
            types=tuple(args.types),
            checks=set(args.checks),
            limit=args.limit_images,
            params={},
            fast=args.fast,
            model=args.model,
            known=load_known(known_file) if known_file and known_file.name != "-" else None,
            dump=args.out if args.dump else None,
        )
        results.append(res)
        print_rich(res["name"], res["summary"], res["seconds_per_check"])
        if res["checks_missing"]:
            print(f"not run (absent or failed): {', '.join(res['checks_missing'])}")
        md.append(markdown_table(res["name"], res["summary"], res["seconds_per_check"], len(args.seeds), args.rate))
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"rate": args.rate, "seeds": args.seeds, "types": args.types, "checks": args.checks, "results": results}
    (args.out / "label_noise.json").write_text(json.dumps(payload, indent=1, default=str))
    (args.out / "label_noise.md").write_text("\n".join(md))
    print(f"wrote {args.out / 'label_noise.json'} and {args.out / 'label_noise.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
