"""Dataset-level notes: class balance, rare and absent classes, background share, size and box-count outliers.

These are findings with an empty ``line``: whole-dataset notes have an empty ``image``; outliers name
the image. They answer the questions behind a bad mAP before any box is looked at: is a class too rare
to learn, absent from val/test (so its AP is never measured), are there background images, is one
image unlike the others?
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from curate import defaults
from curate.checks.base import AuditContext
from curate.findings import Finding

NAME = "dataset"
#: Robust z-score (median / MAD) beyond which an image's size or box count is an outlier.
OUTLIER_Z = 5.0


def _robust_z(values: np.ndarray) -> np.ndarray:
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    if mad < 1e-9:
        return np.where(np.abs(values - med) > 1e-9, np.inf, 0.0)
    return (values - med) / mad


def _z_score(z: float) -> float:
    """|z| = OUTLIER_Z → 0.5, growing to 1.0 at twice that."""
    return float(min(1.0, max(0.0, abs(z) / (2 * OUTLIER_Z)))) if math.isfinite(z) else 0.75


def balance_findings(ctx: AuditContext) -> list[Finding]:
    ds = ctx.dataset
    out: list[Finding] = []
    minimum = int(ctx.param(NAME, "min_instances", defaults.MIN_INSTANCES_PER_SPLIT))
    counts = {s: Counter(lb.class_id for r in ds.split(s) for lb in r.labels) for s in ds.splits}
    train = counts.get("train", Counter())
    present = {c: n for c, n in train.items() if n > 0}
    if len(present) >= 2:
        hi = max(present, key=present.get)
        lo = min(present, key=present.get)
        ratio = present[hi] / present[lo]
        score = min(1.0, math.log10(ratio) / 2) if ratio > 1 else 0.0
        out.append(Finding("train", "", NAME, score, f"class imbalance {ratio:.0f}:1 in train ('{ds.class_name(hi)}' {present[hi]}, '{ds.class_name(lo)}' {present[lo]})", data={"kind": "imbalance", "ratio": ratio}))
    for cid, name in enumerate(ds.names):
        total = sum(c[cid] for c in counts.values())
        if total == 0:
            out.append(Finding("", "", NAME, 0.3, f"class '{name}' has no instances at all", data={"kind": "unused_class", "class": name}))
            continue
        for split, c in counts.items():
            n = c[cid]
            if n == 0 and split != "train":
                out.append(Finding(split, "", NAME, 0.7, f"class '{name}' is absent from {split}: its AP is never measured there", data={"kind": "absent", "class": name}))
            elif n == 0:
                out.append(Finding(split, "", NAME, 0.9, f"class '{name}' has no train instances: the model can't learn it", data={"kind": "absent", "class": name}))
            elif n < minimum:
                score = 0.6 if split == "train" else 0.35  # rare in val/test: a note (all-scores), not a finding
                out.append(Finding(split, "", NAME, score, f"class '{name}' has only {n} instance(s) in {split} (< {minimum})", data={"kind": "rare", "class": name, "count": n}))
    return out


def background_findings(ctx: AuditContext) -> list[Finding]:
    out: list[Finding] = []
    lo, hi = defaults.BACKGROUND_SHARE_ADVICE
    for split in ctx.dataset.splits:
        recs = ctx.dataset.split(split)
        share = sum(r.is_background for r in recs) / max(1, len(recs))
        if share > hi:
            score = min(1.0, 0.5 + (share - hi) * 2)
            msg = f"{share:.0%} of {split} images are background (no boxes): above the 0–{hi:.0%} Ultralytics advises"
        elif share <= lo and split == "train":
            score = 0.5
            msg = f"no background images in train: Ultralytics advises 0–{hi:.0%} to cut false positives (`curate backgrounds` makes them)"
        else:
            score = 0.0
            msg = f"{share:.1%} of {split} images are background, within the 0–{hi:.0%} advice"
        out.append(Finding(split, "", NAME, score, msg, data={"kind": "background_share", "share": share}))
    return out


def outlier_findings(ctx: AuditContext) -> list[Finding]:
    records = [r for r in ctx.dataset.images if r._size is not None or r.path.exists()]
    if len(records) < 5:
        return []
    out: list[Finding] = []
    sizes = []
    for r in records:
        try:
            sizes.append(r.size)
        except OSError:
            sizes.append((0, 0))
    wh = np.array([(max(w, 1), max(h, 1)) for w, h in sizes], dtype=float)
    area_z = _robust_z(np.log(wh[:, 0] * wh[:, 1]))
    aspect_z = _robust_z(np.log(wh[:, 0] / wh[:, 1]))
    med_w, med_h = np.median(wh[:, 0]), np.median(wh[:, 1])
    counts = np.array([len(r.labels) for r in records], dtype=float)
    count_z = _robust_z(np.log1p(counts))
    for r, (w, h), az, sz, cz, n in zip(records, wh, area_z, aspect_z, count_z, counts):
        z = max(abs(az), abs(sz))
        if z >= OUTLIER_Z:
            out.append(Finding(r.split, r.rel, NAME, _z_score(z), f"image size {int(w)}×{int(h)} unlike the others (median {int(med_w)}×{int(med_h)})", data={"kind": "size_outlier"}))
        if cz >= OUTLIER_Z and n >= 10:
            out.append(Finding(r.split, r.rel, NAME, _z_score(cz), f"{int(n)} boxes in one image (median {int(np.median(counts))}): check for a crowd of tiny or repeated boxes", data={"kind": "box_count_outlier"}))
    return out


def run(ctx: AuditContext) -> list[Finding]:
    return balance_findings(ctx) + background_findings(ctx) + outlier_findings(ctx)
