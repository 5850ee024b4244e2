"""Dataset-level notes: class balance per split, background share, box-count outliers."""

from __future__ import annotations

from collections import Counter

import numpy as np

from curate import defaults
from curate.checks.base import AuditContext
from curate.dataset import Dataset
from curate.findings import Finding

NAME = "dataset"


def dataset_summary(dataset: Dataset) -> dict:
    """Per-split images, boxes, backgrounds and per-class counts, plus the max/min instance ratio."""
    splits = {}
    for s in dataset.splits:
        recs = dataset.split(s)
        counts = Counter(dataset.class_name(lb.class_id) for r in recs for lb in r.labels)
        splits[s] = {"images": len(recs), "boxes": sum(len(r.labels) for r in recs),
                     "backgrounds": sum(r.is_background for r in recs), "classes": dict(sorted(counts.items()))}
    total = Counter(dataset.class_name(lb.class_id) for _, lb in dataset.boxes())
    present = [total.get(n, 0) for n in dataset.names]
    nonzero = [c for c in present if c > 0]
    ratio = (max(nonzero) / min(nonzero)) if nonzero else 0.0
    return {"splits": splits, "classes": {n: total.get(n, 0) for n in dataset.names}, "imbalance_ratio": ratio,
            "images": len(dataset.images), "boxes": dataset.num_boxes}


def run(ctx: AuditContext) -> list[Finding]:
    ds = ctx.dataset
    summ = dataset_summary(ds)
    out: list[Finding] = []
    ratio = summ["imbalance_ratio"]
    out.append(Finding("", "", NAME, float(min(1.0, max(0.0, np.log10(max(ratio, 1.0)) / 2))),
                       f"class imbalance: most/least frequent class = {ratio:.1f}×", data={"kind": "imbalance"}))
    min_n = int(ctx.param(NAME, "min_instances", defaults.MIN_INSTANCES_PER_SPLIT))
    for s, info in summ["splits"].items():
        for name in ds.names:
            n = info["classes"].get(name, 0)
            if n == 0 and s in ("val", "test") and summ["classes"][name] > 0:
                out.append(Finding(s, "", NAME, 0.9, f"class {name!r} is absent from {s}", data={"kind": "absent"}))
            elif n < min_n and summ["classes"][name] > 0:
                out.append(Finding(s, "", NAME, 0.6, f"class {name!r} has {n} instances in {s} (< {min_n})",
                                   data={"kind": "rare"}))
        share = info["backgrounds"] / max(info["images"], 1)
        lo, hi = defaults.BACKGROUND_SHARE_ADVICE
        over = max(0.0, share - hi)
        out.append(Finding(s, "", NAME, float(min(1.0, 0.5 + over * 2)) if over > 0 else 0.0,
                           f"{s}: {share:.0%} background images (advice {lo:.0%}–{hi:.0%})",
                           data={"kind": "background_share", "share": share}))
    counts = np.array([len(r.labels) for r in ds.images], dtype=float)
    if len(counts) >= 5:
        med = np.median(counts)
        mad = np.median(np.abs(counts - med)) * 1.4826 or 1.0
        for r, c in zip(ds.images, counts):
            z = (c - med) / mad
            out.append(Finding(r.split, r.rel, NAME, float(min(1.0, max(0.0, (z - 2) / 6 + 0.5 if z > 2 else 0.0))),
                               f"{r.rel}: {int(c)} boxes (median {med:.0f}, robust z {z:.1f})",
                               data={"kind": "box_count", "z": float(z)}))
    return out
