"""Class surgery: keep, drop and merge classes, drop rare ones; images left without boxes kept or dropped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from curate.core.dataset import Dataset, ImageRecord
from curate.ops.rebalance.options import RebalanceError, _unknown


@dataclass
class Surgery:
    """What class surgery did: old → new class ids, and what was dropped or merged."""

    names: list[str]  # the new class names, in the new id order
    mapping: dict[int, int | None]  # old class id → new id (None: dropped)
    merged: dict[str, str] = field(default_factory=dict)  # source name → destination name
    dropped_classes: list[str] = field(default_factory=list)
    rare_classes: list[str] = field(default_factory=list)  # ... of which dropped by --min-instances
    dropped_boxes: int = 0
    emptied_images: list[str] = field(default_factory=list)  # images whose every box was dropped
    dropped_images: list[str] = field(default_factory=list)  # ... and were removed (--empty-images drop)
    edited_images: int = 0


def class_mapping(
    names: Sequence[str],
    counts: Mapping[int, int],
    *,
    keep: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    merge: Mapping[str, str] | None = None,
    min_instances: int = 0,
) -> Surgery:
    """Pure: which old class ids survive, under which new id. Merges first, then keep/drop, then ``min_instances``.

    A kept or dropped name that is a merge source stands for its destination. Surviving classes keep
    their original order (ids renumbered 0..n-1). Unknown names raise a one-line :class:`RebalanceError`.
    """
    merge = dict(merge or {})
    index = {n: i for i, n in enumerate(names)}
    for src, dst in merge.items():
        for n, opt in ((src, "--merge"), (dst, "--merge")):
            if n not in index:
                raise _unknown(n, names, opt)
        if src == dst:
            raise RebalanceError(f"--merge {src}={dst}: a class cannot be merged into itself")
    for dst in merge.values():
        if dst in merge:
            raise RebalanceError(f"--merge: {dst!r} is both merged away and a merge destination")
    for n in list(keep or []) + list(drop):
        if n not in index:
            raise _unknown(n, names, "--keep-classes" if keep and n in keep else "--drop-class")
    target = {i: index[merge.get(n, n)] for i, n in enumerate(names)}  # old id → id it is merged into
    alive = {i for i in range(len(names)) if target[i] == i}
    if keep is not None:
        alive &= {index[merge.get(n, n)] for n in keep}
    alive -= {index[merge.get(n, n)] for n in drop}
    merged_counts = Counter()
    for i, c in counts.items():
        merged_counts[target[i]] += c
    low = {i for i in alive if merged_counts[i] < min_instances}
    alive -= low
    new_id = {old: k for k, old in enumerate(sorted(alive))}
    mapping = {i: new_id.get(target[i]) for i in range(len(names))}
    return Surgery(
        names=[names[i] for i in sorted(alive)],
        mapping=mapping,
        merged={s: d for s, d in merge.items()},
        dropped_classes=[names[i] for i in range(len(names)) if target[i] == i and i not in alive],
        rare_classes=[names[i] for i in sorted(low)],
    )


def apply_class_surgery(
    dataset: Dataset,
    *,
    keep: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    merge: Mapping[str, str] | None = None,
    min_instances: int = 0,
    empty_images: str = "keep",
) -> tuple[Dataset, Surgery]:
    """A new dataset with classes kept/dropped/merged and renumbered; ``dataset`` is not changed.

    A record is marked ``edited`` only when its label lines really change (a box dropped or a class id
    renumbered), so untouched label files stay byte-identical through ``save_yolo``. Images left with no
    boxes are kept as background (``empty_images="keep"``) or removed (``"drop"``); images that were
    background to begin with are always kept.
    """
    if empty_images not in ("keep", "drop"):
        raise RebalanceError(f"--empty-images {empty_images!r}: expected keep or drop")
    counts = dataset.instance_counts()
    surgery = class_mapping(dataset.names, counts, keep=keep, drop=drop, merge=merge, min_instances=min_instances)
    images: list[ImageRecord] = []
    for record in dataset.images:
        labels = [
            replace(lb, class_id=surgery.mapping[lb.class_id])
            for lb in record.labels
            if surgery.mapping.get(lb.class_id) is not None
        ]
        if len(labels) == len(record.labels) and all(a.class_id == b.class_id for a, b in zip(labels, record.labels)):
            images.append(replace(record, labels=list(record.labels)))
            continue
        surgery.dropped_boxes += len(record.labels) - len(labels)
        surgery.edited_images += 1
        if not labels:
            surgery.emptied_images.append(record.rel)
            if empty_images == "drop":
                surgery.dropped_images.append(record.rel)
                continue
        labels = [replace(lb, line=k) for k, lb in enumerate(labels, start=1)]  # lines of the rewritten file
        images.append(replace(record, labels=labels, edited=True))
    return replace(
        dataset,
        names=list(surgery.names),
        images=images,
        findings=list(dataset.findings),
        warnings=list(dataset.warnings),
    ), surgery
