"""Which of a loose box's candidates to propose: a pick learnt on the dataset's own loose corruptions.

Why not the judge's favourite: the judge (:mod:`curate.audit.refine`) is a classifier of real boxes against
corrupted ones, so it answers "does this box look real?", not "is this the object the loose box was drawn around?".
In a dense scene of like objects (cells touching cells, players in a group) a candidate that cuts one object or
holds a neighbour also looks real enough, and its favourite is right too seldom on the box model's loose boxes for
``p_right`` to reach 0.5 (benchmarks/README.md, Session 19, branch `loose2`). What tells the right candidate there is
its relation to the scene: its size against the class's other boxes in the image (one scene, one scale), its overlap
with the image's other boxes, its agreement with the object GrabCut finds (:mod:`curate.audit.evidence`), and the
judge's chance of it against the other candidates'. A classifier of right against wrong candidates learns that on the
calibration boxes (the box model's loose corruptions, whose true box is known), each one's pick held out, exactly as the
member search learns its pick of a set (:func:`curate.audit.members.learnt_picks`).

It is the pick refine proposes wherever it can be learnt, the judge's favourite only where it cannot: even where
the favourite's own ``p_right`` passes (epicureai, food-ingredients), it is a little too small or too large more
often than this pick. On bccd-blood-cells and football-players the judge's wrong picks are parts of the object (a
median 0.64 and 0.72 of its area), which the class's size in the scene tells.
"""

from __future__ import annotations

import numpy as np

from curate.core.overlap import pairwise_iou

#: What each candidate is described by (row 0 of a search: the box itself).
FEATURES = (
    "chance",  # the judge's chance of a real box
    "margin",  # the chance minus the box's own
    "behind_best",  # the chance minus the best candidate's
    "rank",  # the chance's rank among the box's candidates, 0 best, as a share
    "width_share", "height_share",  # the candidate's size against the box's
    "log_width_typical", "log_height_typical",  # against the class's median box in the image (else the dataset's)
    "log_width_class", "log_height_class",  # against the class's median box over the dataset
    "from_image",  # a box GrabCut found, not a shrink
    "iou_image",  # its IoU with the box GrabCut found (0 where none)
    "image_found",  # whether GrabCut found one
    "image_dx", "image_dy",  # where GrabCut's box sits in the box: its centre's offset, a share of the box's size
    "overlap_others",  # its largest IoU with the image's other boxes
    "log_same_class",  # how many other boxes of the class the image holds (log1p)
    "box_chance",  # the box's own chance
)  # fmt: skip


def candidate_features(
    cands: np.ndarray,
    chance: np.ndarray,
    from_image: np.ndarray,
    typical: tuple[float, float],
    class_size: tuple[float, float],
    others: np.ndarray,
    same_class: int,
) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate (``cands``: normalized xyxy, row 0 the box itself; ``chance``: the
    judge's chance of each; ``from_image``: which came from GrabCut; ``others``: the image's other real boxes)."""
    cands = np.asarray(cands, float)
    chance = np.asarray(chance, float)
    from_image = np.asarray(from_image, bool)
    n = len(cands)
    w = np.maximum(cands[:, 2] - cands[:, 0], 1e-6)
    h = np.maximum(cands[:, 3] - cands[:, 1], 1e-6)
    rank = np.argsort(np.argsort(-chance, kind="stable"), kind="stable") / max(n - 1, 1)
    found = cands[from_image]
    iou_image = pairwise_iou(cands, found).max(axis=1) if len(found) else np.zeros(n)
    if len(found):
        g = found[0]  # GrabCut's whole foreground
        dx = ((g[0] + g[2]) - (cands[0, 0] + cands[0, 2])) / 2 / w[0]
        dy = ((g[1] + g[3]) - (cands[0, 1] + cands[0, 3])) / 2 / h[0]
    else:
        dx = dy = 0.0
    others = np.asarray(others, float).reshape(-1, 4)
    overlap = pairwise_iou(cands, others).max(axis=1) if len(others) else np.zeros(n)
    tw, th = max(typical[0], 1e-6), max(typical[1], 1e-6)
    cw, ch = max(class_size[0], 1e-6), max(class_size[1], 1e-6)
    cols = [
        chance, chance - chance[0], chance - chance.max(), rank, w / w[0], h / h[0],
        np.log(w / tw), np.log(h / th), np.log(w / cw), np.log(h / ch),
        from_image.astype(float), iou_image, np.full(n, float(len(found) > 0)), np.full(n, dx), np.full(n, dy),
        overlap, np.full(n, np.log1p(same_class)), np.full(n, chance[0]),
    ]  # fmt: skip
    return np.stack(cols, axis=1)


def describe(
    cands: np.ndarray,
    chance: np.ndarray,
    from_image: np.ndarray,
    image_boxes: np.ndarray,
    image_classes: np.ndarray,
    exclude: tuple[int, ...],
    cls: int,
    class_size: tuple[float, float],
) -> np.ndarray:
    """:func:`candidate_features` of a searched box, its scene taken from its image's real boxes less ``exclude``
    (the box itself, or the real box a corruption replaces)."""
    from curate.audit.members import typical_size

    keep = np.array([j not in exclude for j in range(len(image_boxes))], bool)
    typical = typical_size(image_boxes, image_classes, exclude, cls, class_size)
    same = int(np.sum(keep & (image_classes == cls)))
    return candidate_features(cands, chance, from_image, typical, class_size, image_boxes[keep], same)


def learnt_picks(
    tables: dict[int, np.ndarray], calibration: list[int], right: dict[int, np.ndarray], classifier, min_rows: int
) -> dict[int, tuple[int, float]]:
    """Each searched box's pick (its candidate index; 0 the box itself) and ``p_right``: the candidate a classifier
    of right against wrong candidates (``right[k]``: each of a calibration box's candidates at IoU ≥ 0.75 with its
    box before corruption), fitted on the calibration boxes, rates likeliest right; ``p_right`` a logistic fit, on
    the calibration boxes' held-out picks, of right on that rating. Empty where the calibration is too small."""
    from curate.audit import members
    from curate.learn.boosting import platt

    picks = members.learnt_picks({k: (t, None) for k, t in tables.items()}, calibration, right, classifier)
    cal = [k for k in calibration if k in picks]
    if len(cal) < min_rows:
        return {}
    hit = np.array([right[k][picks[k][0]] for k in cal], float)
    a, b = platt(np.array([picks[k][1] for k in cal]), hit)
    return {k: (i, float(1.0 / (1.0 + np.exp(-(a * score + b))))) for k, (i, score) in picks.items()}
