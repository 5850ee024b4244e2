"""The FiftyOne bridge: a curate :class:`~curate.core.dataset.Dataset` in and out of a FiftyOne dataset.

Why a bridge of our own rather than FiftyOne's YOLO importer/exporter: every FiftyOne label must carry
its source line (so an audit finding, a label in the App and an exported line are the same thing), and
the export must keep untouched label files byte-identical and keep background images — FiftyOne's own
YOLO exporter drops images without labels (voxel51/fiftyone#5396). So export goes
``from_fiftyone`` → ``save_yolo`` (our writer).

The FiftyOne dataset is *persistent* and named ``curate-<name>-<key>`` (:attr:`Dataset.slug`: the key
names the dataset's resolved root and data.yaml), so users find it in their own FiftyOne
(``fo.list_datasets()``, the App), and two folders that share a name never share a FiftyOne dataset; its
``info`` records the root it belongs to, and a command given another root refuses it. We never touch
FiftyOne's configuration: whatever database the user configured (``FIFTYONE_DATABASE_DIR``,
``FIFTYONE_DATABASE_URI`` for a team's shared MongoDB…) is the one used.

A reviewer's work in the App (edited, added and deleted boxes, ``ok`` and ``exclude`` tags) lives only in
that FiftyOne dataset until it is exported, so it is never deleted: when the label files change on disk,
:func:`to_fiftyone` rebuilds the dataset and carries each reviewed image over whose label file is still the
one the review was made on (each sample keeps the labels it was loaded from in ``curate_loaded``); an image
reviewed *and* changed on disk cannot be merged safely, so the old FiftyOne dataset is then kept under a
dated name, and a note says so with the command that exports it.

Samples
    ``filepath`` the absolute image path; ``tags`` ``[split]``; fields ``split``, ``curate_rel`` (the
    record's ``rel``), ``curate_loaded`` (the boxes as loaded, JSON ``[[line, class_id, cx, cy, w, h], …]``);
    ``ground_truth`` :class:`fo.Detections` in FiftyOne's normalized top-left
    ``[x, y, w, h]``, each detection with ``label`` = class name and attributes ``line`` (1-based line in
    the label file) and ``class_id``; polygon lines also in ``ground_truth_polylines`` (closed, filled,
    same ``line``); ``metadata`` width/height/size/MIME from the file header.

Audit results (:func:`tag_findings`)
    label tag ``audit:<check>`` and attribute ``audit_<check>`` (score) on flagged detections; sample tag
    ``audit:<check>`` for image-level findings; sample field ``audit_<check>`` = the sample's worst score
    for that check (image, label or region findings) and ``audit_worst`` = its worst score overall;
    region findings (e.g. ``missing``) as detections in ``audit_regions``. Saved views ``audit/<check>``
    and ``audit/all`` (FiftyOne accepts ``/`` in saved-view names; their URL slugs drop it:
    ``audit/grouped`` → ``auditgrouped``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import mimetypes
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from curate.io import locks
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.findings import Finding

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    from concurrent.futures import Future

    import fiftyone as fo

#: Bump when the way samples are built changes, so existing FiftyOne datasets are rebuilt (a rebuild
#: carries the review over, :func:`to_fiftyone`). 2: samples keep the labels they were loaded from.
BRIDGE_VERSION = 2
#: Sample field with the boxes a sample was loaded with: what a reviewer's edits are measured against.
LOADED_FIELD = "curate_loaded"
#: Boxes that moved by at most this much (normalized) count as untouched.
BOX_TOLERANCE = 1e-6
#: Sample tag a reviewer sets in the App to leave an image out of the export.
EXCLUDE_TAG = "exclude"
#: Label tag a reviewer sets in the App: "looked at, not a problem".
OK_TAG = "ok"
#: Prefix of the tags, fields and saved views that :func:`tag_findings` owns (and replaces on re-run).
AUDIT_PREFIX = "audit"
#: Samples per ``add_samples`` batch.
BATCH_SIZE = 500
#: Seconds a ``FIFTYONE_DATABASE_URI`` server has to answer a ping before a command stops.
URI_TIMEOUT_S = 5.0
#: Seconds to wait for another process starting the local database (a cold start is ~8 s; FiftyOne's
#: own wait for mongod's port is 60 s).
START_WAIT_S = 120.0
#: The lock file, inside FiftyOne's database folder, held while the local database is started.
START_LOCK = "curate-start.lock"


# --- fingerprint ------------------------------------------------------------------------------------


def fingerprint(dataset: Dataset, *, version: int = BRIDGE_VERSION) -> str:
    """A hash of everything a FiftyOne copy of ``dataset`` is built from; equal hash = reuse the copy.

    Covers, per image in order: split, rel, absolute image path, image file size and mtime (cheap
    stand-in for the pixels: a replaced image changes both), and the label file's bytes (or, for a
    record edited in memory, its labels); plus the class names and the bridge ``version`` (an older one
    tells whether a dataset built by an older curate was loaded from the files as they are now). Reading
    the label files of 2,000 images takes milliseconds; no image is decoded.
    """
    h = hashlib.sha256()
    h.update(f"curate-fo-v{version}\0".encode())
    h.update("\0".join(dataset.names).encode("utf-8") + b"\1")
    for r in dataset.images:
        try:
            st = r.path.stat()
            img = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            img = "missing"
        h.update(f"{r.split}\0{r.rel}\0{r.path}\0{img}\0".encode("utf-8"))
        if r.edited:
            h.update(repr(r.labels).encode("utf-8"))
        elif r.label_path is not None:
            try:
                h.update(hashlib.sha256(r.label_path.read_bytes()).digest())
            except OSError:
                h.update(b"unreadable")
        h.update(b"\1")
    return h.hexdigest()


# --- Dataset -> FiftyOne ----------------------------------------------------------------------------


def default_name(dataset: Dataset) -> str:
    """The FiftyOne dataset name for ``dataset``: ``curate-<name>-<key>`` (:attr:`Dataset.slug`), one per
    dataset root, so two folders with the same name never share a FiftyOne dataset."""
    return f"curate-{dataset.slug}"


class IdentityError(ValueError):
    """A FiftyOne dataset that belongs to another dataset root (one line for the CLI)."""


#: Suffix of a FiftyOne dataset being built; renamed to its real name once complete.
BUILDING_SUFFIX = "-building"


def owner_root(fo_dataset: "fo.Dataset") -> str | None:
    """The dataset root a curate FiftyOne dataset was loaded from (``info["curate_root"]``)."""
    return fo_dataset.info.get("curate_root")


def check_owner(fo_dataset: "fo.Dataset", dataset: Dataset) -> None:
    """Refuse a FiftyOne dataset loaded from another folder: its labels are not this dataset's."""
    root = owner_root(fo_dataset)
    if root is not None and Path(root).resolve() != Path(dataset.root).resolve():
        raise IdentityError(
            f"FiftyOne dataset {fo_dataset.name!r} belongs to {root}, not to {dataset.root}: refusing to mix their labels"
        )


def find_fiftyone(dataset: Dataset, *, note: Callable[[str], None] | None = None) -> "fo.Dataset | None":
    """``dataset``'s own FiftyOne dataset (:func:`default_name`), or None when there is none yet.

    A dataset built by curate before datasets were named by root (``curate-<name>``) is adopted — renamed
    — when it was loaded from this very root, so a review made with an older curate is not orphaned.
    """
    import fiftyone as fo

    name = default_name(dataset)
    legacy = f"curate-{dataset.name}"
    if not fo.dataset_exists(name) and fo.dataset_exists(legacy):
        old = fo.load_dataset(legacy)
        root = owner_root(old)
        if root is not None and Path(root).resolve() == Path(dataset.root).resolve():
            old.name = name
            if note:
                note(f"FiftyOne dataset {legacy!r} (made by an older curate from this folder) is now {name!r}")
    if not fo.dataset_exists(name):
        return None
    fo_dataset = fo.load_dataset(name)
    check_owner(fo_dataset, dataset)
    return fo_dataset


def to_fiftyone(
    dataset: Dataset, *, name: str | None = None, overwrite: bool = False, note: Callable[[str], None] | None = None
) -> "fo.Dataset":
    """Load ``dataset`` into a persistent FiftyOne dataset, reusing it when nothing changed.

    The existing FiftyOne dataset is returned as is (with the reviewer's edits and the audit tags) when its
    stored fingerprint (``info["curate_fingerprint"]``) equals :func:`fingerprint` of ``dataset``.
    Otherwise a new one is built beside it (``<name>-building``), the review is handed over
    (:func:`_hand_over`: nothing a reviewer did is deleted; ``note`` is told where it went), and the new one
    takes the name. With ``overwrite`` the old one and its review are deleted. The fingerprint is stored
    last and a half-built dataset has the building name, so an interrupted build is rebuilt next time and
    never taken for a finished one.
    """
    import fiftyone as fo

    if name is None:
        existing = find_fiftyone(dataset, note=note)
        name = default_name(dataset)
    else:
        existing = fo.load_dataset(name) if fo.dataset_exists(name) else None
        if existing is not None:
            check_owner(existing, dataset)
    fp = fingerprint(dataset)
    if existing is not None and not overwrite and existing.info.get("curate_fingerprint") == fp:
        return existing

    building = name + BUILDING_SUFFIX
    if fo.dataset_exists(building):  # left by a build that was killed: never finished, holds no review
        fo.delete_dataset(building)
    fo_dataset = _build(dataset, building)
    if existing is not None:
        if overwrite:
            existing.delete()
        else:
            _hand_over(existing, fo_dataset, dataset, note=note)
    fo_dataset.name = name
    fo_dataset.info["curate_fingerprint"] = fp
    fo_dataset.save()
    return fo_dataset


def _build(dataset: Dataset, name: str) -> "fo.Dataset":
    """A new persistent FiftyOne dataset ``name`` holding ``dataset`` (no fingerprint yet)."""
    import fiftyone as fo
    import fiftyone.core.utils as fou

    fo_dataset = fo.Dataset(name, persistent=True)
    _declare_schema(fo, fo_dataset)
    # Two bulk steps instead of add_samples() of fully built samples, which is ~3x slower here (it
    # builds every label as a mongoengine document, twice): bare samples first, then all labels in one
    # bulk update each, as the documents FiftyOne would store (checked by a test against FiftyOne's own).
    ids = fo_dataset.add_samples(
        _bare_samples(dataset),
        expand_schema=False,
        batcher=functools.partial(fou.StaticBatcher, batch_size=BATCH_SIZE),
        progress=False,  # our own rich bar in _bare_samples
        num_samples=len(dataset.images),
    )
    fo_dataset.set_values(
        "ground_truth",
        {sid: _detections_doc(dataset, r) for sid, r in zip(ids, dataset.images)},
        key_field="id",
        validate=False,
        expand_schema=False,
    )
    polylines = {sid: _polylines(fo, dataset, r) for sid, r in zip(ids, dataset.images) if _has_polygon(r)}
    if polylines:
        fo_dataset.set_values("ground_truth_polylines", polylines, key_field="id", expand_schema=False)
    fo_dataset.default_classes = list(dataset.names)
    fo_dataset.info.update(
        {
            "curate_root": str(Path(dataset.root).resolve()),
            "curate_yaml": str(Path(dataset.yaml_path).resolve()) if dataset.yaml_path else None,
            "curate_names": list(dataset.names),
            "curate_bridge_version": BRIDGE_VERSION,
        }
    )
    fo_dataset.save()
    return fo_dataset


def loaded_text(labels: list[Label]) -> str:
    """The boxes a sample is loaded with, as the JSON stored in :data:`LOADED_FIELD` (floats by repr: exact)."""
    return json.dumps([[lab.line, lab.class_id, lab.cx, lab.cy, lab.w, lab.h] for lab in labels], separators=(",", ":"))


def _loaded_labels(text: str) -> list[Label]:
    return [Label(int(c), cx, cy, w, h, line=int(line)) for line, c, cx, cy, w, h in json.loads(text)]


def to_fo_box(label: Label) -> list[float]:
    """YOLO normalized center box → FiftyOne normalized top-left ``[x, y, w, h]``."""
    return [label.cx - label.w / 2, label.cy - label.h / 2, label.w, label.h]


def from_fo_box(box: Iterable[float]) -> tuple[float, float, float, float]:
    """FiftyOne ``[x, y, w, h]`` → YOLO ``(cx, cy, w, h)``."""
    x, y, w, h = (float(v) for v in box)
    return (x + w / 2, y + h / 2, w, h)


def _declare_schema(fo: Any, fo_dataset: "fo.Dataset") -> None:
    """Declare every field up front, so adding samples needs no per-sample schema inference."""
    fo_dataset.media_type = "image"
    fo_dataset.add_sample_field("split", fo.StringField)
    fo_dataset.add_sample_field("curate_rel", fo.StringField)
    fo_dataset.add_sample_field(LOADED_FIELD, fo.StringField)
    fo_dataset.add_sample_field("ground_truth", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    fo_dataset.add_sample_field("ground_truth_polylines", fo.EmbeddedDocumentField, embedded_doc_type=fo.Polylines)
    for path in ("ground_truth.detections", "ground_truth_polylines.polylines"):
        fo_dataset.add_sample_field(f"{path}.line", fo.IntField)
        fo_dataset.add_sample_field(f"{path}.class_id", fo.IntField)


def _bare_samples(dataset: Dataset) -> Iterator["fo.Sample"]:
    """Samples without labels: filepath, split tag and fields, header metadata."""
    import fiftyone as fo

    for record in _progress(dataset.images, "Loading into FiftyOne"):
        yield fo.Sample(
            filepath=str(record.path),
            tags=[record.split],
            split=record.split,
            curate_rel=record.rel,
            curate_loaded=loaded_text(record.labels),
            metadata=_metadata(fo, record),
        )


def _detection_doc(label: str, box: list[float], **attributes: Any) -> dict[str, Any]:
    """The document FiftyOne stores for ``fo.Detection(label=label, bounding_box=box, **attributes)``
    (same keys, same order; a test compares it with ``fo.Detection(...).to_mongo()``). Building these
    dicts instead of ``fo.Detection`` objects makes loading ~3x faster."""
    from bson import ObjectId

    return {"_id": ObjectId(), "_cls": "Detection", "attributes": {}, "tags": [], "label": label,
            "bounding_box": box, **attributes}  # fmt: skip


def _detections_doc(dataset: Dataset, record: ImageRecord) -> dict[str, Any]:
    """A record's labels as FiftyOne's stored ``fo.Detections`` document (empty for a background)."""
    return {
        "_cls": "Detections",
        "detections": [
            _detection_doc(dataset.class_name(lab.class_id), to_fo_box(lab), line=lab.line, class_id=lab.class_id)
            for lab in record.labels
        ],
    }


def _has_polygon(record: ImageRecord) -> bool:
    return any(lab.polygon is not None for lab in record.labels)


def _polylines(fo: Any, dataset: Dataset, record: ImageRecord) -> "fo.Polylines":
    """A record's polygon labels as closed, filled polylines (for display; boxes stay authoritative)."""
    return fo.Polylines(
        polylines=[
            fo.Polyline(
                label=dataset.class_name(lab.class_id),
                points=[list(zip(lab.polygon[0::2], lab.polygon[1::2]))],
                closed=True,
                filled=True,
                line=lab.line,
                class_id=lab.class_id,
            )
            for lab in record.labels
            if lab.polygon is not None
        ]
    )


def _metadata(fo: Any, record: ImageRecord) -> Any:
    """Image metadata from the file header (PIL), much faster than ``compute_metadata()``."""
    try:
        width, height = record.size
        size_bytes = record.path.stat().st_size
    except Exception:  # unreadable image: the reader already reported it; leave metadata empty
        return None
    mime = mimetypes.guess_type(record.path.name)[0] or "image/" + record.path.suffix.lstrip(".").lower()
    return fo.ImageMetadata(width=width, height=height, size_bytes=size_bytes, mime_type=mime)


def _progress(items: list[Any], description: str) -> Iterator[Any]:
    """Iterate with a transient rich progress bar on stderr (only for enough items to wait for)."""
    if len(items) < 200:
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    yield from track(items, description=description, console=Console(stderr=True), transient=True)


# --- FiftyOne -> Dataset ----------------------------------------------------------------------------

CHANGE_KINDS = ("edited", "added", "deleted", "relabeled", "excluded")


@dataclass(frozen=True)
class Change:
    """One reviewer edit, as written to ``changes.csv``.

    ``line`` is the 1-based line in the *original* label file for edited/relabeled/deleted labels, the
    line in the *written* label file for added ones, and None for excluded images. ``before``/``after``
    are YOLO-style ``"class_id cx cy w h"`` texts ("" where there is none). A label whose class and box
    both changed is one ``relabeled`` change.
    """

    image: str
    line: int | None
    kind: str
    before: str = ""
    after: str = ""
    split: str = ""  # the listing's split: a file listed under two splits is two records
    source: str = "review"  # "proposed": an audit proposal the reviewer accepted, or the batch bar did
    confidence: float | None = None  # the proposal's confidence


def from_fiftyone(fo_dataset: "fo.Dataset", original: Dataset, *, min_confidence: float | None = None) -> tuple[Dataset, list[Change]]:
    """The dataset as reviewed in FiftyOne, ready for :func:`curate.io.yolo.save_yolo`.

    ``ground_truth`` is authoritative (``ground_truth_polylines`` is for display only). A sample whose
    detections all match their original label (same ``line``, class and box within
    :data:`BOX_TOLERANCE`) keeps its original record, so ``edited`` stays False and the writer copies its
    label file byte for byte. Otherwise the record is ``edited=True`` with labels in original line order
    (moved/resized/relabeled ones in place, deleted ones gone), then added detections (no ``line``);
    lines are renumbered to their position in the new file. A polygon whose box was moved or resized is
    mapped into the new box. Samples tagged ``exclude`` are left out; images of ``original`` that are
    not in ``fo_dataset`` (e.g. it is a view) are kept unchanged. Proposals the reviewer tagged ``accept``
    (and, with ``min_confidence``, every untagged one at or above it) are applied first
    (:mod:`curate.fiftyone.proposals`). Returns the new dataset and the changes, in dataset order then line order.
    """
    review = _review(fo_dataset, original, min_confidence)
    warnings = list(original.warnings) + review.warnings
    if review.unknown:
        warnings.append(
            f"{len(review.unknown)} FiftyOne sample(s) not in the dataset were ignored, e.g. {review.unknown[0]}"
        )
    return dataclasses.replace(original, images=review.images, warnings=warnings), review.changes


@dataclass
class _Review:
    images: list[ImageRecord]
    changes: list[Change]
    # (split, rel) of an edited record -> {original line: line in the new file}. Keyed by split too, as the
    # samples are: a file listed under several splits is one sample (and one written file) per listing.
    line_maps: dict[tuple[str, str], dict[int, int]]
    excluded: set[tuple[str, str]]  # (split, rel) of the samples tagged ``exclude``
    unknown: list[str]  # rels of FiftyOne samples that are not in the dataset
    warnings: list[str] = dataclasses.field(default_factory=list)  # proposals left out


def _review(fo_dataset: "fo.Dataset", original: Dataset, min_confidence: float | None = None) -> _Review:
    from curate.fiftyone.proposals import accepted_proposals, apply, mark_proposed

    by_key = _reviewed_labels(fo_dataset)
    accepted = accepted_proposals(fo_dataset, min_confidence)
    review = _Review([], [], {}, set(), sorted({rel for _, rel in by_key} - {r.rel for r in original.images}))
    for record in original.images:
        if (record.split, record.rel) not in by_key:
            review.images.append(record)
            continue
        sample_tags, detections = by_key[(record.split, record.rel)]
        if EXCLUDE_TAG in sample_tags:
            review.changes.append(Change(record.rel, None, "excluded", split=record.split))
            review.excluded.add((record.split, record.rel))
            continue
        applied = []
        if (record.split, record.rel) in accepted:
            detections, applied, left_out = apply(record, detections, accepted[(record.split, record.rel)], original)
            review.warnings.extend(left_out)
        new_record, record_changes, line_map = _diff_record(record, detections, original)
        if applied:
            record_changes = mark_proposed(record_changes, applied, record)
        review.images.append(new_record)
        review.changes.extend(record_changes)
        if new_record.edited:
            review.line_maps[(record.split, record.rel)] = line_map
    return review


@dataclass(frozen=True)
class _Box:
    """A detection as read back from FiftyOne (``line``/``class_id`` None when the App added it)."""

    label: str | None
    bounding_box: list[float]
    line: int | None
    class_id: int | None


def _reviewed_labels(fo_dataset: "fo.Dataset") -> dict[tuple[str, str], tuple[list[str], list[_Box]]]:
    """``(split, rel) -> (sample tags, detections)``, read as plain values (no label objects: fast).

    Keyed by split too: a file listed under several splits (``train: images``, ``val: images``) is one
    sample per split, and keyed by ``rel`` alone the last sample's labels replaced every copy's, so an
    edit made on the train copy was lost.
    """
    attrs = ("label", "bounding_box", "line", "class_id")
    paths = ["curate_rel", "split", "tags"] + [f"ground_truth.detections.{k}" for k in attrs]
    rels, splits, tags, labels, boxes, lines, class_ids = fo_dataset.values(paths)
    out = {}
    for rel, split, t, ls, bs, ns, cs in zip(rels, splits, tags, labels, boxes, lines, class_ids):
        if rel is None:
            continue
        dets = [_Box(*row) for row in zip(ls or [], bs or [], ns or [], cs or [])]
        out[(split, rel)] = (t or [], dets)
    return out


def _diff_record(
    record: ImageRecord, detections: list[_Box], dataset: Dataset
) -> tuple[ImageRecord, list[Change], dict[int, int]]:
    """Compare one sample's detections with its record's labels (matched by ``line``).

    Returns the record (the original object when nothing changed), its changes, and for an edited
    record where each kept original line lands in the rewritten file.
    """
    original = {lab.line: lab for lab in record.labels}
    seen: set[int] = set()
    changed: dict[int, Label] = {}
    added: list[Label] = []
    changes: list[Change] = []
    for det in detections:
        line = det.line
        class_id = _class_id(det, dataset, record.rel)
        cx, cy, w, h = from_fo_box(det.bounding_box)
        if line in original and line not in seen:
            seen.add(line)
            old = original[line]
            same_box = all(abs(a - b) <= BOX_TOLERANCE for a, b in zip((cx, cy, w, h), (old.cx, old.cy, old.w, old.h)))
            if same_box and class_id == old.class_id:
                continue
            polygon = old.polygon if same_box else _move_polygon(old, (cx, cy, w, h))
            new = Label(class_id, cx, cy, w, h, line=old.line, polygon=polygon)
            changed[line] = new
            kind = "relabeled" if class_id != old.class_id else "edited"
            changes.append(Change(record.rel, line, kind, _label_text(old), _label_text(new), split=record.split))
        else:
            added.append(Label(class_id, cx, cy, w, h, line=0))
    deleted = [lab for lab in record.labels if lab.line not in seen]
    if not changed and not added and not deleted:
        return record, [], {}
    changes.extend(Change(record.rel, lab.line, "deleted", _label_text(lab), "", split=record.split) for lab in deleted)
    kept = [changed.get(lab.line, lab) for lab in record.labels if lab.line in seen]
    labels = [dataclasses.replace(lab, line=i) for i, lab in enumerate(kept + added, start=1)]
    changes.extend(Change(record.rel, lab.line, "added", "", _label_text(lab), split=record.split) for lab in labels[len(kept) :])
    changes.sort(key=lambda c: (c.kind == "added", c.line or 0))
    line_map = {lab.line: i for i, lab in enumerate(kept, start=1)}
    return dataclasses.replace(record, labels=labels, edited=True), changes, line_map


def _class_id(det: _Box, dataset: Dataset, rel: str) -> int:
    """The class of a detection from its ``label`` (the App edits the label, not our ``class_id``)."""
    label = det.label
    stored = det.class_id
    if isinstance(stored, int) and dataset.class_name(stored) == label:
        return stored
    if label in dataset.names:
        return dataset.names.index(label)
    raise ValueError(
        f"{rel}: class {label!r} is not one of the dataset's classes ({', '.join(dataset.names)}); "
        "relabel it in the App to a known class"
    )


def _move_polygon(old: Label, box: tuple[float, float, float, float]) -> tuple[float, ...] | None:
    """Map a polygon from its old box into the new one (keeps the shape when a box is moved/resized)."""
    if old.polygon is None:
        return None
    cx, cy, w, h = box
    sx = w / old.w if old.w else 1.0
    sy = h / old.h if old.h else 1.0
    ox, oy = old.cx - old.w / 2, old.cy - old.h / 2
    nx, ny = cx - w / 2, cy - h / 2
    out: list[float] = []
    for x, y in zip(old.polygon[0::2], old.polygon[1::2]):
        out += [nx + (x - ox) * sx, ny + (y - oy) * sy]
    return tuple(out)


def _label_text(label: Label) -> str:
    return f"{label.class_id} {label.cx:.6f} {label.cy:.6f} {label.w:.6f} {label.h:.6f}"


def ok_labels(fo_dataset: "fo.Dataset", original: Dataset | None = None) -> list[tuple[str, int]]:
    """``(image rel, line)`` of the labels a reviewer tagged ``ok`` (not a problem), sorted.

    Export writes them to a sidecar so a later audit does not flag them again. Without ``original``
    the lines are those of the original label files. With it, they are the lines in the files that
    ``save_yolo(from_fiftyone(fo_dataset, original)[0], …)`` writes (:func:`ok_marks`: a label file
    rewritten because of other edits is renumbered, ok-tagged labels of excluded images are dropped; rels
    stay the original ones, the writer's layout maps them). Added detections (no ``line``) are skipped.
    """
    if original is None:
        return sorted({(rel, line) for _, rel, line in _ok_tagged(fo_dataset)})
    return sorted({(m.rel, m.written) for m in ok_marks(fo_dataset, original)})


@dataclass(frozen=True)
class OkMark:
    """An ``ok`` label in one listing (``split``, ``rel``) of its image: ``line`` in the original label file,
    ``written`` its line in the label file the export writes for that listing."""

    split: str
    rel: str
    line: int
    written: int


def ok_marks(fo_dataset: "fo.Dataset", original: Dataset, *, min_confidence: float | None = None) -> list[OkMark]:
    """The ``ok`` tags, addressed to the label files that ``save_yolo(from_fiftyone(fo_dataset, original)[0], …)``
    writes, sorted.

    A mark follows its label when other lines of its file are deleted (renumbered) and goes with its label
    or its sample (deleted, excluded). One image file listed under several splits is one sample per
    listing and, once exported, one label file per listing: a mark given on one listing holds for every
    listing whose copy of that label is unchanged: before the export the listings share one label file,
    and an audit of the input reads a mark for all of them (:func:`curate.audit.runner.load_ok_marks` keys marks
    by rel), so an audit of the export should too.
    """
    tagged = _ok_tagged(fo_dataset)
    if not tagged:
        return []
    review = _review(fo_dataset, original, min_confidence)
    originals = {(r.split, r.rel): {lab.line: lab for lab in r.labels} for r in original.images}
    written = {(r.split, r.rel): {lab.line: lab for lab in r.labels} for r in review.images}
    splits_of = original.splits_by_file()
    out: set[OkMark] = set()
    for tagged_split, rel, line in tagged:
        for split in splits_of.get(rel, []):
            key = (split, rel)
            old = originals[key].get(line)
            if key in review.excluded or key not in written or old is None:
                continue
            new_line = review.line_maps[key].get(line) if key in review.line_maps else line
            if new_line is None:  # the label itself was deleted on this listing
                continue
            if split != tagged_split and written[key].get(new_line) != dataclasses.replace(old, line=new_line):
                continue  # this listing's copy of the label was edited: the mark was not given for it
            out.add(OkMark(split, rel, line, new_line))
    return sorted(out, key=lambda m: (m.rel, m.split, m.line))


def _ok_tagged(fo_dataset: "fo.Dataset") -> set[tuple[str, str, int]]:
    """``(split, rel, original line)`` of every detection tagged ``ok``."""
    from fiftyone import ViewField as F

    view = fo_dataset.filter_labels("ground_truth", F("tags").contains(OK_TAG))
    splits, rels, lines = view.values(["split", "curate_rel", "ground_truth.detections.line"])
    return {(split, rel, int(line)) for split, rel, ls in zip(splits, rels, lines) for line in (ls or []) if line is not None}


# --- a rebuild hands the review over ---------------------------------------------------------------


@dataclass
class _Reviewed:
    """One sample of the old FiftyOne dataset that holds a reviewer's work."""

    sample_id: str
    tags: list[str]  # the reviewer's sample tags (no split, no audit tags)
    carry: bool  # its label file is still the one the review was made on


def _hand_over(old: "fo.Dataset", new: "fo.Dataset", dataset: Dataset, *, note: Callable[[str], None] | None) -> None:
    """Carry the review held in ``old`` over to ``new`` (just built from ``dataset``); delete ``old`` only
    when all of it was carried.

    A sample is *reviewed* when its boxes differ from those it was loaded with (matched by line, as the
    export matches them) or it or one of its boxes carries a tag of the reviewer's (``ok``, ``exclude``, any
    tag that is neither its split nor an ``audit:`` tag). A reviewed sample whose listing still has the
    labels the review was made on is carried over: its boxes (audit marks dropped) and the reviewer's tags.
    One whose label file changed on disk since, or whose image is gone, cannot be merged without guessing
    which version is right, so then ``old`` is kept whole under ``<name>-review-<date>``, and ``note`` gives
    the command that exports it.
    """
    reviewed = _reviewed_samples(old, dataset)
    kept_name = None
    if any(not r.carry for r in reviewed.values()):
        kept_name = f"{old.name}-review-{time.strftime('%Y%m%d-%H%M%S')}"
        old.name = kept_name
    carried = {key: r for key, r in reviewed.items() if r.carry}
    if carried:
        _carry(old, new, carried)
    if kept_name is None:
        old.delete()
    if note and carried:
        note(f"FiftyOne: the review of {len(carried)} image(s) was carried over to the rebuilt dataset")
    if note and kept_name:
        lost = sum(1 for r in reviewed.values() if not r.carry)
        note(
            f"FiftyOne: {lost} reviewed image(s) changed on disk since their review; the whole review is kept in "
            f"FiftyOne dataset {kept_name!r}: curate export {dataset.root} --from-fiftyone {kept_name} --out NEW/"
        )


def _reviewed_samples(old: "fo.Dataset", dataset: Dataset) -> dict[tuple[str, str], _Reviewed]:
    """``(split, rel)`` → each sample of ``old`` that holds review work (see :func:`_hand_over`)."""
    has_loaded = old.has_sample_field(LOADED_FIELD)
    # A dataset built by an older curate has no loaded labels; if it was loaded from the files as they are
    # now (its own fingerprint still holds), those files are what it was loaded with.
    old_version = int(old.info.get("curate_bridge_version", 1))
    files_as_loaded = old.info.get("curate_fingerprint") == fingerprint(dataset, version=old_version)
    records = {(r.split, r.rel): r for r in dataset.images}
    attrs = ("label", "bounding_box", "line", "class_id", "tags")
    paths = ["id", "split", "curate_rel", "tags"] + [f"ground_truth.detections.{k}" for k in attrs]
    paths += [LOADED_FIELD] if has_loaded else []
    values = list(old.values(paths))
    if not has_loaded:
        values.append([None] * len(values[0]))
    from curate.fiftyone.proposals import PROPOSALS_FIELD

    if old.has_sample_field(PROPOSALS_FIELD):  # a proposal tagged accept/reject is review work too
        values.append(old.values(f"{PROPOSALS_FIELD}.detections.tags"))
    else:
        values.append([None] * len(values[0]))
    out: dict[tuple[str, str], _Reviewed] = {}
    for sid, split, rel, tags, ls, bs, ns, cs, lts, loaded, pts in zip(*values):
        if rel is None:
            continue
        key = (split, rel)
        record = records.get(key)
        reviewer_tags = [t for t in tags or [] if t != split and not _is_audit_tag(t)]
        label_tagged = any(not _is_audit_tag(t) for ts in [*(lts or []), *(pts or [])] for t in ts or [])
        if loaded is not None:
            base = _loaded_labels(loaded)
        elif files_as_loaded and record is not None:
            base = record.labels
        else:
            base = None  # what it was loaded with is unknown
        reference = base if base is not None else (record.labels if record is not None else [])
        dets = [_Box(*row) for row in zip(ls or [], bs or [], ns or [], cs or [])]
        if not (reviewer_tags or label_tagged or _edited(reference, dets, dataset, key)):
            continue
        same_file = base is not None and record is not None and _same_boxes(base, record.labels)
        out[key] = _Reviewed(sid, reviewer_tags, carry=same_file)
    return out


def _edited(labels: list[Label], detections: list[_Box], dataset: Dataset, key: tuple[str, str]) -> bool:
    """Whether ``detections`` differ from ``labels`` as the export would see it (any change at all)."""
    record = ImageRecord(key[0], Path(key[1]), key[1], labels=list(labels))
    try:
        return bool(_diff_record(record, detections, dataset)[1])
    except ValueError:  # a class the dataset doesn't know: the reviewer typed it
        return True


def _same_boxes(a: list[Label], b: list[Label]) -> bool:
    key = lambda lab: (lab.line, lab.class_id, lab.cx, lab.cy, lab.w, lab.h)  # noqa: E731
    return [key(x) for x in a] == [key(x) for x in b]


def _carry(old: "fo.Dataset", new: "fo.Dataset", carried: dict[tuple[str, str], _Reviewed]) -> None:
    """Copy the boxes and the reviewer's tags of ``carried`` samples of ``old`` onto ``new``'s samples."""
    import fiftyone as fo

    new_ids = {(split, rel): sid for sid, split, rel in zip(*new.values(["id", "split", "curate_rel"]))}
    by_old_id = {r.sample_id: key for key, r in carried.items()}
    from curate.fiftyone.proposals import PROPOSALS_FIELD

    has_proposals = old.has_sample_field(PROPOSALS_FIELD)
    boxes: dict[str, Any] = {}
    tags: dict[str, list[str]] = {}
    proposals: dict[str, Any] = {}
    fields = ["ground_truth", "tags"] + ([PROPOSALS_FIELD] if has_proposals else [])
    for sample in old.select(list(by_old_id)).select_fields(fields):
        key = by_old_id[sample.id]
        sid = new_ids[key]
        dets = []
        for det in (sample.ground_truth.detections if sample.ground_truth else []):
            d = det.to_dict()
            d.pop("_id", None)
            d["tags"] = [t for t in d.get("tags", []) if not _is_audit_tag(t)]
            for k in [k for k in d if k.startswith(f"{AUDIT_PREFIX}_")]:
                del d[k]
            dets.append(fo.Detection.from_dict(d))
        boxes[sid] = fo.Detections(detections=dets)
        tags[sid] = [key[0], *carried[key].tags]
        if has_proposals and sample[PROPOSALS_FIELD] is not None:
            proposals[sid] = sample[PROPOSALS_FIELD].copy()
    new.set_values("ground_truth", boxes, key_field="id")
    new.set_values("tags", tags, key_field="id")
    if proposals:
        new.set_values(PROPOSALS_FIELD, proposals, key_field="id")


# --- audit findings -> tags, fields and saved views -------------------------------------------------


def audit_tag(check: str) -> str:
    """The sample/label tag of a check: ``audit:<check>``."""
    return f"{AUDIT_PREFIX}:{check}"


def audit_field(check: str) -> str:
    """The sample field / detection attribute holding a check's score: ``audit_<check>``."""
    return f"{AUDIT_PREFIX}_{check}"


def audit_view_name(check: str) -> str:
    """The saved view of a check: ``audit/<check>`` (``audit/all`` for all checks)."""
    return f"{AUDIT_PREFIX}/{check}"


#: Sample field with a sample's worst audit score over all checks (sorts ``audit/all``).
WORST_FIELD = f"{AUDIT_PREFIX}_worst"
#: Sample field with region findings (e.g. ``missing``) as detections: label = check, confidence = score.
REGIONS_FIELD = f"{AUDIT_PREFIX}_regions"


@dataclass
class _Marks:
    """What :func:`tag_findings` will write, gathered from the findings before touching the database."""

    # check -> (sample id, label id) -> worst score
    label: dict[str, dict[tuple[str, str], float]] = dataclasses.field(default_factory=dict)
    sample_tag: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # sid -> checks tagged on the sample
    sample_score: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # check -> sid -> worst
    regions: dict[str, list[Finding]] = dataclasses.field(default_factory=dict)  # sid -> region findings
    unmatched: int = 0  # findings whose image is not in the FiftyOne dataset


@dataclass
class _State:
    """The ids, lines and tags of a FiftyOne dataset, read in one query."""

    sample_ids: list[str]
    rels: list[str | None]
    sample_tags: list[list[str]]
    label_ids: list[list[str]]
    lines: list[list[int | None]]
    label_tags: list[list[list[str]]]

    @classmethod
    def read(cls, fo_dataset: "fo.Dataset") -> "_State":
        sids, rels, tags, lids, lines, ltags = fo_dataset.values(
            ["id", "curate_rel", "tags"] + [f"ground_truth.detections.{k}" for k in ("id", "line", "tags")]
        )
        return cls(sids, rels, [t or [] for t in tags], [x or [] for x in lids], [x or [] for x in lines],
                   [[t or [] for t in x] if x else [] for x in ltags])  # fmt: skip


class DatabaseError(Exception):
    """FiftyOne's database cannot be reached or started (one line for the CLI, naming the server or folder)."""


def check_server(timeout_s: float = URI_TIMEOUT_S) -> None:
    """With ``FIFTYONE_DATABASE_URI`` (or FiftyOne's ``database_uri``) set, ping that server first.

    Why: a server that is down otherwise costs pymongo's 30 s server selection twice (64 s measured) and
    ends in an 8-line topology dump. One ping with a short server-selection timeout answers within
    seconds; the error names the URI (without its password). Without a configured server it does nothing.
    """
    import fiftyone as fo
    import pymongo

    uri = fo.config.database_uri
    if not uri:
        return
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=int(timeout_s * 1000), connect=False)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        reason = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
        where = f"{_safe_uri(uri)} (FIFTYONE_DATABASE_URI)"
        raise DatabaseError(f"cannot reach FiftyOne's database {where} within {timeout_s:g} s: {reason}") from None
    finally:
        client.close()


def _safe_uri(uri: str) -> str:
    """``uri`` without the password of its ``user:password@`` part, for messages."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", uri)


def connect_database() -> None:
    """Connect to FiftyOne's database now: :func:`check_server`, then start or join the local one.

    Why a lock around the local start: FiftyOne starts its own mongod when none of its database services
    runs, and two processes that start at once both launch one on the same folder; the second mongod
    exits (``DBPathInUse``) and its process failed after 70 s (``ServiceListenTimeout``). Holding
    ``<database dir>/curate-start.lock`` while connecting makes the second process wait until the first's
    mongod listens, then join it as FiftyOne's own service registry allows. A ``database_uri`` server needs
    no lock: nothing is started.
    """
    check_server()
    _connect()


def _connect() -> None:
    """:func:`connect_database` after :func:`check_server`: the local start under its lock."""
    import fiftyone as fo
    from fiftyone.core.odm import database

    try:
        if fo.config.database_uri:
            database.get_db_conn()
            return
        folder = Path(fo.config.database_dir)
        with locks.hold(folder / START_LOCK, command="curate (starting FiftyOne's database)", timeout=START_WAIT_S):
            database.get_db_conn()
    except locks.LockTimeout as exc:
        raise DatabaseError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 — pymongo, FiftyOne service and OS errors: one line, not a dump
        if fo.config.database_uri:
            where = _safe_uri(fo.config.database_uri)
        else:
            where = f"in {fo.config.database_dir} (its log: {Path(fo.config.database_dir) / 'log' / 'mongo.log'})"
        raise DatabaseError(f"FiftyOne's database {where} failed to connect: {type(exc).__name__}: {exc}") from exc


def start_database() -> "Future[None]":
    """Start FiftyOne's database in a background thread, so that its cold start overlaps the audit's checks.

    A cold start is about 8 s: mongod launches and FiftyOne polls its port. Only the connection is made
    in the background. The samples are loaded afterwards, in the caller's thread, because building them
    holds the GIL. Measured on food-ingredients `--fast` with a fresh database, 2 runs each: serial
    37–41 s, connect in the background 26–31 s, connect and load in the background 36–40 s (the load
    slowed the hashing threads 3×).

    A configured server (``FIFTYONE_DATABASE_URI``) is pinged here, in the caller's thread, so that a
    server that is down stops the command within seconds (:class:`DatabaseError`), before the checks run.

    FiftyOne, and with it scikit-learn, is imported here in the caller's thread before the thread starts:
    two threads importing the same packages at once can deadlock on the import locks. Wait for the
    thread with :func:`wait_database` before any other FiftyOne call.
    """
    from concurrent.futures import ThreadPoolExecutor

    import fiftyone  # noqa: F401
    from fiftyone.core.odm import database  # noqa: F401

    check_server()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-fiftyone-db")
    future = pool.submit(_connect)  # check_server() ran above
    pool.shutdown(wait=False)
    return future


def wait_database(future: "Future[None]") -> None:
    """Wait for :func:`start_database`; its failure is raised here, as a one-line :class:`DatabaseError`."""
    future.result()


def tag_findings(fo_dataset: "fo.Dataset", findings: list[Finding], *, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Mark audit findings in FiftyOne and save one view per check, replacing any earlier audit marks
    except those of the checks in ``keep`` (checks this audit did not run, e.g. the pixel checks under
    ``--fast``: a quick run must not erase what the full audit found).

    - a finding with a ``line`` tags that detection ``audit:<check>`` and sets its attribute
      ``audit_<check>`` (the worst score if several findings hit it); a line that is no detection (e.g. a
      malformed line the reader skipped) is treated as image-level;
    - an image-level finding tags the sample ``audit:<check>``;
    - a region finding becomes a detection in ``audit_regions`` (label = check, confidence = score,
      tagged ``audit:<check>``);
    - every sample with a finding gets the field ``audit_<check>`` = its worst score for that check
      (whatever the kind), and ``audit_worst`` = its worst over all checks (kept ones included);
    - saved views ``audit/<check>`` (samples with a finding of that check, worst first) and ``audit/all``.

    Tags that are not ours (``ok``, ``exclude``, splits) are kept. Findings for images not in
    ``fo_dataset`` (dataset-level notes, label files without an image) are skipped. All writes are bulk
    (``set_values``/``set_label_values``): a handful of database round trips, not one per sample.
    """
    made_from = _findings_digest(findings) + "|kept:" + ",".join(sorted(keep))
    if fo_dataset.info.get(AUDIT_DIGEST_KEY) == _audit_digest(fo_dataset, made_from):
        return  # this dataset already carries exactly these marks: a re-run with no change skips the rewrite
    state = _State.read(fo_dataset)
    marks = _gather(state, findings)
    kept_scores, kept_regions = _kept_marks(fo_dataset, keep)
    _clear_audit_fields(fo_dataset, keep)
    _write_tags(fo_dataset, state, marks, keep)
    worst: dict[str, float] = {}
    for scores in [*marks.sample_score.values(), *kept_scores.values()]:
        for sid, s in scores.items():
            worst[sid] = max(worst.get(sid, 0.0), s)
    regions = {sid: _region_detections(marks.regions.get(sid, []), kept_regions.get(sid, []))
               for sid in set(marks.regions) | set(kept_regions)}  # fmt: skip
    _declare_audit_fields(fo_dataset, marks, worst=bool(worst), regions=bool(regions))

    # fields are declared above, so no per-value schema inference (expand_schema=False)
    for check, scores in marks.label.items():
        items = [{"sample_id": sid, "label_id": lid, "value": s} for (sid, lid), s in scores.items()]
        fo_dataset.set_label_values(f"ground_truth.detections.{audit_field(check)}", items)
    for check, scores in marks.sample_score.items():
        fo_dataset.set_values(audit_field(check), scores, key_field="id", expand_schema=False)
    if worst:
        fo_dataset.set_values(WORST_FIELD, worst, key_field="id", expand_schema=False)
    if regions:
        fo_dataset.set_values(REGIONS_FIELD, regions, key_field="id", expand_schema=False, validate=False)

    for check in sorted(marks.sample_score):
        _save_worst_first(fo_dataset, audit_view_name(check), audit_field(check), f"{check}, worst first")
    if worst:
        _save_worst_first(fo_dataset, audit_view_name("all"), WORST_FIELD, "all checks, worst first")
    fo_dataset.info[AUDIT_DIGEST_KEY] = _audit_digest(fo_dataset, made_from)  # the views just saved count too
    fo_dataset.save()


def _kept_marks(fo_dataset: "fo.Dataset", keep: set[str] | frozenset[str]) -> tuple[dict[str, dict[str, float]], dict[str, list[dict[str, Any]]]]:
    """The sample scores (check → sample id → score) and region documents (sample id → docs) that the checks in
    ``keep`` wrote in an earlier audit."""
    if not keep:
        return {}, {}
    schema = fo_dataset.get_field_schema(flat=True)
    scores: dict[str, dict[str, float]] = {}
    for check in sorted(keep):
        if audit_field(check) in schema:
            ids, values = fo_dataset.values(["id", audit_field(check)])
            scores[check] = {sid: v for sid, v in zip(ids, values) if v is not None}
    regions: dict[str, list[dict[str, Any]]] = {}
    if REGIONS_FIELD in schema:
        paths = ["id"] + [f"{REGIONS_FIELD}.detections.{k}" for k in ("label", "bounding_box", "confidence")]
        for sid, labels, boxes, confs in zip(*fo_dataset.values(paths)):
            for label, box, conf in zip(labels or [], boxes or [], confs or []):
                if label in keep:
                    doc = _detection_doc(label, list(box), confidence=conf)
                    doc["tags"] = [audit_tag(label)]
                    regions.setdefault(sid, []).append(doc)
    return scores, regions


AUDIT_DIGEST_KEY = "curate_audit_digest"  # in ``fo_dataset.info``: what the audit marks were made from


def _findings_digest(findings: list[Finding]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for f in findings:
        h.update(f"{f.check}|{f.image}|{f.line}|{f.score:.6f}|{f.region}\n".encode())
    return h.hexdigest()


def _audit_digest(fo_dataset: "fo.Dataset", findings_digest: str) -> str:
    """The findings (their digest), the samples and boxes they were written onto, and the saved audit views.

    Any change to one of these (a new audit result, a box added or deleted in the App, a view removed by
    hand) changes the digest, so the marks are written again; two cheap aggregations, not a full read.
    """
    views = sorted(v for v in fo_dataset.list_saved_views() if v.startswith(f"{AUDIT_PREFIX}/"))
    state = repr((findings_digest, len(fo_dataset), fo_dataset.count("ground_truth.detections"), views))
    return hashlib.blake2b(state.encode(), digest_size=16).hexdigest()


def _save_worst_first(fo_dataset: "fo.Dataset", name: str, field: str, what: str) -> None:
    """Save the samples that have ``field`` set, highest first, as view ``name``."""
    view = fo_dataset.exists(field).sort_by(field, reverse=True)
    fo_dataset.save_view(name, view, description=f"curate audit: {what}", overwrite=True)


def _declare_audit_fields(fo_dataset: "fo.Dataset", marks: _Marks, *, worst: bool, regions: bool) -> None:
    import fiftyone as fo

    for check in marks.label:
        fo_dataset.add_sample_field(f"ground_truth.detections.{audit_field(check)}", fo.FloatField)
    for check in marks.sample_score:
        fo_dataset.add_sample_field(audit_field(check), fo.FloatField)
    if worst:
        fo_dataset.add_sample_field(WORST_FIELD, fo.FloatField)
    if regions:
        fo_dataset.add_sample_field(REGIONS_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)


def _gather(state: _State, findings: list[Finding]) -> _Marks:
    by_rel = {
        rel: (sid, dict(zip(lines, lids)))
        for sid, rel, lids, lines in zip(state.sample_ids, state.rels, state.label_ids, state.lines)
    }
    marks = _Marks()
    for f in findings:
        if f.image not in by_rel:
            marks.unmatched += 1
            continue
        sid, line_to_lid = by_rel[f.image]
        per_sample = marks.sample_score.setdefault(f.check, {})
        per_sample[sid] = max(per_sample.get(sid, 0.0), f.score)
        if f.region is not None:
            marks.regions.setdefault(sid, []).append(f)
        elif f.line is not None and f.line in line_to_lid:
            per_label = marks.label.setdefault(f.check, {})
            key = (sid, line_to_lid[f.line])
            per_label[key] = max(per_label.get(key, 0.0), f.score)
        else:
            marks.sample_tag.setdefault(sid, set()).add(f.check)
    return marks


def _is_audit_tag(tag: str) -> bool:
    return tag.startswith(f"{AUDIT_PREFIX}:")


def _write_tags(fo_dataset: "fo.Dataset", state: _State, marks: _Marks, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Replace the audit tags of samples and labels in two bulk writes, keeping every other tag (and the audit
    tags of the checks in ``keep``)."""

    def ours(tag: str) -> bool:
        return _is_audit_tag(tag) and tag.split(":", 1)[1] not in keep

    label_checks: dict[str, list[str]] = {}
    for check in sorted(marks.label):
        for _, lid in marks.label[check]:
            label_checks.setdefault(lid, []).append(audit_tag(check))
    sample_values: dict[str, list[str]] = {}
    label_values: list[dict[str, Any]] = []
    for sid, tags, lids, ltags in zip(state.sample_ids, state.sample_tags, state.label_ids, state.label_tags):
        new = [t for t in tags if not ours(t)] + [audit_tag(c) for c in sorted(marks.sample_tag.get(sid, ()))]
        if new != tags:
            sample_values[sid] = new
        for lid, old in zip(lids, ltags):
            new_l = [t for t in old if not ours(t)] + label_checks.get(lid, [])
            if new_l != old:
                label_values.append({"sample_id": sid, "label_id": lid, "value": new_l})
    if sample_values:
        fo_dataset.set_values("tags", sample_values, key_field="id")
    if label_values:
        fo_dataset.set_label_values("ground_truth.detections.tags", label_values)


def _region_detections(findings: list[Finding], kept: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """Region findings as a stored ``fo.Detections`` document: label = check, confidence = score; after
    ``kept``, the region documents of checks this audit did not run."""
    dets = list(kept)
    for f in findings:
        cx, cy, w, h = f.region  # type: ignore[misc]
        doc = _detection_doc(f.check, [cx - w / 2, cy - h / 2, w, h], confidence=f.score)
        doc["tags"] = [audit_tag(f.check)]
        dets.append(doc)
    return {"_cls": "Detections", "detections": dets}


def _clear_audit_fields(fo_dataset: "fo.Dataset", keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Delete the audit sample fields, detection attributes and saved views (and the marks' digest), except
    those of the checks in ``keep``."""
    if fo_dataset.info.pop(AUDIT_DIGEST_KEY, None) is not None:
        fo_dataset.save()
    kept = {audit_field(c) for c in keep}
    schema = fo_dataset.get_field_schema(flat=True)
    attrs = [k for k in schema if k.startswith(f"ground_truth.detections.{AUDIT_PREFIX}_") and k.rsplit(".", 1)[1] not in kept]
    fields = [k for k in schema if k.startswith(f"{AUDIT_PREFIX}_") and "." not in k and k not in kept]
    if attrs:
        fo_dataset.delete_sample_fields(attrs)
    if fields:
        fo_dataset.delete_sample_fields(fields)
    for view_name in fo_dataset.list_saved_views():
        if view_name.startswith(f"{AUDIT_PREFIX}/") and view_name.split("/", 1)[1] not in keep:
            fo_dataset.delete_saved_view(view_name)
