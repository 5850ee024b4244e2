"""The proposal benchmark's loose and shifted round, with each loose search recorded for offline replays.

    python benchmarks/loose_record.py --dataset ../shared/datasets/food-ingredients --seeds 1 --out /tmp/rec

Runs :func:`proposals.score_seed` (``--checks background_heavy shifted`` by default) and writes its
``proposals.json`` / ``proposals.md`` exactly as ``benchmarks/proposals.py`` does. While it runs,
:func:`curate.audit.refine._search` is wrapped: the loose search is searched with ``--calibration`` calibration
boxes (:data:`curate.audit.refine.LOOSE_CALIBRATION_BOXES`), but the proposals it returns are those of the first
:data:`curate.audit.refine.CALIBRATION_BOXES` only (the same draw as the audit's), so the numbers are the audit's
own; every searched box (the flagged ones and all calibration boxes) is pickled to ``--out/loose-<name>-seed<N>.pkl``
in ``benchmarks/loose_diagnose.py``'s record format (its candidates, the held-out judge's chance of each, which came
from the image, their box-model features, the box before corruption), with ``first``: whether a calibration box is
one of the audit's. ``benchmarks/loose_replay.py`` re-runs pick rules on these records without the box model.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_noise import load_dataset  # noqa: E402
from loose_diagnose import searched_entry  # noqa: E402
from proposals import _original, edits_table, geometry_table, members_table, score_seed, summarize  # noqa: E402

from curate.audit import refine  # noqa: E402
from planted_noise import plant_errors  # noqa: E402


def planted_loose(dataset, noisy, truth) -> dict[tuple[str, int], tuple]:
    """(image rel, line) of each planted loose box of train → its box before corruption (as proposals.py finds it)."""
    clean = {r.rel: r.labels for r in dataset.split("train")}
    noisy_labels = {r.rel: r.labels for r in noisy.split("train")}
    out = {}
    for rec in noisy.split("train"):
        for lab in rec.labels:
            if truth.truth(rec.rel, lab.line) == "loose":
                orig = _original(clean, noisy_labels, rec.rel, lab, same_class=True)
                if orig is not None:
                    out[(rec.rel, lab.line)] = tuple(orig.xyxy)
    return out


def recorded_seed(dataset, seed: int, rate: float, checks: tuple[str, ...], out: Path) -> dict:
    """:func:`proposals.score_seed`, the loose search recorded to ``out`` (module docstring)."""
    noisy, truth = plant_errors(dataset, rate=rate, seed=seed)  # as score_seed plants them
    original = planted_loose(dataset, noisy, truth)
    rels = [r.rel for r in noisy.images]
    search, judges_of = refine._search, refine._judges
    fitted: dict = {}
    record: dict = {}

    def judges(qs, X, fold_of_row, wrong, s):
        fitted[wrong] = judges_of(qs, X, fold_of_row, wrong, s)
        return fitted[wrong]

    def recorder(kind, qs, boxes, classes, X, fold_of_row, targets, candidates, from_image, s):
        if kind != "loose":
            return search(kind, qs, boxes, classes, X, fold_of_row, targets, candidates, from_image, s)
        pool = [k for k, q in enumerate(qs) if q.kind == "loose"]
        first = set(np.random.default_rng(s + 7).choice(pool, min(refine.CALIBRATION_BOXES, len(pool)),
                                                         replace=False).tolist())  # fmt: skip
        theirs = {k: c for k, c in candidates.items() if qs[k].kind != "loose" or k in first}
        result = search(kind, qs, boxes, classes, X, fold_of_row, targets, theirs, from_image, s)
        fold_judges = fitted[("loose", "shifted")]
        key_of = {k: key for key, k in targets.items()}
        searched = {}
        for k, mine in candidates.items():
            f = int(fold_of_row[k])
            if f not in fold_judges:
                continue
            q = qs[k]
            target = key_of.get(k)
            if q.kind == "loose":
                orig = boxes[q.image][q.exclude[0]]
            else:
                orig = original.get((rels[q.image], target[1])) if target else None
            key = (rels[q.image], target[1]) if target else None
            searched[k] = searched_entry(qs, X, fold_judges[f], k, mine, from_image, key, orig) | {"first": k in first}
        made = {key[:2]: (r.xyxy, r.p_right) for key, r in result.items() if r.p_right >= refine.MIN_P_RIGHT}
        record.update(searched=searched, rows=len(qs), result=made)
        return result

    refine._search, refine._judges = recorder, judges
    try:
        scored = score_seed(dataset, seed, rate, False, checks)
    finally:
        refine._search, refine._judges = search, judges_of
    if record:
        image_boxes = [np.array([lab.xyxy for lab in r.labels], float).reshape(-1, 4) for r in noisy.images]
        image_classes = [np.array([lab.class_id for lab in r.labels], int) for r in noisy.images]
        path = out / f"loose-{dataset.name}-seed{seed}.pkl"
        path.write_bytes(pickle.dumps({"name": dataset.name, "seed": seed, "boxes": image_boxes,
                                       "classes": image_classes, "nc": len(dataset.names), "rels": rels,
                                       "planted": original, **record}))  # fmt: skip
    return scored


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", nargs="+", required=True, type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--rate", type=float, default=0.03)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/loose-record"))
    ap.add_argument("--checks", nargs="+", default=["background_heavy", "shifted"])
    ap.add_argument("--calibration", type=int, default=400, help="loose calibration boxes searched and recorded")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    refine.LOOSE_CALIBRATION_BOXES = max(args.calibration, refine.CALIBRATION_BOXES)
    results, md = {}, ["# Proposal benchmark", ""]
    for source in args.dataset:
        ds = load_dataset(source)
        seeds = [recorded_seed(ds, s, args.rate, tuple(args.checks), args.out) for s in args.seeds]
        results[ds.name] = seeds
        md += summarize(ds.name, seeds)
        print("\n".join(summarize(ds.name, seeds)), flush=True)
    md += geometry_table(results) + members_table(results) + edits_table(results)
    print("\n".join(geometry_table(results) + edits_table(results)), flush=True)
    (args.out / "proposals.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / "proposals.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
