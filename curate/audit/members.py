"""Member boxes for a grouped finding: the boxes of the several objects that one group box was drawn around.

Why candidate sets judged box by box, and no detector: a group box is the enclosing box of 2–4 neighbouring
objects of its class, so each side of it touches a member, and its members are about the class's size. That
leaves few plausible layouts: the box tiled into k equal parts (k = 2–4, in a row, a column or a 2×2 grid), split
unevenly in two, or two members at opposite corners (objects overlapping on a diagonal), sized as a share of the
box or as the class's typical box in this image. Each layout is a *set* of candidate boxes, and every member of
the right set should look like one real box of the class. The judge of :mod:`curate.audit.refine` (a classifier
of the dataset's real boxes against its corrupted ones — loose, shifted and grouped — cross-fitted by image) gives
each candidate the chance it is a real box; a set scores the mean of its members', and the best set is the pick,
unless it scores no more than the group box itself (a right box flagged by mistake: its parts look less like the
class than it does).

Whether the pick is right is measured on the dataset's own synthetic merges (the box model's grouped
corruptions, whose members are known): a pick is right when at least half of the larger of the two sets (the
picked members, the true ones) match one to one at IoU ≥ :data:`MEMBER_IOU`. A logistic fit of right on how
much the set's score beats the group box's gives ``p_right``; no members are proposed below refine's
``MIN_P_RIGHT`` (0.5) — a wrong split accepted in batch is worse than the group box left for a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.core.overlap import iou_one

#: A proposed member this close to a merged box recovers it (issue #23's target: ≥ 50 % at IoU ≥ 0.5).
MEMBER_IOU = 0.5
#: Grouped findings searched, at most: the highest-scored first.
MAX_SEARCHED = 300
#: Tilings of the group box into equal parts: (columns, rows).
TILINGS = ((2, 1), (1, 2), (3, 1), (1, 3), (2, 2), (4, 1), (1, 4))
#: Uneven splits in two: where the cut falls, as a share of the box.
CUTS = (0.35, 0.65)
#: Two members at opposite corners: each member's width and height as shares of the group box.
CORNER_SHARES = (0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Members:
    """A grouped box's proposed members (normalized x1, y1, x2, y2 each) and the held-out chance they are right."""

    boxes: tuple[tuple[float, float, float, float], ...]
    p_right: float


def typical_size(
    boxes: np.ndarray, classes: np.ndarray, exclude: tuple[int, ...], cls: int, fallback: tuple[float, float]
) -> tuple[float, float]:
    """The median width and height of the image's other boxes of ``cls`` (a scene has one scale), else the
    class's median over the dataset (``fallback``)."""
    keep = [j for j in range(len(boxes)) if classes[j] == cls and j not in exclude]
    if not keep:
        return fallback
    b = boxes[keep]
    return float(np.median(b[:, 2] - b[:, 0])), float(np.median(b[:, 3] - b[:, 1]))


def class_sizes(boxes: list[np.ndarray], classes: list[np.ndarray], nc: int) -> list[tuple[float, float]]:
    """Each class's median normalized width and height over its real boxes (all boxes' where it has none)."""
    allb = np.concatenate([b for b in boxes if len(b)]) if any(len(b) for b in boxes) else np.zeros((0, 4))
    allc = np.concatenate([c for c in classes if len(c)]) if len(allb) else np.zeros(0, int)
    wh = np.stack([allb[:, 2] - allb[:, 0], allb[:, 3] - allb[:, 1]], axis=1) if len(allb) else np.ones((1, 2)) / 4
    glob = tuple(float(v) for v in np.median(wh, axis=0))
    return [tuple(float(v) for v in np.median(wh[allc == c], axis=0)) if (allc == c).any() else glob
            for c in range(nc)]  # fmt: skip


def candidate_sets(box: np.ndarray, typical: tuple[float, float]) -> list[list[np.ndarray]]:
    """The member layouts of a group box (normalized xyxy), each a list of 2–4 boxes inside it."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    sets: list[list[np.ndarray]] = []
    for nx, ny in TILINGS:
        sets.append([np.array([x1 + i * w / nx, y1 + j * h / ny, x1 + (i + 1) * w / nx, y1 + (j + 1) * h / ny])
                     for j in range(ny) for i in range(nx)])  # fmt: skip
    for c in CUTS:
        sets.append([np.array([x1, y1, x1 + c * w, y2]), np.array([x1 + c * w, y1, x2, y2])])
        sets.append([np.array([x1, y1, x2, y1 + c * h]), np.array([x1, y1 + c * h, x2, y2])])
    sizes = {(a * w, b * h) for a in CORNER_SHARES for b in CORNER_SHARES if (a, b) != (1.0, 1.0)}
    sizes.add((min(typical[0], w), min(typical[1], h)))
    for mw, mh in sorted(sizes):
        if mw * mh >= 0.95 * w * h:
            continue
        sets.append([np.array([x1, y1, x1 + mw, y1 + mh]), np.array([x2 - mw, y2 - mh, x2, y2])])
        sets.append([np.array([x2 - mw, y1, x2, y1 + mh]), np.array([x1, y2 - mh, x1 + mw, y2])])
    return sets


def matched(proposed: list, truth: list, iou: float = MEMBER_IOU) -> int:
    """How many of ``truth`` a one-to-one matching (best IoU first) pairs with a ``proposed`` box at ≥ ``iou``."""
    pairs = sorted(((iou_one(tuple(p), tuple(t)), i, j) for i, p in enumerate(proposed) for j, t in enumerate(truth)),
                   reverse=True)  # fmt: skip
    used_p: set[int] = set()
    used_t: set[int] = set()
    for v, i, j in pairs:
        if v < iou:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_t)


def is_right(proposed: list, truth: list) -> bool:
    """A split is right when at least half of the larger set, proposed or true, match one to one."""
    return matched(proposed, truth) >= 0.5 * max(len(proposed), len(truth))


def pick(p_ok: np.ndarray, sets: list[list[int]]) -> tuple[int, float]:
    """The set (of candidate rows indexing ``p_ok``) whose members look most like real boxes, and its score."""
    scores = [float(np.mean(p_ok[s])) for s in sets]
    best = int(np.argmax(scores))
    return best, scores[best]
