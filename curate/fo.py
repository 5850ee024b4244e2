"""The FiftyOne bridge: a curate :class:`~curate.dataset.Dataset` in and out of a FiftyOne dataset.

Why a bridge of our own rather than FiftyOne's YOLO importer/exporter: every FiftyOne label must carry
its source line (so an audit finding, a label in the App and an exported line are the same thing), and
the export must keep untouched label files byte-identical and keep background images — FiftyOne's own
YOLO exporter drops images without labels (voxel51/fiftyone#5396). So export goes
``from_fiftyone`` → ``save_yolo`` (our writer).

The FiftyOne dataset is *persistent* and named ``curate-<dataset name>``, so users find it in their own
FiftyOne (``fo.list_datasets()``, the App). We never touch FiftyOne's configuration: whatever database
the user configured (``FIFTYONE_DATABASE_DIR``, ``FIFTYONE_DATABASE_URI`` for a team's shared MongoDB…)
is the one used.

Samples
    ``filepath`` the absolute image path; ``tags`` ``[split]``; fields ``split``, ``curate_rel`` (the
    record's ``rel``); ``ground_truth`` :class:`fo.Detections` in FiftyOne's normalized top-left
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
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from curate import locks
from curate.dataset import Dataset, ImageRecord, Label
from curate.findings import Finding

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    from concurrent.futures import Future

    import fiftyone as fo

#: Bump when the way samples are built changes, so existing FiftyOne datasets are rebuilt.
BRIDGE_VERSION = 1
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


def fingerprint(dataset: Dataset) -> str:
    """A hash of everything a FiftyOne copy of ``dataset`` is built from; equal hash = reuse the copy.

    Covers, per image in order: split, rel, absolute image path, image file size and mtime (cheap
    stand-in for the pixels: a replaced image changes both), and the label file's bytes (or, for a
    record edited in memory, its labels); plus the class names and :data:`BRIDGE_VERSION`. Reading the
    label files of 2,000 images takes milliseconds; no image is decoded.
    """
    h = hashlib.sha256()
    h.update(f"curate-fo-v{BRIDGE_VERSION}\0".encode())
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


def to_fiftyone(dataset: Dataset, *, name: str | None = None, overwrite: bool = False) -> "fo.Dataset":
    """Load ``dataset`` into a persistent FiftyOne dataset, reusing it when nothing changed.

    The existing FiftyOne dataset of that name is returned as is (with the reviewer's edits and the
    audit tags) when its stored fingerprint (``info["curate_fingerprint"]``) equals
    :func:`fingerprint` of ``dataset``; otherwise — or with ``overwrite`` — it is deleted and rebuilt.
    The fingerprint is stored last, so a build that was interrupted is rebuilt next time.
    """
    import fiftyone as fo
    import fiftyone.core.utils as fou

    name = name or default_name(dataset)
    fp = fingerprint(dataset)
    if fo.dataset_exists(name):
        existing = fo.load_dataset(name)
        if not overwrite and existing.info.get("curate_fingerprint") == fp:
            return existing
        existing.delete()

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
            "curate_fingerprint": fp,
            "curate_root": str(dataset.root),
            "curate_names": list(dataset.names),
            "curate_bridge_version": BRIDGE_VERSION,
        }
    )
    fo_dataset.save()
    return fo_dataset


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


def from_fiftyone(fo_dataset: "fo.Dataset", original: Dataset) -> tuple[Dataset, list[Change]]:
    """The dataset as reviewed in FiftyOne, ready for :func:`curate.formats.yolo.save_yolo`.

    ``ground_truth`` is authoritative (``ground_truth_polylines`` is for display only). A sample whose
    detections all match their original label (same ``line``, class and box within
    :data:`BOX_TOLERANCE`) keeps its original record, so ``edited`` stays False and the writer copies its
    label file byte for byte. Otherwise the record is ``edited=True`` with labels in original line order
    (moved/resized/relabeled ones in place, deleted ones gone), then added detections (no ``line``);
    lines are renumbered to their position in the new file. A polygon whose box was moved or resized is
    mapped into the new box. Samples tagged ``exclude`` are left out; images of ``original`` that are
    not in ``fo_dataset`` (e.g. it is a view) are kept unchanged. Returns the new dataset and the
    changes, in dataset order then line order.
    """
    review = _review(fo_dataset, original)
    warnings = list(original.warnings)
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


def _review(fo_dataset: "fo.Dataset", original: Dataset) -> _Review:
    by_key = _reviewed_labels(fo_dataset)
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
        new_record, record_changes, line_map = _diff_record(record, detections, original)
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


def ok_marks(fo_dataset: "fo.Dataset", original: Dataset) -> list[OkMark]:
    """The ``ok`` tags, addressed to the label files that ``save_yolo(from_fiftyone(fo_dataset, original)[0], …)``
    writes, sorted.

    A mark follows its label when other lines of its file are deleted (renumbered) and goes with its label
    or its sample (deleted, excluded). One image file listed under several splits is one sample per
    listing and, once exported, one label file per listing: a mark given on one listing holds for every
    listing whose copy of that label is unchanged: before the export the listings share one label file,
    and an audit of the input reads a mark for all of them (:func:`curate.audit.load_ok_marks` keys marks
    by rel), so an audit of the export should too.
    """
    tagged = _ok_tagged(fo_dataset)
    if not tagged:
        return []
    review = _review(fo_dataset, original)
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


def tag_findings(fo_dataset: "fo.Dataset", findings: list[Finding]) -> None:
    """Mark audit findings in FiftyOne and save one view per check, replacing any earlier audit marks.

    - a finding with a ``line`` tags that detection ``audit:<check>`` and sets its attribute
      ``audit_<check>`` (the worst score if several findings hit it); a line that is no detection (e.g. a
      malformed line the reader skipped) is treated as image-level;
    - an image-level finding tags the sample ``audit:<check>``;
    - a region finding becomes a detection in ``audit_regions`` (label = check, confidence = score,
      tagged ``audit:<check>``);
    - every sample with a finding gets the field ``audit_<check>`` = its worst score for that check
      (whatever the kind), and ``audit_worst`` = its worst over all checks;
    - saved views ``audit/<check>`` (samples with a finding of that check, worst first) and ``audit/all``.

    Tags that are not ours (``ok``, ``exclude``, splits) are kept. Findings for images not in
    ``fo_dataset`` (dataset-level notes, label files without an image) are skipped. All writes are bulk
    (``set_values``/``set_label_values``): a handful of database round trips, not one per sample.
    """
    made_from = _findings_digest(findings)
    if fo_dataset.info.get(AUDIT_DIGEST_KEY) == _audit_digest(fo_dataset, made_from):
        return  # this dataset already carries exactly these marks: a re-run with no change skips the rewrite
    state = _State.read(fo_dataset)
    marks = _gather(state, findings)
    _clear_audit_fields(fo_dataset)
    _write_tags(fo_dataset, state, marks)
    _declare_audit_fields(fo_dataset, marks)

    # fields are declared above, so no per-value schema inference (expand_schema=False)
    for check, scores in marks.label.items():
        items = [{"sample_id": sid, "label_id": lid, "value": s} for (sid, lid), s in scores.items()]
        fo_dataset.set_label_values(f"ground_truth.detections.{audit_field(check)}", items)
    worst: dict[str, float] = {}
    for check, scores in marks.sample_score.items():
        fo_dataset.set_values(audit_field(check), scores, key_field="id", expand_schema=False)
        for sid, s in scores.items():
            worst[sid] = max(worst.get(sid, 0.0), s)
    if worst:
        fo_dataset.set_values(WORST_FIELD, worst, key_field="id", expand_schema=False)
    if marks.regions:
        regions = {sid: _region_detections(fs) for sid, fs in marks.regions.items()}
        fo_dataset.set_values(REGIONS_FIELD, regions, key_field="id", expand_schema=False, validate=False)

    for check in sorted(marks.sample_score):
        _save_worst_first(fo_dataset, audit_view_name(check), audit_field(check), f"{check}, worst first")
    if worst:
        _save_worst_first(fo_dataset, audit_view_name("all"), WORST_FIELD, "all checks, worst first")
    fo_dataset.info[AUDIT_DIGEST_KEY] = _audit_digest(fo_dataset, made_from)  # the views just saved count too
    fo_dataset.save()


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


def _declare_audit_fields(fo_dataset: "fo.Dataset", marks: _Marks) -> None:
    import fiftyone as fo

    for check in marks.label:
        fo_dataset.add_sample_field(f"ground_truth.detections.{audit_field(check)}", fo.FloatField)
    for check in marks.sample_score:
        fo_dataset.add_sample_field(audit_field(check), fo.FloatField)
    if marks.sample_score:
        fo_dataset.add_sample_field(WORST_FIELD, fo.FloatField)
    if marks.regions:
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


def _write_tags(fo_dataset: "fo.Dataset", state: _State, marks: _Marks) -> None:
    """Replace the audit tags of samples and labels in two bulk writes, keeping every other tag."""
    label_checks: dict[str, list[str]] = {}
    for check in sorted(marks.label):
        for _, lid in marks.label[check]:
            label_checks.setdefault(lid, []).append(audit_tag(check))
    sample_values: dict[str, list[str]] = {}
    label_values: list[dict[str, Any]] = []
    for sid, tags, lids, ltags in zip(state.sample_ids, state.sample_tags, state.label_ids, state.label_tags):
        new = [t for t in tags if not _is_audit_tag(t)] + [audit_tag(c) for c in sorted(marks.sample_tag.get(sid, ()))]
        if new != tags:
            sample_values[sid] = new
        for lid, old in zip(lids, ltags):
            new_l = [t for t in old if not _is_audit_tag(t)] + label_checks.get(lid, [])
            if new_l != old:
                label_values.append({"sample_id": sid, "label_id": lid, "value": new_l})
    if sample_values:
        fo_dataset.set_values("tags", sample_values, key_field="id")
    if label_values:
        fo_dataset.set_label_values("ground_truth.detections.tags", label_values)


def _region_detections(findings: list[Finding]) -> dict[str, Any]:
    """Region findings as a stored ``fo.Detections`` document: label = check, confidence = score."""
    dets = []
    for f in findings:
        cx, cy, w, h = f.region  # type: ignore[misc]
        doc = _detection_doc(f.check, [cx - w / 2, cy - h / 2, w, h], confidence=f.score)
        doc["tags"] = [audit_tag(f.check)]
        dets.append(doc)
    return {"_cls": "Detections", "detections": dets}


def clear_audit(fo_dataset: "fo.Dataset") -> None:
    """Remove every audit tag, field, attribute and saved view (what :func:`tag_findings` wrote)."""
    sample_tags = [t for t in fo_dataset.distinct("tags") if _is_audit_tag(t)]
    if sample_tags:
        fo_dataset.untag_samples(sample_tags)
    label_tags = [t for t in fo_dataset.distinct("ground_truth.detections.tags") if _is_audit_tag(t)]
    if label_tags:
        fo_dataset.untag_labels(label_tags, label_fields="ground_truth")
    _clear_audit_fields(fo_dataset)


def _clear_audit_fields(fo_dataset: "fo.Dataset") -> None:
    """Delete the audit sample fields, detection attributes and saved views (and the marks' digest)."""
    if fo_dataset.info.pop(AUDIT_DIGEST_KEY, None) is not None:
        fo_dataset.save()
    schema = fo_dataset.get_field_schema(flat=True)
    attrs = [k for k in schema if k.startswith(f"ground_truth.detections.{AUDIT_PREFIX}_")]
    fields = [k for k in schema if k.startswith(f"{AUDIT_PREFIX}_") and "." not in k]
    if attrs:
        fo_dataset.delete_sample_fields(attrs)
    if fields:
        fo_dataset.delete_sample_fields(fields)
    for view_name in fo_dataset.list_saved_views():
        if view_name.startswith(f"{AUDIT_PREFIX}/"):
            fo_dataset.delete_saved_view(view_name)
