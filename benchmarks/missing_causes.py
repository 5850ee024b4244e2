"""Where each deleted box is lost in `missing`, one row per box and a count per cause (issue #22).

    CURATE_EMBED_WEIGHTS=... python benchmarks/missing_causes.py --dataset ../shared/datasets/construction-ppe \\
        --seeds 0 1 [--boxes]

Plants every type at 3 % like ``label_noise.py`` (same seeds, same noisy dataset), runs the `missing` check as the
audit does (near-duplicates and the embedding evidence included) and follows each deleted box through the stages:

- ``px``: the box's w × h in pixels at the decode side the check chose;
- ``no window``: no window of the sizes tried in its image reaches IoU ≥ 0.3 with it (the size or the stride);
- ``covered``: windows reach it, but the cover rule drops them all (they lie in or on a labelled box);
- ``shortlist``: an uncovered window reaches it, but none among the image's round-1 shortlist of TOPK;
- ``image cap``: a shortlisted window reaches it, but NMS and the per-image cap (model.image_cap) keep none;
- ``threshold``: a kept region reaches it with a raw objectness score under 0.5;
- ``budget``: its raw score is ≥ 0.5 but the budget (BUDGET_PER_100 per 100 boxes of the split) maps it under 0.5;
- ``found``: a region ≥ 0.5 at IoU ≥ 0.3 (label_noise's measure).

Per box also: the best IoU of any window at each stage, the rank of the best shortlisted match among its image's
shortlist (round-2 score), and the rank of its region among the split's objectness regions against the budget.

``--budgets 8 9 9.5``: the same run's regions re-scored offline under each budget (regions per 100 boxes of each
split reaching 0.5; the raw scores and the near-duplicate regions are the run's, only the midpoint moves, exactly
as the check computes it): label_noise's recall, train regions ≥ 0.5 per 100 train boxes, the most of any split,
and the precision (share of the listed train regions at IoU ≥ 0.3 with a deleted box). ``--json``: those rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from label_noise import MISSING_IOU, load_dataset, missing_recall, run_selected  # noqa: E402

import curate.audit.checks.missing as missing_check  # noqa: E402
from curate.audit.checks.base import AuditContext  # noqa: E402
from curate.audit.checks.missing import settings as S  # noqa: E402
from curate.audit.checks.missing.model import _boxes, decode_side, small_image  # noqa: E402
from curate.audit.checks.missing.windows import dataset_sizes, image_sizes, sliding_windows, uncovered  # noqa: E402
from curate.core.overlap import pairwise_iou  # noqa: E402
from planted_noise import plant_errors  # noqa: E402

CAUSES = ("no window", "covered", "shortlist", "image cap", "threshold", "budget", "found")


def _best(g: np.ndarray, wins: np.ndarray) -> tuple[float, int]:
    if not len(wins):
        return 0.0, -1
    iou = pairwise_iou(g, wins)[0]
    k = int(np.argmax(iou))
    return float(iou[k]), k


def region_shape(box: np.ndarray, region: np.ndarray) -> tuple[str, str]:
    """How a matching region's box (what `add` proposes, issue #23) sits on the deleted box: ``fits`` (IoU ≥ 0.5),
    else ``too big`` / ``too small`` (area over 2× / under ½ the box's) or ``off-centre``; with the ratios of w, h
    and the centre's offset in box sides."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    rw, rh = region[2] - region[0], region[3] - region[1]
    dx = ((region[0] + region[2]) - (box[0] + box[2])) / 2 / bw
    dy = ((region[1] + region[3]) - (box[1] + box[3])) / 2 / bh
    iou = float(pairwise_iou(box[None], region[None])[0, 0])
    area = rw * rh / (bw * bh)
    kind = "fits" if iou >= 0.5 else "too big" if area > 2 else "too small" if area < 0.5 else "off-centre"
    return kind, f"{kind} (IoU {iou:.2f}, w×{rw / bw:.2f} h×{rh / bh:.2f}, centre {dx:+.2f}, {dy:+.2f})"


def _xyxy(region: tuple[float, float, float, float]) -> np.ndarray:
    cx, cy, w, h = region
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def budget_rows(ctx: AuditContext, truth, findings: list, budgets: list[float]) -> list[dict]:
    """Per budget: the run's regions re-scored as :func:`missing_check.split_midpoints` would have scored them, then
    counted as label_noise.py counts them (:func:`label_noise.missing_recall`), with the listed regions' precision."""
    noisy = ctx.dataset
    idx = {r.rel: i for i, r in enumerate(noisy.images)}
    regions = [f for f in findings if f.region is not None and f.check == S.NAME]
    raw = [f.data["raw_score"] if f.data["evidence"] == "objectness" else f.score for f in regions]
    kept = [(idx[f.image], (r, None, 0, f.data["evidence"])) for f, r in zip(regions, raw)]
    deleted: dict[str, list[np.ndarray]] = {}
    for rel, lab in truth.missing:
        deleted.setdefault(rel, []).append(np.array(lab.xyxy, float))
    boxes = {s: max(noisy.instance_counts(s).total(), 1) for s in noisy.splits}
    out = []
    for per_100 in budgets:
        at_half = missing_check.split_midpoints(noisy, kept, per_100=per_100)
        rescored = [
            replace(f, score=missing_check.budget_score(r, at_half[f.split]) if source == "objectness" else r)
            for f, (_, (r, _, _, source)) in zip(regions, kept)
        ]
        listed = [f for f in rescored if f.score >= 0.5]
        per_split = Counter(f.split for f in listed)
        train = [(f.image, _xyxy(f.region)) for f in listed if f.split == "train"]
        true_regions = sum(
            any(float(pairwise_iou(g[None], r[None])[0, 0]) >= MISSING_IOU for g in deleted.get(rel, []))
            for rel, r in train
        )
        m = missing_recall(rescored, truth, ctx)
        out.append(
            {
                "budget": per_100,
                "recall": m["hits"] / max(m["n"], 1),
                "hits": m["hits"],
                "n": m["n"],
                "train_per_100": 100 * per_split["train"] / boxes.get("train", 1),
                "max_split_per_100": max(100 * per_split[s] / boxes[s] for s in noisy.splits),
                "listed": len(train),
                "precision": true_regions / max(len(train), 1),
            }
        )
    return out


def follow(src: Path, seed: int, show: bool, budgets: list[float] | None = None) -> tuple[Counter, list[dict]]:
    ds = load_dataset(src)
    noisy, truth = plant_errors(ds, seed=seed)
    shortlists: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    original = missing_check.objectness_pass

    def recording(*a, **k):
        out = original(*a, **k)
        shortlists.update(out[0])
        return out

    missing_check.objectness_pass = recording  # the check's own pass, its result kept for the rows below
    try:
        ctx = AuditContext(noisy, seed=seed)
        findings, _, errors = run_selected(ctx, {"missing"})
    finally:
        missing_check.objectness_pass = original
    if errors:
        raise SystemExit(f"missing failed: {errors}")
    idx = {r.rel: i for i, r in enumerate(noisy.images)}
    boxes = [_boxes(r)[0] for r in noisy.images]
    common = dataset_sizes(boxes, S.SIZE_CLUSTERS)
    side = decode_side(noisy.images, boxes)
    train = [f for f in findings if f.split == "train" and f.region is not None]
    obj = sorted((f for f in train if f.data.get("evidence") == "objectness"), key=lambda f: -f.data["raw_score"])
    limit = int(np.ceil(S.BUDGET_PER_100 * noisy.instance_counts("train").total() / 100))
    at_half = sum(f.score >= 0.5 for f in obj)
    by_image: dict[str, list] = {}
    for f in train:
        by_image.setdefault(f.image, []).append(f)
    causes: Counter = Counter()
    shapes: Counter = Counter()
    rows = []
    for rel, lab in truth.missing:
        i = idx[rel]
        g = np.array([lab.xyxy], float)
        img = small_image(noisy.images[i].path, side)
        h, w = img.shape[:2] if img is not None else (0, 0)
        px = ((g[0, 2] - g[0, 0]) * w, (g[0, 3] - g[0, 1]) * h)
        b = boxes[i]
        allw = sliding_windows(image_sizes(b, common), S.MIN_WINDOW_PX / max(w, 1), S.MIN_WINDOW_PX / max(h, 1))
        iou_all, _ = _best(g, allw)
        iou_unc, _ = _best(g, allw[uncovered(allw, b)])
        s2, wins = shortlists.get(i, (np.zeros(0), np.zeros((0, 4))))
        iou_short, k = _best(g, wins)
        rank_img = int((s2 > s2[k]).sum()) if k >= 0 and iou_short >= MISSING_IOU else -1
        regs = by_image.get(rel, [])
        rw = np.array(
            [
                [
                    f.region[0] - f.region[2] / 2,
                    f.region[1] - f.region[3] / 2,
                    f.region[0] + f.region[2] / 2,
                    f.region[1] + f.region[3] / 2,
                ]
                for f in regs
            ]
        ).reshape(-1, 4)
        iou_reg, kr = _best(g, rw)
        hit = regs[kr] if kr >= 0 and iou_reg >= MISSING_IOU else None
        raw = hit.data["raw_score"] if hit is not None else float("nan")
        rank_ds = next((r for r, f in enumerate(obj) if f is hit), -1) if hit is not None else -1
        if iou_all < MISSING_IOU:
            cause = "no window"
        elif iou_unc < MISSING_IOU:
            cause = "covered"
        elif iou_short < MISSING_IOU:
            cause = "shortlist"
        elif hit is None:
            cause = "image cap"
        elif hit.score >= 0.5:
            cause = "found"
        elif raw < 0.5:
            cause = "threshold"
        else:
            cause = "budget"
        causes[cause] += 1
        kind, shape = region_shape(g[0], rw[kr]) if hit is not None else ("", "—")
        if hit is not None:
            shapes[("found, " if cause == "found" else "under 0.5, ") + kind] += 1
        rows.append(
            f"| {rel} | {noisy.names[lab.class_id] if lab.class_id < len(noisy.names) else lab.class_id} | "
            f"{px[0]:.1f}×{px[1]:.1f} | {iou_all:.2f} | {iou_unc:.2f} | {iou_short:.2f} | "
            f"{rank_img if rank_img >= 0 else '—'} / {len(s2)} | {iou_reg:.2f} | {raw:.2f} | "
            f"{rank_ds if rank_ds >= 0 else '—'} / {limit} | {cause} | {shape} |"
        )
    print(
        f"\n{noisy.name} seed {seed}: decode side {side}, {len(truth.missing)} deleted, {len(obj)} objectness "
        f"regions in train ({at_half} ≥ 0.5, budget {limit})"
    )
    if show:
        print(
            "| image | class | px | any window | uncovered | shortlist | rank in image | region | raw | rank in "
            "split / budget | cause |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
    print(" ".join(f"{c}: {causes[c]}" for c in CAUSES), flush=True)
    print("matched regions (IoU ≥ 0.3), their box against the deleted one:", dict(sorted(shapes.items())), flush=True)
    budget = budget_rows(ctx, truth, findings, budgets or [])
    for row in budget:
        print(
            f"budget {row['budget']:g}: recall {row['recall']:.3f} ({row['hits']}/{row['n']}), train "
            f"{row['train_per_100']:.2f} per 100 (any split ≤ {row['max_split_per_100']:.2f}), precision "
            f"{row['precision']:.3f} of {row['listed']}",
            flush=True,
        )
    return causes, [{"dataset": noisy.name, "seed": seed, "side": side, **row} for row in budget]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", nargs="+", type=Path, required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--boxes", action="store_true", help="one row per deleted box")
    ap.add_argument("--budgets", nargs="+", type=float, default=[], help="regions per 100 boxes to re-score at")
    ap.add_argument("--json", type=Path, default=None, help="write the --budgets rows here")
    args = ap.parse_args()
    table = []
    rows: list[dict] = []
    for src in args.dataset:
        for seed in args.seeds:
            causes, budget = follow(src, seed, args.boxes, args.budgets)
            table.append((src.name, seed, causes))
            rows += budget
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    print("\n| dataset | seed | " + " | ".join(CAUSES) + " |")
    print("|---|---|" + "---|" * len(CAUSES))
    for name, seed, c in table:
        print(f"| {name} | {seed} | " + " | ".join(str(c[k]) for k in CAUSES) + " |")


if __name__ == "__main__":
    main()
