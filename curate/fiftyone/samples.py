"""How a curate label lives in a FiftyOne sample: the fields, the reviewer's tags, boxes and label documents.

Every module of the bridge reads or writes these samples, so their layout is defined once, here: the
loader builds them (:mod:`curate.fiftyone.load`), the diff reads them back (:mod:`curate.fiftyone.diff`),
and a rebuild compares them with what they were loaded with (:mod:`curate.fiftyone.handover`).

Samples
    ``filepath`` the absolute image path; ``tags`` ``[split]``; fields ``split``, ``curate_rel`` (the
    record's ``rel``), ``curate_loaded`` (the labels as loaded, JSON ``[[line, class_id, cx, cy, w, h], …]``, a
    polygon line or a line past the image's edge with ``polygon, raw`` after: :func:`loaded_text`);
    ``ground_truth`` :class:`fo.Detections` in FiftyOne's normalized top-left
    ``[x, y, w, h]``, each detection with ``label`` = class name and attributes ``line`` (1-based line in
    the label file) and ``class_id``; polygon lines also in ``ground_truth_polylines`` (closed, filled,
    same ``line``); ``metadata`` width/height/size/MIME from the file header.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from curate.core.dataset import Label

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    import fiftyone as fo

#: Bump when the way samples are built changes, so existing FiftyOne datasets are rebuilt (a rebuild
#: carries the review over, :func:`curate.fiftyone.load.to_fiftyone`). 2: samples keep the labels they were loaded from.
BRIDGE_VERSION = 2
#: Sample field with the boxes a sample was loaded with: what a reviewer's edits are measured against.
LOADED_FIELD = "curate_loaded"
#: Sample field with the hash of the image file as loaded (:func:`image_hash`; None for an unreadable file): an ``ok``
#: a reviewer gives in the App is for the picture shown, the file as loaded
#: (:func:`curate.fiftyone.diff.ok_on_changed_images`).
IMAGE_HASH_FIELD = "curate_image_hash"
#: Boxes that moved by at most this much (normalized) count as untouched.
BOX_TOLERANCE = 1e-6
#: Sample tag a reviewer sets in the App to leave an image out of the export.
EXCLUDE_TAG = "exclude"
#: Label tag a reviewer sets in the App: "looked at, not a problem".
OK_TAG = "ok"


def loaded_text(labels: list[Label]) -> str:
    """The labels a sample is loaded with, as the JSON stored in :data:`LOADED_FIELD` (floats by repr: exact).

    A box line is ``[line, class_id, cx, cy, w, h]``; a line with numbers of its own beyond its box (a polygon's
    points, a box past the image's edge as written) also has ``polygon, raw`` (each a list or null), so that a
    polygon whose points changed under the same box is a changed line (:func:`same_line`)."""
    return json.dumps([_loaded_row(lab) for lab in labels], separators=(",", ":"))


def _loaded_row(lab: Label) -> list[Any]:
    row: list[Any] = [lab.line, lab.class_id, lab.cx, lab.cy, lab.w, lab.h]
    if lab.polygon is not None or lab.raw is not None:
        row += [None if lab.polygon is None else list(lab.polygon), None if lab.raw is None else list(lab.raw)]
    return row


def same_line(loaded: Label, now: Label) -> bool:
    """Whether a label (``now``, line numbers aside) is the label a sample was loaded with (``loaded``): its class and
    box, and its points, where ``loaded`` has them.

    Why the points: a polygon redrawn under the same box is another outline, so a review made on the old one (an
    ``ok``, a delete) is not for it. A sample loaded by a curate that kept boxes only has none: compared by box,
    as then."""
    if (loaded.class_id, loaded.cx, loaded.cy, loaded.w, loaded.h) != (now.class_id, now.cx, now.cy, now.w, now.h):
        return False
    return (loaded.polygon is None and loaded.raw is None) or (loaded.polygon, loaded.raw) == (now.polygon, now.raw)


def image_hash(path) -> str | None:
    """The hash curate_ok.json ties an image mark to (:func:`curate.io.cache.file_hash`; remembered for the process,
    so the audit, which hashed every image for its caches, pays nothing more); None for a file that cannot be read."""
    from curate.io.cache import file_hash

    try:
        return file_hash(path)
    except OSError:
        return None


def loaded_image_hashes(fo_dataset: "fo.Dataset") -> dict[tuple[str, str], str | None]:
    """``(split, rel)`` → each sample's image hash as loaded (:data:`IMAGE_HASH_FIELD`); empty for a dataset built by a
    curate that kept no image hash."""
    if not fo_dataset.has_sample_field(IMAGE_HASH_FIELD):
        return {}
    splits, rels, hashes = fo_dataset.values(["split", "curate_rel", IMAGE_HASH_FIELD])
    return {(split, rel): h for split, rel, h in zip(splits, rels, hashes) if rel is not None}


def _loaded_labels(text: str) -> list[Label]:
    out = []
    for line, c, cx, cy, w, h, *shape in json.loads(text):
        polygon, raw = (None if v is None else tuple(v) for v in shape) if shape else (None, None)
        out.append(Label(int(c), cx, cy, w, h, line=int(line), polygon=polygon, raw=raw))
    return out


def to_fo_box(label: Label) -> list[float]:
    """YOLO normalized center box → FiftyOne normalized top-left ``[x, y, w, h]``."""
    return [label.cx - label.w / 2, label.cy - label.h / 2, label.w, label.h]


def from_fo_box(box: Iterable[float]) -> tuple[float, float, float, float]:
    """FiftyOne ``[x, y, w, h]`` → YOLO ``(cx, cy, w, h)``."""
    x, y, w, h = (float(v) for v in box)
    return (x + w / 2, y + h / 2, w, h)


def _detection_doc(label: str, box: list[float], **attributes: Any) -> dict[str, Any]:
    """The document FiftyOne stores for ``fo.Detection(label=label, bounding_box=box, **attributes)``
    (same keys, same order; a test compares it with ``fo.Detection(...).to_mongo()``). Building these
    dicts instead of ``fo.Detection`` objects makes loading ~3x faster."""
    from bson import ObjectId

    return {"_id": ObjectId(), "_cls": "Detection", "attributes": {}, "tags": [], "label": label,
            "bounding_box": box, **attributes}  # fmt: skip
