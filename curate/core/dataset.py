"""The typed core every stage passes along: a dataset is images with their labels, per split.

Boxes stay normalized (YOLO ``cx, cy, w, h`` in [0, 1]: a line that reaches past the image is clipped, its
own numbers kept in ``Label.raw`` for the writer); image sizes are read lazily from file headers only when
a stage needs pixels. Every label remembers its 1-based line in its label file so a finding,
a FiftyOne label and an exported line can always be traced back to the user's file.

Reading lives in :mod:`curate.io.yolo` (pure line parsing) and :func:`load_dataset` (files);
writing in :func:`write_dataset`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from curate.core.findings import Finding


def roboflow_photo(name: str) -> str | None:
    """The photo a Roboflow export file was made from: ``name_jpg.rf.<hash>.jpg`` (or its stem) → ``name_jpg``;
    None for a name that is not Roboflow's.

    Roboflow names each augmented variant of one photo ``<photo>_<ext>.rf.<hash>``, so the variants share the
    part before the first ``.rf.`` (a re-export appends another ``.rf.<hash>``: still the same photo). One
    rule for the re-split, which keeps a photo's variants in one split, and for the background sampler,
    which keeps val/test photos out of train.
    """
    head, sep, _ = name.partition(".rf.")
    return head if sep and head else None


#: Canonical split names, in order. Roboflow's ``valid`` folder is read as split ``val``.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Label:
    """One label line: a box, or a polygon (segmentation line) with the box derived from it."""

    class_id: int
    cx: float
    cy: float
    w: float
    h: float
    line: int  # 1-based line number in the label file
    polygon: tuple[float, ...] | None = None  # normalized x1, y1, x2, y2, ... for segmentation lines
    # The line's own numbers (cx, cy, w, h, or the polygon's points) when they reach past the image and the
    # fields above are clipped to it; None when they are the line's. The writer puts them back (Ultralytics
    # reads a box whose centre lies on the edge as written).
    raw: tuple[float, ...] | None = None

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """Normalized corners ``(x1, y1, x2, y2)``."""
        return (self.cx - self.w / 2, self.cy - self.h / 2, self.cx + self.w / 2, self.cy + self.h / 2)

    @property
    def values(self) -> tuple[float, ...]:
        """The label's numbers as a YOLO line writes them: the polygon's points, else ``cx, cy, w, h``."""
        return self.polygon if self.polygon is not None else (self.cx, self.cy, self.w, self.h)

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def is_polygon(self) -> bool:
        return self.polygon is not None


@dataclass
class ImageRecord:
    """One image, its label file (if any) and the labels read from it.

    ``edited`` is False while ``labels`` are exactly what the label file holds; the writer then copies
    the label file byte for byte. Any stage that changes labels must set ``edited=True``.
    """

    split: str
    path: Path  # absolute path of the image file
    rel: str  # image path relative to the dataset root, with '/'
    label_path: Path | None = None  # absolute path of the label file; None when there is none
    labels: list[Label] = field(default_factory=list)
    edited: bool = False
    _size: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def is_background(self) -> bool:
        """No boxes: a background image (label file missing or empty) — legitimate, but counted."""
        return not self.labels

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the upright image, from the file header (PIL reads no pixels for this); cached.

        Upright: turned by its EXIF orientation (:func:`upright_size`), as every pixel decode here (OpenCV)
        and Ultralytics see it.
        """
        if self._size is None:
            from PIL import Image

            with Image.open(self.path) as im:
                self._size = upright_size(im)
        return self._size

    def readable_size(self) -> tuple[int, int] | None:
        """:attr:`size`, or None where the header cannot be read (any error): for the pixel passes that choose a
        decode side or a cap from the size and fall back to a default, the decode itself reporting the file."""
        try:
            return self.size
        except Exception:  # noqa: BLE001 — any header error is the caller's default, never a traceback
            return None


#: EXIF orientations that turn an image by 90° (or transpose it): its width and height swap.
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def upright_size(im) -> tuple[int, int]:
    """``(width, height)`` of an open PIL image once turned by its EXIF orientation.

    Why: OpenCV's ``imread``/``imdecode`` apply the orientation (JPEG, PNG, WebP), so every box crop, mask
    and thumbnail here is cut from the upright image, and Ultralytics trains on it (its ``exif_size`` and
    ``imread``); PIL's ``im.size`` is the stored one, so a normalized box measured in pixels with it (tiny
    box, ObjectLab's pixel boxes, the box model's pixel sizes) had width and height swapped. The EXIF block
    is parsed only when PIL found one on opening (most exports strip it).
    """
    try:
        orientation = exif_orientation(im)
    except Exception:  # noqa: BLE001 — a broken EXIF block: the stored size, as the decoders fall back to
        orientation = 1
    return oriented_size(im.size, orientation)


def exif_orientation(im) -> int:
    """The EXIF orientation of an open PIL image (1 = as stored); raises on a broken EXIF block.

    The EXIF block is parsed only when PIL found one on opening, or in a TIFF (its own tags).
    """
    if im.format == "TIFF":
        return int(im.tag_v2.get(0x0112, 1) or 1)
    return int(im.getexif().get(0x0112, 1) or 1) if "exif" in im.info else 1


def oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``(width, height)`` of a stored size once turned by ``orientation``."""
    w, h = size
    return (h, w) if orientation in SWAPPING_ORIENTATIONS else (w, h)


@dataclass
class Dataset:
    """A YOLO dataset as read from disk: class names, image records per split, and format findings."""

    root: Path  # the folder image/label paths are made relative to (data.yaml's folder or `path:`)
    name: str  # a short name (the dataset folder's name), used for report and FiftyOne names
    names: list[str]  # class names, index = class id
    images: list[ImageRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # format findings from the reader
    yaml_path: Path | None = None
    warnings: list[str] = field(default_factory=list)  # one-line notes shown to the user (paths resolved…)

    @property
    def splits(self) -> list[str]:
        """The splits that hold at least one image, in canonical order then any others."""
        present = {r.split for r in self.images}
        return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))

    def split(self, name: str) -> list[ImageRecord]:
        return [r for r in self.images if r.split == name]

    def boxes(self) -> Iterator[tuple[ImageRecord, Label]]:
        for record in self.images:
            for label in record.labels:
                yield record, label

    @property
    def num_boxes(self) -> int:
        return sum(len(r.labels) for r in self.images)

    def instance_counts(self, split: str | None = None, *, by_name: bool = False) -> Counter:
        """Boxes per class id (or class name) in ``split``, or in the whole dataset; a class without boxes is
        absent (``counts[c]`` is 0), and classes come in the order their first box is met."""
        records = self.images if split is None else self.split(split)
        if by_name:
            return Counter(self.class_name(lb.class_id) for r in records for lb in r.labels)
        return Counter(lb.class_id for r in records for lb in r.labels)

    def splits_by_file(self) -> dict[str, list[str]]:
        """Image ``rel`` → the splits it is listed under, in listing order: more than one when a data.yaml
        lists one folder under several splits (``train: images``, ``val: images``)."""
        out: dict[str, list[str]] = {}
        for r in self.images:
            if r.split not in out.setdefault(r.rel, []):
                out[r.rel].append(r.split)
        return out

    def class_name(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)

    @property
    def key(self) -> str:
        """Six hex digits that name this dataset's root and data.yaml (resolved absolute paths).

        Why: ``name`` is only the folder's name, and two datasets called ``aquarium/`` in two places are two
        datasets. Everything curate keeps per dataset (its FiftyOne dataset, its default report folder, its
        lock) is named by :attr:`slug`, so one can never be taken for the other.
        """
        ident = f"{Path(self.root).resolve()}\0{Path(self.yaml_path).resolve() if self.yaml_path else ''}"
        return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:6]

    @property
    def slug(self) -> str:
        """``<name>-<key>``: readable, and unique per dataset root (e.g. ``aquarium-3f9c2a``)."""
        return f"{self.name}-{self.key}"


class LabelLookup:
    """``(image rel, line) → (record, label)``: how a box finding finds its class and its neighbours."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.records: dict[str, ImageRecord] = {r.rel: r for r in dataset.images}
        self.labels: dict[tuple[str, int], Label] = {(r.rel, lab.line): lab for r in dataset.images for lab in r.labels}

    def label(self, finding: Finding) -> Label | None:
        if finding.line is None:
            return None
        return self.labels.get((finding.image, finding.line))

    def class_name(self, finding: Finding) -> str:
        """The flagged box's class from the dataset, else what the check wrote in ``data``."""
        lab = self.label(finding)
        if lab is not None:
            return self.dataset.class_name(lab.class_id)
        for key in ("class_name", "class"):
            if key in finding.data:
                value = finding.data[key]
                return self.dataset.class_name(value) if isinstance(value, int) else str(value)
        return ""
