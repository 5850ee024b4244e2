"""Which train photos a background comes from and what it must not resemble: Roboflow variants, the val/test
thumbnails (step 5), the class round-robin, the typical size and the output names."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from curate.core.dataset import ImageRecord, roboflow_photo
from curate.io.decode import imread
from curate.vision import hashing


def roboflow_base(stem: str) -> str:
    """The photo a file was made from (:func:`curate.core.dataset.roboflow_photo`), else its own stem."""
    return roboflow_photo(stem) or stem


def thumb_of(bgr: np.ndarray) -> np.ndarray:
    """The same normalized thumbnail as :func:`curate.vision.hashing.compute_signature`, from pixels."""
    return hashing.normalized_thumbnail(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


def _imread_quarter(path: Path) -> np.ndarray | None:
    """The image decoded at 1/4 size, or in full where OpenCV cannot reduce it; None when unreadable."""
    img = imread(path, 4)
    return img if img is not None else imread(path)


class HeldOut:
    """Thumbnails of val/test images: the similarity of anything to the nearest of them."""

    def __init__(self, records: list[ImageRecord]) -> None:
        thumbs = []
        for r in records:
            img = _imread_quarter(r.path)  # as curate.vision.hashing decodes: fast
            if img is not None:
                thumbs.append(thumb_of(img))
        self.matrix = np.stack(thumbs) if thumbs else np.zeros((0, hashing.THUMB**2), np.float32)
        self.bases = {roboflow_base(r.stem) for r in records}

    def similarity(self, thumb: np.ndarray) -> float:
        return float((self.matrix @ thumb).max()) if len(self.matrix) else 0.0


def source_order(train: list[ImageRecord], *, rng: np.random.Generator) -> list[ImageRecord]:
    """Train photos in round-robin order over classes (rarest first), each photo once.

    Photos without boxes go last as their own turn (they are backgrounds already, but may hold salient
    objects; the residual check decides).
    """
    by_class: dict[int, list[ImageRecord]] = defaultdict(list)
    for r in train:
        classes = sorted({l.class_id for l in r.labels}) or [-1]
        by_class[int(rng.choice(classes))].append(r)
    queues = {c: [rs[i] for i in rng.permutation(len(rs))] for c, rs in by_class.items()}
    order_classes = sorted(queues, key=lambda c: (c == -1, len(queues[c]), c))
    out: list[ImageRecord] = []
    while any(queues.values()):
        for c in order_classes:
            if queues[c]:
                out.append(queues[c].pop())
    return out


def typical_size(records: list[ImageRecord]) -> tuple[int, int]:
    """The most common (w, h) among the records (640×640 for a Roboflow export)."""
    from collections import Counter

    sizes = Counter()
    for r in records:
        try:
            sizes[r.size] += 1
        except Exception:  # noqa: BLE001 — unreadable headers are the image checks' business
            continue
    return sizes.most_common(1)[0][0] if sizes else (640, 640)


def unique_name(prefix: str, stem: str, taken: set[str]) -> str:
    k = 0
    while f"{prefix}_{stem}_{k}.jpg" in taken:
        k += 1
    name = f"{prefix}_{stem}_{k}.jpg"
    taken.add(name)
    return name


# --------------------------------------------------------------------------------------------------
