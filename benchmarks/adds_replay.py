"""The box an ``add`` proposes for a ``missing`` region, compared and replayed offline from ``proposals.py --dump``.

    python benchmarks/adds_replay.py --base reports/bench/main --new reports/bench/branch \\
        --datasets potholes-road epicureai --seeds 0 1 2 [--rules]

Reads ``adds-<name>-seed<N>.pkl`` from both folders (``proposals.py --dump``: the listed train regions of
``missing``, their data, the planted deletions, the refinement's candidate windows and scores). Checks that the
regions (image, box, score, in order) are identical, then scores each region's add as ``proposals.py`` does (its
box's best IoU with a deleted box of the image: found at ≥ 0.3, right box at ≥ 0.5): the base run's proposed
box (``add_box`` where present, else the region) against the new run's region (main's add, from the new run
alone: ``--base`` may be ``--new``) and its proposed box, and "paired": over the regions whose own
box found a deleted box, the new proposed box's IoU with that one. ``--rules``: also the new run's recorded
candidates replayed under other picks (the best window, plateau means at several widths, the inner candidate set).
Per dataset pooled over the seeds, then the mean and the worst.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.core.overlap import iou_one  # noqa: E402

FOUND_IOU, ADD_IOU = 0.3, 0.5  # as benchmarks/proposals.py counts an add


def _xyxy(b) -> tuple[float, ...]:
    cx, cy, w, h = b
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def proposed(data: dict, region) -> tuple[float, ...]:
    """The box the add proposes (curate.audit.proposals.added_box), as xyxy."""
    box = data.get("add_box")
    return _xyxy(box if box is not None else region)


def adds(dump: dict) -> list[tuple[str, tuple, dict]]:
    """The regions that become adds: a class guess of the dataset (as ``_propose_one`` requires)."""
    return [(img, region, data) for img, region, _, data in dump["regions"]
            if isinstance(data.get("class_id"), int) and data["class_id"] >= 0]  # fmt: skip


def judged(boxes: list[tuple[str, tuple]], deleted: list) -> list[float]:
    """Each box's best IoU with a deleted box of its image, over the boxes that found one (≥ FOUND_IOU)."""
    by_img: dict[str, list[tuple]] = {}
    for rel, xyxy, _ in deleted:
        by_img.setdefault(rel, []).append(xyxy)
    out = []
    for img, xyxy in boxes:
        best = max((iou_one(d, xyxy) for d in by_img.get(img, [])), default=0.0)
        if best >= FOUND_IOU:
            out.append(best)
    return out


def paired(rows: list[tuple[str, tuple, tuple]], deleted: list) -> list[float]:
    """Over the regions that found a deleted box (the region's own box at IoU ≥ FOUND_IOU with it), the IoU of the
    proposed box with that same deleted box: the like-for-like measure (the denominator the regions', not the
    proposed boxes')."""
    by_img: dict[str, list[tuple]] = {}
    for rel, xyxy, _ in deleted:
        by_img.setdefault(rel, []).append(xyxy)
    out = []
    for img, region, box in rows:
        found = max(by_img.get(img, []), key=lambda d: iou_one(d, region), default=None)
        if found is not None and iou_one(found, region) >= FOUND_IOU:
            out.append(iou_one(found, box))
    return out


def rule_boxes(tried: list, rule: str) -> dict[tuple[str, tuple], tuple]:
    """Each recorded region's box under ``rule``: 'best', 'plateau:<width>' (the mean of the windows within that of
    the best's log-odds), 'inner-plateau:<width>' (the same among shifts up to a quarter window), 'margin:<m>' (the
    best only where its score beats the region's by ``m``)."""
    out = {}
    for img, region, wins, p in tried:
        if p is None:
            continue
        wins, p = np.asarray(wins), np.asarray(p)
        if rule.startswith("inner"):
            x1, y1, x2, y2 = region
            w, h = x2 - x1, y2 - y1
            keep = np.ones(len(wins), bool)
            keep[1:] = (np.abs((wins[1:, 0] + wins[1:, 2]) / 2 - (x1 + x2) / 2) <= 0.26 * w) & (
                np.abs((wins[1:, 1] + wins[1:, 3]) / 2 - (y1 + y2) / 2) <= 0.26 * h
            )
            wins, p = wins[keep], p[keep]
        z = np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))
        if rule == "best":
            box = wins[int(np.argmax(z))]
        elif rule.startswith("margin"):  # the best only where it beats the region (first) by this much
            k = int(np.argmax(p))
            box = wins[k] if p[k] - p[0] >= float(rule.split(":")[1]) else wins[0]
        else:
            width = float(rule.split(":")[1])
            box = wins[z >= z.max() - width].mean(axis=0)
        out[(img, _key(region))] = tuple(float(v) for v in box)
    return out


def _key(xyxy) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in xyxy)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--new", type=Path, required=True)
    ap.add_argument("--datasets", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--rules", action="store_true")
    ap.add_argument("--per-seed", action="store_true", help="also each seed's base and new adds")
    args = ap.parse_args(argv)
    rules = ["best", "plateau:0.1", "plateau:0.25", "plateau:0.5", "plateau:1", "plateau:2",
             "inner-plateau:0.25", "inner-plateau:0.5", "inner-plateau:1", "margin:0.05", "margin:0.1",
             "margin:0.2"] if args.rules else []  # fmt: skip
    cols = ["base", "region", "new", "paired", *rules]
    share: dict[str, list[float]] = {c: [] for c in cols}
    print("| dataset | regions same | " + " | ".join(f"{c}: found, at ≥ 0.5 (median)" for c in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for name in args.datasets:
        ious: dict[str, list[float]] = {c: [] for c in cols}
        same = True
        for seed in args.seeds:
            base = pickle.loads((args.base / name / f"adds-{name}-seed{seed}.pkl").read_bytes())
            new = pickle.loads((args.new / name / f"adds-{name}-seed{seed}.pkl").read_bytes())
            same &= [r[:3] for r in base["regions"]] == [r[:3] for r in new["regions"]]
            ious["base"] += judged([(i, proposed(d, r)) for i, r, d in adds(base)], base["deleted"])
            ious["new"] += judged([(i, proposed(d, r)) for i, r, d in adds(new)], new["deleted"])
            ious["region"] += judged([(i, _xyxy(r)) for i, r, _ in adds(new)], new["deleted"])
            ious["paired"] += paired([(i, _xyxy(r), proposed(d, r)) for i, r, d in adds(new)], new["deleted"])
            if args.per_seed:
                for c, v in (
                    ("base", judged([(i, proposed(d, r)) for i, r, d in adds(base)], base["deleted"])),
                    ("new", judged([(i, proposed(d, r)) for i, r, d in adds(new)], new["deleted"])),
                ):
                    print(f"  {name} seed {seed} {c}: {len(v)} found, {sum(x >= ADD_IOU for x in v)} at ≥ 0.5, "
                          f"median {statistics.median(v) if v else float('nan'):.2f}")  # fmt: skip
            for rule in rules:
                boxes = rule_boxes(new["tried"], rule)
                mine = [(i, boxes.get((i, _key(_xyxy(r))), proposed(d, r))) for i, r, d in adds(new)]
                ious[rule] += judged(mine, new["deleted"])
        cells = []
        for c in cols:
            v = ious[c]
            if v:
                share[c].append(sum(x >= ADD_IOU for x in v) / len(v))
                cells.append(f"{len(v)}, {share[c][-1]:.0%} ({statistics.median(v):.2f})")
            else:
                cells.append("0")
        print(f"| {name} | {'yes' if same else '**no**'} | " + " | ".join(cells) + " |")
    for label, f in (("mean", statistics.mean), ("worst", min)):
        print(f"| **{label}** | | " + " | ".join(f"{f(share[c]):.0%}" if share[c] else "—" for c in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
