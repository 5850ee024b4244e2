"""Load a curate :class:`~curate.core.dataset.Dataset` into its persistent FiftyOne dataset, reusing or rebuilding it.

Why a bridge of our own rather than FiftyOne's YOLO importer/exporter: every FiftyOne label must carry
its source line (so an audit finding, a label in the App and an exported line are the same thing), and
the export must keep untouched label files byte-identical and keep background images — FiftyOne's own
YOLO exporter drops images without labels (voxel51/fiftyone#5396). So export goes
``from_fiftyone`` → ``save_yolo`` (our writer).

The samples are built in two bulk steps (bare samples, then every label document in one update), about
three times faster than FiftyOne's own ``add_samples`` of full samples. A dataset whose files changed is
rebuilt beside the old one and takes its name only when complete; the review is handed over
(:mod:`curate.fiftyone.handover`).
"""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from curate.core.dataset import Dataset, ImageRecord
from curate.fiftyone.diff import ok_on_changed_images
from curate.fiftyone.handover import _hand_over
from curate.fiftyone.identity import check_owner, default_name, find_fiftyone, fingerprint
from curate.fiftyone.samples import (
    BRIDGE_VERSION,
    IMAGE_HASH_FIELD,
    LOADED_FIELD,
    _detection_doc,
    image_hash,
    loaded_text,
    to_fo_box,
)

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    import fiftyone as fo

#: Samples per ``add_samples`` batch.
BATCH_SIZE = 500
#: Suffix of a FiftyOne dataset being built; renamed to its real name once complete.
BUILDING_SUFFIX = "-building"


def to_fiftyone(
    dataset: Dataset, *, name: str | None = None, overwrite: bool = False, note: Callable[[str], None] | None = None
) -> "fo.Dataset":
    """Load ``dataset`` into a persistent FiftyOne dataset, reusing it when nothing changed.

    The existing FiftyOne dataset is returned as is (with the reviewer's edits and the audit tags) when its
    stored fingerprint (``info["curate_fingerprint"]``) equals
    :func:`~curate.fiftyone.identity.fingerprint` of ``dataset`` and every image with an ``ok`` still has the bytes
    it was loaded with (:func:`~curate.fiftyone.diff.ok_on_changed_images`: the fingerprint knows sizes and times
    only, and a picture rewritten with both kept must be loaded again for a new ``ok`` to hold for it). One built
    by a curate that kept no image hash gets the hashes now (:func:`_hash_images`). Otherwise a new one is built
    beside it (``<name>-building``), the review is handed over (:func:`~curate.fiftyone.handover._hand_over`: nothing
    a reviewer did is deleted; ``note`` is told where it went), and the new one takes the name. With
    ``overwrite`` the old one and its review are deleted. The fingerprint is stored last and a half-built
    dataset has the building name, so an interrupted build is rebuilt next time and never taken for a
    finished one.
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
        if not existing.has_sample_field(IMAGE_HASH_FIELD):
            _hash_images(existing, dataset, note)
        if not ok_on_changed_images(existing, dataset)[0]:
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


def _hash_images(fo_dataset: "fo.Dataset", dataset: Dataset, note: Callable[[str], None] | None) -> None:
    """Give a FiftyOne dataset built by a curate that kept no image hash (:data:`IMAGE_HASH_FIELD`) the hashes of its
    images as they are now, and say so.

    Called only while its fingerprint holds (every image's size and time as loaded): the bytes now are taken for the
    bytes looked at, as that curate took them, and from now on an ``ok`` holds for these bytes only. Without the hash,
    every later change of a picture that kept its size and time went unseen."""
    import fiftyone as fo

    paths = {(r.split, r.rel): r.path for r in dataset.images}
    ids, splits, rels = fo_dataset.values(["id", "split", "curate_rel"])
    hashes = {sid: image_hash(paths[key]) for sid, key in zip(ids, zip(splits, rels)) if key in paths}
    fo_dataset.add_sample_field(IMAGE_HASH_FIELD, fo.StringField)
    fo_dataset.set_values(IMAGE_HASH_FIELD, hashes, key_field="id", expand_schema=False)
    if note:
        note(
            f"FiftyOne dataset {fo_dataset.name!r} was built by a curate that kept no image hash: its {len(hashes)} "
            "image(s) were hashed now (their sizes and times are as loaded), and an ok given there holds for these "
            "bytes from now on"
        )


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


def _declare_schema(fo: Any, fo_dataset: "fo.Dataset") -> None:
    """Declare every field up front, so adding samples needs no per-sample schema inference."""
    fo_dataset.media_type = "image"
    fo_dataset.add_sample_field("split", fo.StringField)
    fo_dataset.add_sample_field("curate_rel", fo.StringField)
    fo_dataset.add_sample_field(LOADED_FIELD, fo.StringField)
    fo_dataset.add_sample_field(IMAGE_HASH_FIELD, fo.StringField)
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
            curate_image_hash=image_hash(record.path),
            metadata=_metadata(fo, record),
        )


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
