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

from curate.audit.checks.base import AuditContext, Check, Display
from curate.core import defaults
from curate.core.findings import Finding

NAME = "dataset"
#: Robust z-score (median / MAD) beyond which an image's size or box count is an outlier.
OUTLIER_Z = 5.0
#: An image with at least this many boxes gets a note whatever the dataset's median: Ultralytics keeps at most
#: 300 detections an image (``max_det``), so a model trained on it can never find all of them at its defaults,
#: and a person reviewing that many boxes needs to know before opening it. The checks still score every box.
DENSE_IMAGE_BOXES = 300


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
    counts = {s: ds.instance_counts(s) for s in ds.splits}
    train = counts.get("train", Counter())
    present = {c: n for c, n in train.items() if n > 0}
    if len(present) >= 2:
        hi = max(present, key=present.get)
        lo = min(present, key=present.get)
        ratio = present[hi] / present[lo]
        score = min(1.0, math.log10(ratio) / 2) if ratio > 1 else 0.0
        out.append(
            Finding(
                "train",
                "",
                NAME,
                score,
                f"class imbalance {ratio:.0f}:1 in train "
                f"('{ds.class_name(hi)}' {present[hi]}, '{ds.class_name(lo)}' {present[lo]})",
                data={"kind": "imbalance", "ratio": ratio},
            )
        )
    for cid, name in enumerate(ds.names):
        total = sum(c[cid] for c in counts.values())
        if total == 0:
            out.append(
                Finding(
                    "",
                    "",
                    NAME,
                    0.3,
                    f"class '{name}' has no instances at all",
                    data={"kind": "unused_class", "class": name},
                )
            )
            continue
        for split, c in counts.items():
            n = c[cid]
            if n == 0 and split != "train":
                out.append(
                    Finding(
                        split,
                        "",
                        NAME,
                        0.7,
                        f"class '{name}' is absent from {split}: its AP is never measured there",
                        data={"kind": "absent", "class": name},
                    )
                )
            elif n == 0:
                out.append(
                    Finding(
                        split,
                        "",
                        NAME,
                        0.9,
                        f"class '{name}' has no train instances: the model can't learn it",
                        data={"kind": "absent", "class": name},
                    )
                )
            elif n < minimum:
                score = 0.6 if split == "train" else 0.35  # rare in val/test: a note (all-scores), not a finding
                out.append(
                    Finding(
                        split,
                        "",
                        NAME,
                        score,
                        f"class '{name}' has only {n} instance(s) in {split} (< {minimum})",
                        data={"kind": "rare", "class": name, "count": n},
                    )
                )
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
            msg = (
                f"no background images in train: Ultralytics advises 0–{hi:.0%} to cut false positives "
                "(`curate backgrounds` makes them)"
            )
        else:
            score = 0.0
            msg = f"{share:.1%} of {split} images are background, within the 0–{hi:.0%} advice"
        out.append(Finding(split, "", NAME, score, msg, data={"kind": "background_share", "share": share}))
    return out


def _size(record) -> tuple[int, int] | None:
    try:
        return record.size
    except OSError:
        return None


def dense_image_finding(record, boxes: int) -> Finding:
    """The note on an image with DENSE_IMAGE_BOXES boxes or more: 0.5 there, 1.0 at ten times as many."""
    score = min(1.0, 0.5 + 0.5 * math.log10(boxes / DENSE_IMAGE_BOXES))
    msg = (
        f"{boxes:,} boxes in one image (≥ {DENSE_IMAGE_BOXES}, Ultralytics' default max_det): "
        "a crowd, or tiny, repeated or generated boxes? Every box was still checked"
    )
    return Finding(record.split, record.rel, NAME, score, msg, data={"kind": "dense_image", "boxes": boxes})


def outlier_findings(ctx: AuditContext) -> list[Finding]:
    """Images unlike the others: by size/aspect (header read) and by number of boxes; any image with
    DENSE_IMAGE_BOXES boxes or more (then instead of the box-count outlier, one note an image)."""
    records = ctx.dataset.images
    if len(records) < 5:
        return [dense_image_finding(r, len(r.labels)) for r in records if len(r.labels) >= DENSE_IMAGE_BOXES]
    out: list[Finding] = []
    counts = np.array([len(r.labels) for r in records], dtype=float)
    count_z = _robust_z(np.log1p(counts))
    for r, cz, n in zip(records, count_z, counts):
        if n >= DENSE_IMAGE_BOXES:
            out.append(dense_image_finding(r, int(n)))
        elif cz >= OUTLIER_Z and n >= 10:
            out.append(
                Finding(
                    r.split,
                    r.rel,
                    NAME,
                    _z_score(cz),
                    f"{int(n)} boxes in one image (median {int(np.median(counts))}): "
                    "check for a crowd of tiny or repeated boxes",
                    data={"kind": "box_count_outlier"},
                )
            )
    sized = [(r, wh) for r in records if (wh := _size(r)) is not None]
    if len(sized) < 5:
        return out
    wh = np.array([(max(w, 1), max(h, 1)) for _, (w, h) in sized], dtype=float)
    area_z = _robust_z(np.log(wh[:, 0] * wh[:, 1]))
    aspect_z = _robust_z(np.log(wh[:, 0] / wh[:, 1]))
    med_w, med_h = np.median(wh[:, 0]), np.median(wh[:, 1])
    for (r, (w, h)), az, sz in zip(sized, area_z, aspect_z):
        z = max(abs(az), abs(sz))
        if z >= OUTLIER_Z:
            out.append(
                Finding(
                    r.split,
                    r.rel,
                    NAME,
                    _z_score(z),
                    f"image size {int(w)}×{int(h)} unlike the others (median {int(med_w)}×{int(med_h)})",
                    data={"kind": "size_outlier"},
                )
            )
    return out


def run(ctx: AuditContext) -> list[Finding]:
    return balance_findings(ctx) + background_findings(ctx) + outlier_findings(ctx)


class DatasetStats(Check):
    names = (NAME,)
    description = "class balance, rare and absent classes, background share, size and box-count outliers"
    kind = "dataset"
    order = 10
    display = {
        "dataset": Display(200, "#475569", "table"),
    }
    options = {"min_instances": defaults.MIN_INSTANCES_PER_SPLIT}

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
