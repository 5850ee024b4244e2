"""The boxes the model describes, and the corruptions that teach it what a wrong box looks like.

Every real box of the dataset is a :class:`Query` of kind "ok"; a sample of them is corrupted the way real
annotation errors happen: enlarged (loose), moved (shifted), or merged with same-class neighbours into their
enclosing box (grouped). The model learns to tell those from the originals (:mod:`.model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.core import defaults
from curate.core.dataset import Dataset

#: The error kinds the model separates from "ok", in class-index order 1..3.
KINDS: tuple[str, ...] = ("loose", "shifted", "grouped")


@dataclass
class Query:
    """One box to describe: a real box (``kind`` "ok", ``line`` set) or a corruption of real boxes.

    ``xyxy`` normalized; ``exclude`` = indices of the image's real boxes that this box replaces (the box
    itself, or a grouped box's members), left out of its geometric context.
    """

    image: int  # index into the image list
    xyxy: np.ndarray
    cls: int
    kind: str
    exclude: tuple[int, ...]
    line: int | None = None


def _clip(xyxy: np.ndarray) -> np.ndarray:
    return np.clip(xyxy, 0.0, 1.0)


def _area(b: np.ndarray) -> float:
    return float(max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0))


def corrupt_loose(b: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Enlarge by 1.25–2.6× per axis; half the time symmetric, half the time lopsided."""
    w, h = b[2] - b[0], b[3] - b[1]
    sx, sy = rng.uniform(*defaults.BOXMODEL_LOOSE_SCALE, size=2)
    if rng.random() < 0.2:  # only one axis loose
        if rng.random() < 0.5:
            sx = 1.0 + rng.uniform(0, 0.1)
        else:
            sy = 1.0 + rng.uniform(0, 0.1)
    ux, uy = (0.5, 0.5) if rng.random() < 0.5 else rng.uniform(0.0, 1.0, size=2)
    ex, ey = (sx - 1) * w, (sy - 1) * h
    out = _clip(np.array([b[0] - ex * ux, b[1] - ey * uy, b[2] + ex * (1 - ux), b[3] + ey * (1 - uy)]))
    return out if _area(out) >= 1.2 * _area(b) else None


def corrupt_shifted(b: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Move by 20–70 % of the size along x, y or both."""
    w, h = b[2] - b[0], b[3] - b[1]
    axes = int(rng.integers(3))
    fx, fy = rng.uniform(*defaults.BOXMODEL_SHIFT_FRACTION, size=2) * rng.choice([-1.0, 1.0], size=2)
    dx = fx * w if axes in (0, 2) else 0.0
    dy = fy * h if axes in (1, 2) else 0.0
    out = _clip(b + np.array([dx, dy, dx, dy]))
    return out if _area(out) >= 0.4 * _area(b) else None


def corrupt_grouped(
    boxes: np.ndarray, classes: np.ndarray, seed: int, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """Enclosing box of ``seed`` and 1–4 of its nearest same-class neighbours (if they are neighbours)."""
    same = np.flatnonzero((classes == classes[seed]) & (np.arange(len(classes)) != seed))
    if not len(same):
        return None
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2
    gap = np.hypot(*(c[same] - c[seed]).T) / np.maximum((side[same] + side[seed]) / 2, 1e-6)
    order = same[np.argsort(gap)]
    gap = np.sort(gap)
    k = int(rng.integers(defaults.BOXMODEL_GROUP_SIZE[0], defaults.BOXMODEL_GROUP_SIZE[1] + 1)) - 1
    k = min(k, len(order))
    if gap[k - 1] > defaults.BOXMODEL_GROUP_NEAR:
        k = int(np.sum(gap[:k] <= defaults.BOXMODEL_GROUP_NEAR))
    if k < 1:
        return None
    members = (seed, *order[:k].tolist())
    m = boxes[list(members)]
    return np.array([m[:, 0].min(), m[:, 1].min(), m[:, 2].max(), m[:, 3].max()]), tuple(int(i) for i in members)


def _queries(
    dataset: Dataset,
    rng: np.random.Generator,
    *,
    with_corruptions: bool,
    share: float = defaults.BOXMODEL_CORRUPT_SHARE,
) -> tuple[list[Query], list[np.ndarray], list[np.ndarray]]:
    boxes = [np.array([lab.xyxy for lab in r.labels], float).reshape(-1, 4) for r in dataset.images]
    classes = [np.array([lab.class_id for lab in r.labels], int) for r in dataset.images]
    qs: list[Query] = []
    for i, rec in enumerate(dataset.images):
        for j, lab in enumerate(rec.labels):
            qs.append(Query(i, boxes[i][j], lab.class_id, "ok", (j,), line=j))
    if not with_corruptions:
        return qs, boxes, classes
    n = len(qs)
    per_kind = int(min(max(share * n, 200), defaults.BOXMODEL_MAX_CORRUPT))
    originals = [q for q in qs]
    for kind in KINDS:
        made = 0
        order = rng.permutation(n)
        for t in order:
            if made >= per_kind:
                break
            q = originals[t]
            b = boxes[q.image][q.line]
            if kind == "loose":
                out = corrupt_loose(b, rng)
                res = (out, (q.line,)) if out is not None else None
            elif kind == "shifted":
                out = corrupt_shifted(b, rng)
                res = (out, (q.line,)) if out is not None else None
            else:
                res = corrupt_grouped(boxes[q.image], classes[q.image], q.line, rng)
            if res is None:
                continue
            qs.append(Query(q.image, res[0], q.cls, kind, res[1]))
            made += 1
    return qs, boxes, classes
