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
ordinary there and does not outrank real errors of other kinds in the worst-first list (bananas of one bunch
in epicureai's top 20: benchmarks/README.md, *By eye: the top 20 of the merged list on the unmodified data*).
Only a discount: that probability
reaches 1.0 for any pair rarer than the prior explains (bccd's real near-copies at IoU 0.83–0.93), above
the box model's most confident errors (about 0.8), so the IoU map stays the ceiling. Where the data hold more
copies than the prior, the copies fill that probability's top step and keep their IoU map there.

Where a class never overlaps itself at IoU 0.4–0.7 (:func:`overlaps_by_design`) and the data show more copies
than the prior, its pairs are raised to the probability of a copy (:func:`copy_probability`, as ``ambiguous``
does across classes), on any size of dataset: a copy at IoU 0.86 is certain there, yet its IoU map (0.77) sat
under the box model's 0.82 on a right box (traffic-signs-ro). Bananas of a bunch and cells in a smear overlap
by design and keep the IoU map, but for a pair whose every edge lies within the copy jitter of its partner's
(:func:`copy_like`): objects of a bunch or a smear are not drawn edge for edge on each other. Such a pair is
raised whatever the share of copies the data show.
"""

from __future__ import annotations

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.core import defaults
from curate.core.findings import Finding
from curate.core.overlap import later_line_pairs, overlap_score, partner_edge_offsets
from curate.learn.isotonic import density_ratio, error_probability, error_share

NAME = "duplicate"
#: a step of the calibration holds boxes of different IoU: this much of the IoU breaks the tie
IOU_TIE_BREAK = 1e-3


def duplicate_probability(
    best_iou: np.ndarray, prior: float, *, jitter: float, seed: int, share_from: float | None = None
) -> np.ndarray:
    """P(each box is a duplicate of an earlier box), calibrated on synthetic duplicates at ``prior``.

    A synthetic duplicate is a copy of a box whose every edge moved by up to ``jitter`` of the box's size
    (its IoU with the original does not depend on the box); :func:`curate.learn.isotonic.error_probability`
    compares their IoUs with the dataset's own best IoUs (a mixture of legitimate overlaps and ``prior``
    duplicates). 0 where no earlier box overlaps; increasing in the IoU (:data:`IOU_TIE_BREAK` orders boxes
    within a step).

    ``share_from``: where the pairs at this IoU or more show more duplicates than ``prior``
    (:func:`curate.learn.isotonic.error_share`), the fit's top step — the pairs it cannot tell from synthetic
    copies — reads share × ratio instead of prior × ratio. Why: with more copies than the prior, the probability
    saturated at prior / share for every copy, exact or not (epicureai with 3 % copies: all 39 at 0.71, IoU 0.83
    to 0.99 alike, under two carrot-bag boxes the box model rightly scores 0.77–0.81). Only the top step: share ×
    ratio below it lifted right banana pairs at IoU 0.745 from 0.38 to 0.55, above planted swaps.
    """
    n = len(best_iou)
    if n == 0:
        return np.zeros(0)
    synthetic = copy_ious(n, jitter=jitter, seed=seed)
    p = error_probability(best_iou, synthetic, prior)
    if share_from is not None:
        share = error_share(best_iou, synthetic, prior, share_from=share_from)
        top = p >= p.max()
        p = np.where(top, np.minimum(p * share / prior, 1.0), p)
    return with_iou_tie_break(p, best_iou)


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


def copy_probability(
    best_iou: np.ndarray, keys: list, at_half: float, *, seed: int, offsets: np.ndarray | None = None
) -> np.ndarray:
    """P(each box is a copy of its earlier partner), where the data show more such copies than
    ``defaults.DUPLICATE_ERROR_PRIOR``; 0 elsewhere (the IoU map alone scores the pair), and 0 for a box whose key
    overlaps by design (:func:`overlaps_by_design`: its class for ``duplicate``, its class pair for ``ambiguous``)
    — but for a pair drawn edge for edge on its partner (:func:`copy_like`, from ``offsets``: each box's
    :func:`curate.core.overlap.partner_edge_offsets`), which is raised whatever its key and the share.
    A raise: both checks take the larger of it and their own score.

    Synthetic copies (:func:`copy_ious`, edges moved by up to ``defaults.DUPLICATE_JITTER``) against the
    dataset's best IoUs give the density ratio ``r``; the share of copies is read from the tails of pairs at
    ``at_half`` or more (:func:`curate.learn.isotonic.error_share`, each tail at least ten pairs), at least the
    prior. Pairs by their IoU alone only when that share exceeds the prior: then the copies are a population the
    ratio sees, and the most copy-like pairs read ~1. With fewer, the ratio's top step is a handful of legitimate
    pairs under all the synthetic copies above them (a person and vest at the dataset's highest IoU read 1.0), so
    it is not used. On any number of boxes: ten pairs at IoU ``at_half`` or more in classes that never overlap
    less are copies on a small dataset too (traffic-signs-ro, 339 boxes: its copies' IoU map, 0.75–0.9, sat under
    the box model's 0.82 on a right sign, below the naive IoU baseline).

    Copy-like pairs need no share above the prior: the handful of legitimate pairs at the top are not drawn edge
    for edge, and the share is read over every split while copies are often in one (3 % copies in
    construction-ppe's train are 1.45 % of its boxes: whether a tail read more than the prior, and so whether
    any copy rose above its IoU map, was one seed's draw).
    """
    prior = defaults.DUPLICATE_ERROR_PRIOR
    n = len(best_iou)
    like = copy_like(offsets) if offsets is not None else np.zeros(n, dtype=bool)
    synthetic = copy_ious(n, jitter=defaults.DUPLICATE_JITTER, seed=seed)
    share = error_share(best_iou, synthetic, prior, share_from=at_half)
    if share <= prior and not like.any():
        return np.zeros(n)
    ratio = density_ratio(best_iou, synthetic)
    p = with_iou_tie_break(np.minimum(share * ratio, 1.0), best_iou)
    by_iou = ~overlaps_by_design(keys, best_iou, at_half) if share > prior else np.zeros(n, dtype=bool)
    return np.where(by_iou | like, p, 0.0)


def copy_like(offsets: np.ndarray) -> np.ndarray:
    """Per box: every edge lies within ``defaults.DUPLICATE_JITTER`` of its partner's
    (:func:`curate.core.overlap.partner_edge_offsets`), as the synthetic copies of :func:`copy_ious` are drawn.

    Why: :func:`overlaps_by_design` exempts a whole class (or class pair) from the raise, and the raise needs a
    share of copies above the prior, so a copy kept its IoU map (0.6–0.8 at IoU 0.8–0.9) and sat under right boxes
    other checks score 0.8–0.9 (construction-ppe's copies of a person as a vest, bccd's RBC copies). Objects that
    share a box by design do not share it edge for edge: on the seven pool datasets (every split) a pair at IoU
    0.6 or more differs at one side by more than 0.1 of the box (a vest below the head, bananas of a bunch: mostly
    by 0.14 or more; two pairs at 0.114 and 0.118, so the margin is thin), but for 12 pairs: one torso-sized
    person and no-vest pair (0.09) and 11 of the datasets' own copies (bccd's second RBC boxes, a person box drawn
    on a hardhat, two courgettes boxed twice); benchmarks/README.md, session 29."""
    return offsets <= defaults.DUPLICATE_JITTER


def overlaps_by_design(keys: list, best_iou: np.ndarray, at_half: float) -> np.ndarray:
    """Per box: its key (its class for ``duplicate``, the sorted class pair with its partner for ``ambiguous``)
    also overlaps at IoU from ``at_half - 0.3`` (where the IoU map starts) to ``at_half`` somewhere in the
    dataset, so those boxes share objects by design: a person and their vest (construction-ppe holds dozens at
    IoU 0.4–0.65 and a right close-up pair at 0.84), bananas of one bunch (epicureai, 0.66–0.80), cells in a
    smear. A copy never lands there (its edges move by a tenth of the box at most), so such a pair's high IoU
    is not read as a copy."""
    moderate = {key for key, iou in zip(keys, best_iou.tolist()) if at_half - 0.3 <= iou < at_half}
    return np.array([key in moderate for key in keys], dtype=bool)


def run(ctx: AuditContext) -> list[Finding]:
    """A finding for every box: its duplicate score against earlier same-class boxes of its image.

    The pairs of every image are scored in one numpy pass (:func:`later_line_pairs`) and read back
    as plain Python lists: per image, numpy's fixed cost per call was most of this check's time.
    """
    at_half = float(ctx.param(NAME, "iou", defaults.DUPLICATE_IOU))
    threshold = ctx.threshold(NAME)
    dataset = ctx.dataset
    records = [rec for rec in dataset.images if rec.labels]
    per_image = [rec.labels for rec in records]
    best_a, partner_a = later_line_pairs(per_image, same_class=True)
    scores_a = overlap_score(best_a, at_half)
    if len(best_a) >= defaults.DUPLICATE_CALIBRATION_MIN_BOXES:  # fewer: too few to learn how they overlap rightly
        calibrated = duplicate_probability(
            best_a, defaults.DUPLICATE_ERROR_PRIOR, jitter=defaults.DUPLICATE_JITTER, seed=ctx.seed, share_from=at_half
        )
        scores_a = np.minimum(scores_a, calibrated)
    classes = [lab.class_id for rec in records for lab in rec.labels]
    offsets = partner_edge_offsets(per_image, partner_a)
    scores_a = np.maximum(scores_a, copy_probability(best_a, classes, at_half, seed=ctx.seed, offsets=offsets))
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
