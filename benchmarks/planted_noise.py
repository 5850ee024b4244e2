"""Plant known label errors into a copy of a dataset, keeping the ground truth — for benchmarks and tests.

Errors go into the TRAIN split only, ``rate`` × (number of train boxes) of each type, chosen with a local
``numpy`` generator seeded by ``seed`` (same seed → same noisy dataset). Every original box is touched by
at most one error type, so each box of the noisy dataset has exactly one truth: untouched, planted (and
which type), or the source of a planted copy. The input dataset is never mutated: records and labels are
new objects; images are shared by path (pixels don't change, only labels).

Types, as real annotation errors happen:

- ``grouped``: 2–4 nearby same-class boxes of one image replaced by their enclosing box.
- ``loose``: a box scaled by 1.5–2.2× per side around its centre, clipped to the image.
- ``shifted``: a box moved by 35–60 % of its size along x, y or both, clipped to the image.
- ``swapped``: a box given another class, uniformly among the others.
- ``duplicate``: a copy of a box, same class, jittered by at most 5 % of its size.
- ``ambiguous``: a jittered copy with another class.
- ``missing``: a box deleted (kept in ``PlantedTruth.missing`` to score region findings).

Copies (duplicate, ambiguous) are appended as the record's last line — where an annotation tool writes a
newly drawn box — and their source box is marked ``source``: the pair is the error, so a benchmark counts
the source neither as positive nor as negative. Lines are renumbered as the writer would write them:
1-based positions in the record's new labels list.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np

from curate.core.dataset import Dataset, ImageRecord, Label

#: Every error type :func:`plant_errors` knows, in the order they are planted.
NOISE_TYPES: tuple[str, ...] = ("grouped", "missing", "loose", "shifted", "swapped", "duplicate", "ambiguous")

SOURCE = "source"  # truth of a box whose planted copy (duplicate/ambiguous) is the error

LOOSE_SCALE = (1.5, 2.2)  # per-side scale of a loose box
SHIFT_FRACTION = (0.35, 0.6)  # shift as a fraction of the box's size
COPY_JITTER = 0.05  # duplicate/ambiguous copies move and resize by at most this fraction of the box
GROUP_SIZE = (2, 4)  # boxes merged into one grouped box
GROUP_NEAR = 1.5  # neighbours count as "nearby" when the gap between centres < this × mean box side


@dataclass
class PlantedTruth:
    """What was planted where, keyed by the NOISY dataset's ``(image rel, line)``.

    ``boxes`` maps each planted box to its type and each copy's source box to ``"source"``; every other
    train box of the noisy dataset is untouched. ``missing`` lists the deleted boxes (image rel, label
    with its old line). ``counts`` is the number planted per type.
    """

    boxes: dict[tuple[str, int], str] = field(default_factory=dict)
    missing: list[tuple[str, Label]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    rate: float = 0.0

    def truth(self, rel: str, line: int) -> str | None:
        """The planted type (or ``"source"``) of a box, None when untouched."""
        return self.boxes.get((rel, line))


@dataclass
class _Box:
    """A box while planting: its label (old line kept for reference) and what happened to it."""

    label: Label
    kind: str | None = None  # None untouched, a NOISE_TYPE, SOURCE, or "deleted"


def _clip_label(label: Label, x1: float, y1: float, x2: float, y2: float, **changes: int) -> Label:
    x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(1.0, x2), min(1.0, y2)
    return replace(label, cx=(x1 + x2) / 2, cy=(y1 + y2) / 2, w=x2 - x1, h=y2 - y1, polygon=None, **changes)


def _other_class(class_id: int, num_classes: int, rng: np.random.Generator) -> int:
    k = int(rng.integers(num_classes - 1))
    return k if k < class_id else k + 1


def _jittered(label: Label, rng: np.random.Generator) -> Label:
    j = rng.uniform(-COPY_JITTER, COPY_JITTER, size=4)
    w, h = label.w * (1 + j[2]), label.h * (1 + j[3])
    cx, cy = label.cx + j[0] * label.w, label.cy + j[1] * label.h
    return _clip_label(label, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _loose(label: Label, rng: np.random.Generator) -> Label | None:
    sx, sy = rng.uniform(*LOOSE_SCALE, size=2)
    w, h = label.w * sx, label.h * sy
    out = _clip_label(label, label.cx - w / 2, label.cy - h / 2, label.cx + w / 2, label.cy + h / 2)
    return out if out.area >= 1.5 * label.area else None  # a box already filling the image can't loosen


def _shifted(label: Label, rng: np.random.Generator) -> Label | None:
    axes = int(rng.integers(3))  # 0: x, 1: y, 2: both
    fx, fy = rng.uniform(*SHIFT_FRACTION, size=2) * rng.choice([-1.0, 1.0], size=2)
    dx = fx * label.w if axes in (0, 2) else 0.0
    dy = fy * label.h if axes in (1, 2) else 0.0
    x1, y1, x2, y2 = label.xyxy
    out = _clip_label(label, x1 + dx, y1 + dy, x2 + dx, y2 + dy)
    # clipping at the border can leave a sliver; keep the ones that still look like a (moved) box
    return out if out.area >= 0.5 * label.area else None


def _near_group(boxes: list[_Box], seed_idx: int, size: int) -> list[int] | None:
    """Indices of ``size`` untouched same-class boxes nearest to ``boxes[seed_idx]``, if all are nearby."""
    seed = boxes[seed_idx].label
    cands = [i for i, b in enumerate(boxes) if i != seed_idx and b.kind is None and b.label.class_id == seed.class_id]
    if len(cands) < size - 1:
        return None

    def gap(i: int) -> float:
        other = boxes[i].label
        side = (seed.w + seed.h + other.w + other.h) / 4
        return float(np.hypot(seed.cx - other.cx, seed.cy - other.cy) / max(side, 1e-9))

    cands.sort(key=gap)
    chosen = cands[: size - 1]
    if gap(chosen[-1]) > GROUP_NEAR * 2:  # the farthest member must still be a neighbour
        return None
    return [seed_idx, *chosen]


def plant_errors(
    dataset: Dataset,
    *,
    rate: float = 0.03,
    types: Iterable[str] = NOISE_TYPES,
    seed: int = 0,
) -> tuple[Dataset, PlantedTruth]:
    """A noisy copy of ``dataset`` with ``rate`` × train boxes of each error type, and its ground truth.

    Raises ValueError for an unknown type. A type with too few candidates plants as many as it can
    (``truth.counts`` says how many).
    """
    types = tuple(types)
    unknown = set(types) - set(NOISE_TYPES)
    if unknown:
        raise ValueError(f"unknown noise types {sorted(unknown)}; known: {', '.join(NOISE_TYPES)}")
    rng = np.random.default_rng(seed)
    num_classes = len(dataset.names)
    train = [i for i, r in enumerate(dataset.images) if r.split == "train"]
    work: dict[int, list[_Box]] = {i: [_Box(lab) for lab in dataset.images[i].labels] for i in train}
    extra: dict[int, list[_Box]] = {i: [] for i in train}  # appended copies
    n_train = sum(len(v) for v in work.values())
    target = max(1, int(round(rate * n_train))) if n_train else 0
    counts: Counter[str] = Counter()
    missing: list[tuple[str, Label]] = []
    touched: set[int] = set()

    # every (record, box) pair in a seeded random order; each type walks it until it has planted enough
    order = [(i, j) for i in train for j in range(len(work[i]))]
    for kind in (t for t in NOISE_TYPES if t in types):
        if kind == "swapped" and num_classes < 2 or kind == "ambiguous" and num_classes < 2:
            continue
        perm = rng.permutation(len(order))
        for p in perm:
            if counts[kind] >= target:
                break
            i, j = order[p]
            box = work[i][j]
            if box.kind is not None:
                continue
            lab = box.label
            if kind == "grouped":
                members = _near_group(work[i], j, int(rng.integers(GROUP_SIZE[0], GROUP_SIZE[1] + 1)))
                if members is None:
                    continue
                xy = np.array([work[i][m].label.xyxy for m in members])
                first = min(members)
                merged = _clip_label(work[i][first].label, *xy[:, :2].min(0), *xy[:, 2:].max(0))
                for m in members:
                    work[i][m].kind = "deleted"
                work[i][first] = _Box(merged, "grouped")
            elif kind == "missing":
                if sum(b.kind != "deleted" for b in work[i]) <= 1:
                    continue  # keep at least one box: an emptied image would become a background image
                box.kind = "deleted"
                missing.append((dataset.images[i].rel, lab))
            elif kind == "loose":
                new = _loose(lab, rng)
                if new is None:
                    continue
                work[i][j] = _Box(new, kind)
            elif kind == "shifted":
                new = _shifted(lab, rng)
                if new is None:
                    continue
                work[i][j] = _Box(new, kind)
            elif kind == "swapped":
                work[i][j] = _Box(replace(lab, class_id=_other_class(lab.class_id, num_classes, rng)), kind)
            elif kind in ("duplicate", "ambiguous"):
                copy = _jittered(lab, rng)
                if kind == "ambiguous":
                    copy = replace(copy, class_id=_other_class(lab.class_id, num_classes, rng))
                box.kind = SOURCE
                extra[i].append(_Box(copy, kind))
            counts[kind] += 1
            touched.add(i)

    truth = PlantedTruth(missing=missing, counts={t: counts[t] for t in types}, seed=seed, rate=rate)
    images: list[ImageRecord] = []
    for idx, rec in enumerate(dataset.images):
        if idx not in touched:
            images.append(replace(rec, labels=list(rec.labels)))
            continue
        kept = [b for b in work[idx] + extra[idx] if b.kind != "deleted"]
        labels = []
        for n, b in enumerate(kept, start=1):
            labels.append(replace(b.label, line=n))
            if b.kind is not None:
                truth.boxes[(rec.rel, n)] = b.kind
        images.append(replace(rec, labels=labels, edited=True))
    noisy = replace(
        dataset,
        name=f"{dataset.name}-noise{seed}",
        images=images,
        findings=list(dataset.findings),
        warnings=list(dataset.warnings),
    )
    return noisy, truth
