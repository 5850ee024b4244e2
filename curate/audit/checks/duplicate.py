"""duplicate: two boxes of the same class on the same object (a double click, a copy-paste, a merged export).

Pure geometry, no pixels: for every box, its best IoU with an earlier same-class box of the image,
mapped to a score (IoU ``defaults.DUPLICATE_IOU`` = 0.7 → 0.5, an exact copy → 1.0; see
:func:`curate.core.overlap.overlap_score`). Only the later line of a pair is flagged — the earlier is
usually the original — and the partner's line goes into ``data["partner_line"]``. Intersection over the
smaller box is NOT used: a small box inside a large one of the same class is a grouped box or a part,
not a duplicate, and the ``grouped`` check owns it.

On a dataset of at least ``defaults.DUPLICATE_CALIBRATION_MIN_BOXES`` boxes the score is at most the
probability that the box is a real duplicate (:func:`duplicate_probability`), like the other checks' scores:
where the dataset's own boxes overlap a lot (bananas of one bunch, cells in a smear) an IoU of 0.75 is
ordinary there and no longer outranks real errors of other kinds in the worst-first list (epicureai:
12 of the top 20 of the merged list were such bananas at 0.43–0.67). Only a discount: that probability
reaches 1.0 for any pair rarer than the prior explains (bccd's real near-copies at IoU 0.83–0.93), above
the box model's most confident errors (about 0.8), so the IoU map stays the ceiling.
"""

from __future__ import annotations

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.core import defaults
from curate.core.findings import Finding
from curate.core.overlap import later_line_pairs, overlap_score
from curate.learn.isotonic import error_probability

NAME = "duplicate"
#: a step of the calibration holds boxes of different IoU: this much of the IoU breaks the tie
IOU_TIE_BREAK = 1e-3


def duplicate_probability(best_iou: np.ndarray, prior: float, *, jitter: float, seed: int) -> np.ndarray:
    """P(each box is a duplicate of an earlier box), calibrated on synthetic duplicates at ``prior``.

    A synthetic duplicate is a copy of a box whose every edge moved by up to ``jitter`` of the box's size
    (its IoU with the original does not depend on the box); :func:`curate.learn.isotonic.error_probability`
    compares their IoUs with the dataset's own best IoUs (a mixture of legitimate overlaps and ``prior``
    duplicates). 0 where no earlier box overlaps; increasing in the IoU (:data:`IOU_TIE_BREAK` orders boxes
    within a step).
    """
    n = len(best_iou)
    if n == 0:
        return np.zeros(0)
    return with_iou_tie_break(error_probability(best_iou, copy_ious(n, jitter=jitter, seed=seed), prior), best_iou)


def with_iou_tie_break(p: np.ndarray, best_iou: np.ndarray) -> np.ndarray:
    """``p`` with :data:`IOU_TIE_BREAK` of the IoU mixed in (a calibration's step holds pairs of different IoU:
    the closer copy ranks first), 0 where no box overlaps."""
    return np.where(best_iou > 0, (1.0 - IOU_TIE_BREAK) * p + IOU_TIE_BREAK * best_iou, 0.0)


def copy_ious(n: int, *, jitter: float, seed: int) -> np.ndarray:
    """IoUs of ``n`` synthetic copies with their box: every edge moved by up to ``jitter`` of the box's size (the
    IoU does not depend on the box, so a unit box stands for all)."""
    edges = np.random.default_rng(seed).uniform(-jitter, jitter, size=(n, 4))
    x1, y1 = np.maximum(edges[:, 0], 0.0), np.maximum(edges[:, 1], 0.0)  # the copy's corners on a unit box
    x2, y2 = np.minimum(1.0 + edges[:, 2], 1.0), np.minimum(1.0 + edges[:, 3], 1.0)
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    copy_area = (1.0 + edges[:, 2] - edges[:, 0]) * (1.0 + edges[:, 3] - edges[:, 1])
    return inter / (1.0 + copy_area - inter)


def run(ctx: AuditContext) -> list[Finding]:
    """A finding for every box: its duplicate score against earlier same-class boxes of its image.

    The pairs of every image are scored in one numpy pass (:func:`later_line_pairs`) and read back
    as plain Python lists: per image, numpy's fixed cost per call was most of this check's time.
    """
    at_half = float(ctx.param(NAME, "iou", defaults.DUPLICATE_IOU))
    threshold = ctx.threshold(NAME)
    dataset = ctx.dataset
    records = [rec for rec in dataset.images if rec.labels]
    best_a, partner_a = later_line_pairs([rec.labels for rec in records], same_class=True)
    scores_a = overlap_score(best_a, at_half)
    if len(best_a) >= defaults.DUPLICATE_CALIBRATION_MIN_BOXES:  # fewer: too few to learn how they overlap rightly
        calibrated = duplicate_probability(
            best_a, defaults.DUPLICATE_ERROR_PRIOR, jitter=defaults.DUPLICATE_JITTER, seed=ctx.seed
        )
        scores_a = np.minimum(scores_a, calibrated)
    scores, best, partner = scores_a.tolist(), best_a.tolist(), partner_a.tolist()
    out: list[Finding] = []
    k = 0
    for rec in records:
        labels = rec.labels
        for lab in labels:
            name = dataset.class_name(lab.class_id)
            iou, p, score = best[k], partner[k], scores[k]
            k += 1
            data = {"class": name, "iou": round(iou, 4)}
            if p >= 0 and iou > 0:
                other = labels[p].line
                data["partner_line"] = other
                if score >= threshold:
                    kind = "exact duplicate" if iou >= 0.98 else "duplicate"
                    msg = f"{kind} of line {other} '{name}' (IoU {iou:.2f})"
                else:
                    msg = f"closest earlier '{name}' box is line {other} (IoU {iou:.2f})"
            else:
                msg = f"no earlier '{name}' box overlaps it"
            out.append(Finding(rec.split, rec.rel, NAME, score, msg, line=lab.line, data=data))
    return out


class Duplicate(Check):
    names = (NAME,)
    description = "two boxes of the same class on the same object"
    kind = "box"
    order = 20
    display = {
        "duplicate": Display(80, "#0284c7"),
    }
    options = {"iou": defaults.DUPLICATE_IOU}

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
