"""`curate export`: the dataset as reviewed in the FiftyOne App, written as a NEW YOLO folder.

Flow: the dataset's own persistent FiftyOne dataset ``curate-<name>-<key>`` (which holds the reviewer's
edits; made by ``curate audit``, and refused when it belongs to another folder) →
:func:`curate.fiftyone.diff.from_fiftyone` (diff against the user's files) → :func:`curate.io.yolo.save_yolo`
(untouched label files byte for byte) → ``changes.csv``, ``CHANGES.md`` and the ``ok`` marks as
``curate_ok.json`` (which :func:`curate.audit.runner.load_ok_marks` reads on a later audit of the new folder): a label
tagged ``ok`` by its line, an image (sample) tagged ``ok`` by its path and bytes.

Why export reads the existing FiftyOne dataset even when the YOLO folder changed since it was loaded:
:func:`curate.fiftyone.load.to_fiftyone` would rebuild it and throw the review away. The review is merged into
the files as they are *now* (:func:`curate.fiftyone.diff._rebase`): lines added or edited on disk since are kept,
the reviewer's changes apply to their lines wherever they now are, and ``changes.csv`` lists only the review's; a
line changed both in the review and on disk keeps its disk version, with a warning naming it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from curate.core.dataset import Dataset
from curate.fiftyone.diff import (
    CHANGE_KINDS,
    UNHASHED_CHANGED,
    Change,
    changed_images,
    from_fiftyone,
    ok_marks,
    ok_on_changed_images,
)
from curate.fiftyone.identity import check_owner, find_fiftyone, fingerprint
from curate.fiftyone.load import to_fiftyone
from curate.fiftyone.samples import EXCLUDE_TAG, IMAGE_HASH_FIELD, OK_TAG
from curate.fiftyone.tags import audit_tag
from curate.io.outputs import atomic_output
from curate.io.yolo import check_output_dir, output_image_paths, save_yolo

#: Sidecar with the labels a reviewer marked ``ok`` (relative to the dataset root).
OK_FILE = "curate_ok.json"
#: Rows of the change table in CHANGES.md (changes.csv has them all).
CHANGES_MD_ROWS = 30


@dataclass
class ExportResult:
    """What :func:`export_reviewed` wrote."""

    out: Path
    changes: list[Change]
    ok_marks: list[dict]
    images: int
    warnings: list[str] = field(default_factory=list)
    fiftyone_name: str = ""  # the FiftyOne dataset the review was read from

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for c in self.changes if c.kind == k) for k in CHANGE_KINDS}


class ExportError(ValueError):
    """No FiftyOne dataset to export from (one line for the CLI)."""


def export_reviewed(
    dataset: Dataset,
    out: Path,
    *,
    overwrite: bool = False,
    fiftyone_name: str | None = None,
    missing_ok: bool = False,
    min_confidence: float | None = None,
) -> ExportResult:
    """Write ``dataset`` as reviewed in FiftyOne to the new folder ``out``; refuses to write over the input.

    The review is read from ``dataset``'s own FiftyOne dataset, or from ``fiftyone_name`` (a review kept
    under a dated name, :func:`curate.fiftyone.load.to_fiftyone`), which must have been loaded from the same root.
    With none yet, :class:`ExportError` says to audit first, unless ``missing_ok`` (a pipeline run without
    a review): one is then built, and the export is a byte-identical copy. Proposals the reviewer tagged
    ``accept`` are applied; with ``min_confidence`` (``--accept-proposals``), every untagged proposal at or
    above it too (``changes.csv`` marks those changes ``proposed`` with their confidence).
    """
    import fiftyone as fo

    out = check_output_dir(Path(out), [dataset.root], overwrite=overwrite)
    warnings: list[str] = []
    if fiftyone_name is not None:
        if not fo.dataset_exists(fiftyone_name):
            raise ExportError(f"--from-fiftyone {fiftyone_name}: no such FiftyOne dataset")
        fo_dataset = fo.load_dataset(fiftyone_name)
        check_owner(fo_dataset, dataset)
    else:
        fo_dataset = find_fiftyone(dataset, note=warnings.append)
    if fo_dataset is None:
        if not missing_ok:
            raise ExportError(
                f"{dataset.root} has no FiftyOne dataset yet, so nothing was reviewed: "
                f"run `curate audit {dataset.root}` first, then `curate review {dataset.root}`"
            )
        fo_dataset = to_fiftyone(dataset)
    elif fo_dataset.info.get("curate_fingerprint") != fingerprint(dataset):
        warnings.append(
            f"{dataset.root} changed since it was loaded into FiftyOne ({fo_dataset.name}); the review is merged into "
            "the label files as they are now (lines changed on disk since are kept)"
        )
    reviewed, changes = from_fiftyone(fo_dataset, dataset, min_confidence=min_confidence)
    if dataset.images and not reviewed.images:
        raise ExportError(
            f"every image is tagged `{EXCLUDE_TAG}` in FiftyOne dataset {fo_dataset.name}: nothing to export "
            "(remove the tag from the images to keep, in the App)"
        )
    warnings += reviewed.warnings[len(dataset.warnings) :]
    warnings += emptied_split_warnings(dataset, reviewed)
    changes = with_dropped_lines(changes, dataset, reviewed)
    warnings += dropped_line_warnings(changes)
    unseen, unseen_warnings = ok_on_changed_images(fo_dataset, dataset)  # the ok of a picture nobody looked at
    warnings += unseen_warnings
    warnings += reviewed_on_another_picture(fo_dataset, dataset, changes)
    marks = _ok_marks(fo_dataset, dataset, reviewed, min_confidence, unseen) + _image_ok_marks(
        fo_dataset, reviewed, unseen
    )
    with atomic_output(out, "export") as tmp:  # a killed export leaves no folder that looks finished
        save_yolo(reviewed, tmp)
        write_changes_csv(changes, tmp / "changes.csv")
        write_changes_md(changes, tmp / "CHANGES.md", source=dataset.root, images=len(reviewed.images))
        if marks:
            (tmp / OK_FILE).write_text(json.dumps(marks, indent=1) + "\n", encoding="utf-8")
    return ExportResult(out, changes, marks, len(reviewed.images), warnings, fo_dataset.name)


def reviewed_on_another_picture(fo_dataset, original: Dataset, changes: list[Change]) -> list[str]:
    """One warning per image whose boxes the export changes (the reviewer's edits, accepted proposals) and whose file
    changed since it was loaded into FiftyOne: the edits were drawn on the picture as it was then.

    Why a warning and not a refusal: a kept review (``--from-fiftyone``) is exported on purpose, and the usual cause
    is the same picture saved again; but a replaced picture would get boxes drawn on another one, so the user is told
    which files to look at."""
    rels = {c.image for c in changes if c.kind not in ("excluded", "dropped")}
    why = (
        "the image file changed since it was loaded into FiftyOne"
        if fo_dataset.has_sample_field(IMAGE_HASH_FIELD)
        else UNHASHED_CHANGED
    )
    return [
        f"{rel}: {why}: the review's changes to its labels were made on the picture as it was then (look at them in "
        "the new folder)"
        for rel in sorted({rel for _, rel in changed_images(fo_dataset, original, rels)})
    ]


def emptied_split_warnings(original: Dataset, reviewed: Dataset) -> list[str]:
    """One warning per split whose every image is tagged ``exclude``: the export's data.yaml has no such split.

    Why: Ultralytics refuses a data.yaml without ``train`` or ``val`` ("'train' and 'val' are required in all data
    YAMLs"), so an emptied train or val split is said at export, not found when training; an emptied ``test``
    leaves a data.yaml Ultralytics reads.
    """
    out = []
    for split in original.splits:
        if split in reviewed.splits:
            continue
        line = f"every {split} image is tagged `{EXCLUDE_TAG}`: the export has no {split} split"
        if split in ("train", "val"):
            line += (
                " (Ultralytics needs train and val in data.yaml to train; "
                "`curate rebalance OUT --out NEW --split 80/10/10` re-splits it)"
            )
        out.append(line)
    return out


def dropped_line_warnings(changes: list[Change]) -> list[str]:
    """One warning per edited label file that had lines the reader dropped (the ``dropped`` rows of
    :func:`with_dropped_lines`).

    Why: an edited file is rewritten from the labels the reader kept, so its malformed lines (a zero-width
    box, a class id out of range) vanish from the export; the console says so beside changes.csv's rows.
    Unedited files are copied byte for byte and keep them.
    """
    lines: dict[str, set[int]] = {}
    for c in changes:
        if c.kind == "dropped":
            lines.setdefault(c.image, set()).add(c.line)
    return [
        f"{rel}: label line(s) {', '.join(map(str, sorted(ls)))} were malformed (see `curate info`) "
        "and are not in the edited label file"
        for rel, ls in lines.items()
    ]


def with_dropped_lines(changes: list[Change], original: Dataset, reviewed: Dataset) -> list[Change]:
    """``changes`` plus one ``dropped`` row per malformed line of an edited label file, in dataset then line order.

    Why: an edited file is rewritten from the labels the reader kept, so its malformed lines are not in the
    export; changes.csv is the record of every line that is not in the output as it was, so each gets a row with
    the line's own text (``before``, nothing of it is lost) and the reader's reason (``note``); ``source`` is
    ``reader``: neither the reviewer nor a proposal removed it.
    """
    edited = {(r.split, r.rel): r for r in reviewed.images if r.edited}
    dropped: list[Change] = []
    for f in original.findings:
        record = edited.get((f.split, f.image))
        if f.check != "format" or not f.line or f.score < 1.0 or record is None or record.label_path is None:
            continue
        dropped.append(
            Change(f.image, f.line, "dropped", _line_text(record.label_path, f.line), "", f.split, "reader", None,
                   f.message)
        )  # fmt: skip
    if not dropped:
        return changes
    order = {(r.split, r.rel): i for i, r in enumerate(original.images)}
    return sorted(changes + dropped, key=lambda c: (order.get((c.split, c.image), -1), c.kind == "added", c.line or 0))


def _line_text(path: Path, line: int) -> str:
    """Line ``line`` (1-based, as the reader numbers them) of a label file, as text (undecodable bytes escaped)."""
    try:
        raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n")[line - 1]
    except (OSError, IndexError):
        return ""
    return raw.rstrip(b"\r").decode("utf-8", errors="backslashreplace")


def output_paths(reviewed: Dataset) -> dict[tuple[str, str], str]:
    """Each listing ``(split, rel)`` → its image path relative to the exported folder (as save_yolo names it).

    Keyed by split too: a file listed under several splits is written once per split (``images/train/a.jpg``,
    ``images/val/a.jpg``).
    """
    return {(r.split, r.rel): dst.as_posix() for r, dst in zip(reviewed.images, output_image_paths(reviewed))}


def _ok_marks(
    fo_dataset, original: Dataset, reviewed: Dataset, min_confidence: float | None, unseen: set[tuple[str, str]]
) -> list[dict]:
    """The ``ok`` labels, re-addressed to the new folder (image path and line after deletions), one entry per
    exported listing the mark holds for (:func:`curate.fiftyone.diff.ok_marks`); none on an image changed since it
    was loaded into FiftyOne (``unseen``: :func:`curate.fiftyone.diff.ok_on_changed_images`)."""
    found = ok_marks(fo_dataset, original, min_confidence=min_confidence)
    if not found:
        return []
    paths = output_paths(reviewed)
    labels = {(r.split, r.rel): {lab.line: lab for lab in r.labels} for r in reviewed.images}
    tags = _label_tags(fo_dataset)
    marks = []
    for m in found:
        key = (m.split, m.rel)
        label = labels.get(key, {}).get(m.written)
        if key not in paths or label is None or key in unseen:
            continue
        checks = sorted(
            t.split(":", 1)[1] for t in tags.get((m.split, m.rel, m.line), []) if t.startswith(audit_tag(""))
        )
        marks.append({"image": paths[key], "line": m.written, "label": _text(label), "checks": checks})
    return sorted(marks, key=lambda d: (d["image"], d["line"]))


def _image_ok_marks(fo_dataset, reviewed: Dataset, unseen: set[tuple[str, str]]) -> list[dict]:
    """The images tagged ``ok`` (a sample tag), addressed to their copies in the new folder: ``"line": null`` and
    the hash of the image's bytes, so a later audit drops their image-level findings while the image is the one
    looked at (:func:`curate.audit.runner.load_ok_marks`). An excluded image has no copy and no mark, nor has an
    image changed since it was loaded into FiftyOne (``unseen``): its hash would vouch for a picture nobody saw."""
    from curate.io.cache import file_hash

    splits, rels, tags = fo_dataset.values(["split", "curate_rel", "tags"])
    tagged = {(split, rel): t for split, rel, t in zip(splits, rels, tags) if rel and OK_TAG in (t or [])}
    if not tagged:
        return []
    paths = output_paths(reviewed)
    records = {(r.split, r.rel): r for r in reviewed.images}
    marks = [
        {
            "image": paths[key],
            "line": None,
            "label": "",
            "checks": sorted(t.split(":", 1)[1] for t in tagged[key] if t.startswith(audit_tag(""))),
            "image_hash": file_hash(records[key].path),
        }
        for key in tagged
        if key in paths and key not in unseen
    ]
    return sorted(marks, key=lambda d: d["image"])


def _label_tags(fo_dataset) -> dict[tuple[str, str, int], list[str]]:
    """``(split, rel, original line)`` → the label's tags."""
    splits, rels, lines, tags = fo_dataset.values(
        ["split", "curate_rel", "ground_truth.detections.line", "ground_truth.detections.tags"]
    )
    out: dict[tuple[str, str, int], list[str]] = {}
    for split, rel, ls, ts in zip(splits, rels, lines, tags):
        for line, t in zip(ls or [], ts or []):
            if line is not None:
                out[(split, rel, int(line))] = list(t or [])
    return out


def _text(label) -> str:
    from curate.io.yolo import format_label

    return format_label(label)


def write_changes_csv(changes: list[Change], path: Path) -> Path:
    """``changes.csv``: split, image, line, kind, before, after, source, confidence, note — one row per change
    (``split, image, line`` as in findings.csv; ``source`` is ``review`` or ``proposed``, the latter with the
    proposal's confidence; ``note`` says what a polygon line became, whose ``before``/``after`` are its box)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "image", "line", "kind", "before", "after", "source", "confidence", "note"])
        for c in changes:
            conf = "" if c.confidence is None else f"{c.confidence:.4f}"
            line = "" if c.line is None else c.line
            w.writerow([c.split, c.image, line, c.kind, c.before, c.after, c.source, conf, c.note])
    return path


def write_changes_md(changes: list[Change], path: Path, *, source: Path, images: int) -> Path:
    """A short human summary: counts per kind and the first changes."""
    lines = [f"# Review of `{source}`", "", f"{images} images exported, {len(changes)} change(s).", ""]
    lines += ["| kind | count |", "|---|---:|"]
    lines += [f"| {k} | {sum(1 for c in changes if c.kind == k)} |" for k in CHANGE_KINDS]
    if changes:
        lines += ["", "| image | line | kind | before | after |", "|---|---:|---|---|---|"]
        for c in changes[:CHANGES_MD_ROWS]:
            lines.append(f"| {c.image} | {'' if c.line is None else c.line} | {c.kind} | {c.before} | {c.after} |")
        if len(changes) > CHANGES_MD_ROWS:
            lines += ["", f"… and {len(changes) - CHANGES_MD_ROWS} more in changes.csv."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
