"""A review held in FiftyOne is used only for the files it was made on: a picture rewritten with its size and time
kept, a FiftyOne dataset built before images were hashed, a polygon whose points changed under the same box.

Real FiftyOne database (tests/conftest.py), real files; tags and edits are set on the persistent FiftyOne dataset,
as the App sets them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image
from test_ok_bytes import AUDIT, IMAGES, C, D, _flagged  # the same four images, the audit and the flags read

from curate.audit.runner import run_audit
from curate.fiftyone.identity import default_name, find_fiftyone
from curate.fiftyone.samples import IMAGE_HASH_FIELD, OK_TAG
from curate.io.cache import file_hash
from curate.io.yolo import load_yolo
from curate.ops.export import OK_FILE, export_reviewed


def _tag_ok(root: Path) -> None:
    """The reviewer's ``ok`` in the App: image c (a sample tag) and d's duplicate line 2 (a label tag)."""
    for s in find_fiftyone(load_yolo(root)):
        if s.curate_rel == C and OK_TAG not in s.tags:
            s.tags.append(OK_TAG)
        if s.curate_rel == D and OK_TAG not in s.ground_truth.detections[1].tags:
            s.ground_truth.detections[1].tags.append(OK_TAG)
        s.save()


def _reviewed(make_yolo_tree, tmp_path: Path) -> Path:
    root = make_yolo_tree(tmp_path / "looked", IMAGES)
    assert {(C, None), (D, 2)} <= _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a1", **AUDIT))
    _tag_ok(root)
    assert not {(C, None), (D, 2)} & _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a2", **AUDIT))
    return root


def _rewrite_same_size_and_time(path: Path) -> None:
    """Other bytes, the same size and modification time, in the same file (JFIF density 1:1 → 72:72)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    assert data[6:18] == b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01"
    data[14:18] = b"\x00\x48\x00\x48"
    with open(path, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _replace(path: Path, grey: int) -> None:
    """Another flat picture in the file (still flagged by low_information)."""
    Image.new("RGB", (64, 48), (grey, grey, grey)).save(path)


def _kept_reviews(root: Path) -> list[str]:
    import fiftyone as fo

    return [n for n in fo.list_datasets() if n.startswith(default_name(load_yolo(root)) + "-review-")]


def _as_built_before_hashes(root: Path) -> None:
    """The FiftyOne dataset as a curate that kept no image hash built it: the same samples, no hash field."""
    find_fiftyone(load_yolo(root)).delete_sample_field(IMAGE_HASH_FIELD)


# --- 1. a picture rewritten with its size and time kept ----------------------------------------------------------


def test_an_ok_given_again_on_a_picture_rewritten_with_its_size_and_time_holds(make_yolo_tree, tmp_path) -> None:
    """The picture changed, its size and time kept: the FiftyOne dataset was reused (its fingerprint is by size and
    time) with the hash of the old bytes, so the ``ok`` the reviewer gave again after looking at the new picture was
    never used, and the note came back at every audit. Now the audit rebuilds the FiftyOne dataset when a picture
    with an ``ok`` has other bytes (the review kept aside, as for a replaced picture), and a new ``ok`` holds."""
    root = _reviewed(make_yolo_tree, tmp_path)
    for name in ("c.jpg", "d.jpg"):
        _rewrite_same_size_and_time(root / "train" / "images" / name)
    notes: list[str] = []
    assert {(C, None), (D, 2)} <= _flagged(
        run_audit(load_yolo(root), out_dir=tmp_path / "a3", note=notes.append, **AUDIT)
    )
    assert len(_kept_reviews(root)) == 1 and any("--from-fiftyone" in n for n in notes), notes
    _tag_ok(root)  # the reviewer looked at the new pictures and tags them ok
    notes.clear()
    again = _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a4", note=notes.append, **AUDIT))
    assert not {(C, None), (D, 2)} & again, notes
    assert not [n for n in notes if "changed since" in n or "--from-fiftyone" in n], notes


def test_an_export_in_the_audits_process_sees_a_picture_rewritten_with_its_size_and_time(
    make_yolo_tree, tmp_path
) -> None:
    """The process that audited remembered each image's hash by path, size, time and inode; the same file rewritten in
    place with its time put back kept that key, so an export in that process took the old hash and wrote an ``ok``
    mark for bytes nobody looked at. The memo also keys on the inode's change time, which a write always moves."""
    root = _reviewed(make_yolo_tree, tmp_path)
    path = root / "train" / "images" / "c.jpg"
    before = file_hash(path)
    _rewrite_same_size_and_time(path)
    assert file_hash(path) != before
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    marks = json.loads((tmp_path / "out" / OK_FILE).read_text())
    assert [(m["image"], m["line"]) for m in marks] == [("images/train/d.jpg", 2)], marks
    assert [w for w in result.warnings if w.startswith(C) and "changed since" in w], result.warnings


# --- 2. a FiftyOne dataset built before images were hashed -------------------------------------------------------


def test_a_dataset_without_image_hashes_gets_them_at_the_next_audit_and_says_so(make_yolo_tree, tmp_path) -> None:
    """Files as loaded (the fingerprint holds): the hashes are taken now, with a note, and the ``ok`` holds; a picture
    rewritten after that is seen (before, a dataset without hashes kept its ``ok`` for any bytes of the same size
    and time, silently)."""
    root = _reviewed(make_yolo_tree, tmp_path)
    _as_built_before_hashes(root)
    notes: list[str] = []
    assert not {(C, None), (D, 2)} & _flagged(
        run_audit(load_yolo(root), out_dir=tmp_path / "a3", note=notes.append, **AUDIT)
    )
    said = [n for n in notes if "no image hash" in n]
    assert len(said) == 1 and "4 image(s)" in said[0], notes
    fod = find_fiftyone(load_yolo(root))
    assert fod.has_sample_field(IMAGE_HASH_FIELD)
    assert dict(zip(*fod.values(["filepath", IMAGE_HASH_FIELD]))) == {
        s.filepath: file_hash(Path(s.filepath)) for s in fod
    }
    _rewrite_same_size_and_time(root / "train" / "images" / "c.jpg")
    assert (C, None) in _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a4", **AUDIT))


def test_a_review_without_image_hashes_on_files_changed_since_is_kept_aside(make_yolo_tree, tmp_path) -> None:
    """Files changed since the dataset without hashes was loaded (c replaced): which pictures are the ones reviewed
    cannot be told, so the rebuild no longer carries the review over as if none changed (before: c's ``ok`` carried
    onto the new picture, its finding hidden); it is kept under a dated name, with a note that says why."""
    root = _reviewed(make_yolo_tree, tmp_path)
    _as_built_before_hashes(root)
    _replace(root / "train" / "images" / "c.jpg", 120)
    notes: list[str] = []
    assert (C, None) in _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a3", note=notes.append, **AUDIT))
    assert len(_kept_reviews(root)) == 1
    said = [n for n in notes if "--from-fiftyone" in n]
    assert len(said) == 1 and "no image hash" in said[0], notes


def test_an_export_of_a_review_without_image_hashes_on_changed_files_writes_no_ok(make_yolo_tree, tmp_path) -> None:
    """Exported as it is (no audit in between): before, curate_ok.json vouched for c's new picture (its hash taken at
    export time). Without a hash as loaded and with files changed since, no ``ok`` is written, one warning per image
    says why; the labels are exported as before."""
    root = _reviewed(make_yolo_tree, tmp_path)
    _as_built_before_hashes(root)
    _replace(root / "train" / "images" / "c.jpg", 120)
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    assert not (tmp_path / "out" / OK_FILE).exists()
    for rel in (C, D):
        said = [w for w in result.warnings if w.startswith(rel)]
        assert len(said) == 1 and "no image hash" in said[0], result.warnings
    assert (tmp_path / "out" / "labels" / "train" / "d.txt").read_text() == "".join(
        f"{line}\n" for line in IMAGES["train/d.jpg"]
    )


def test_an_export_of_a_review_without_image_hashes_on_unchanged_files_keeps_its_ok(make_yolo_tree, tmp_path) -> None:
    """The guard: files as loaded (the fingerprint holds), the marks are written as before."""
    root = _reviewed(make_yolo_tree, tmp_path)
    _as_built_before_hashes(root)
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    marks = json.loads((tmp_path / "out" / OK_FILE).read_text())
    assert {(m["image"], m["line"]) for m in marks} == {("images/train/c.jpg", None), ("images/train/d.jpg", 2)}
    assert not [w for w in result.warnings if "no image hash" in w], result.warnings


# --- 3. a polygon whose points changed under the same box --------------------------------------------------------

SQUARE = "0 0.4 0.4 0.6 0.4 0.6 0.6 0.4 0.6"  # a polygon line: its box is (0.5, 0.5, 0.2, 0.2)
NOTCHED = "0 0.4 0.4 0.6 0.4 0.6 0.6 0.5 0.55 0.4 0.6"  # edited by hand: a point more, the same box
POLYGONS = {"train/p.jpg": [SQUARE, SQUARE], "val/e.jpg": ["0 0.6 0.6 0.2 0.2"]}  # line 2 duplicates line 1
P = "train/images/p.jpg"


def _polygons_reviewed(make_yolo_tree, tmp_path: Path) -> tuple[Path, object]:
    root = make_yolo_tree(tmp_path / "poly", POLYGONS)
    assert (P, 2) in _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a1", **AUDIT))
    return root, next(s for s in find_fiftyone(load_yolo(root)) if s.curate_rel == P)


def test_a_polygon_deleted_in_the_review_and_redrawn_on_disk_is_kept(make_yolo_tree, tmp_path) -> None:
    """The reviewer deleted line 2; someone then redrew that polygon on disk (other points, the same box). The export
    compared lines by their box only, took the redrawn polygon for the one deleted and dropped it, silently. A line
    changed on both sides keeps the disk's version, with a warning, as for a box."""
    root, s = _polygons_reviewed(make_yolo_tree, tmp_path)
    s.ground_truth.detections = s.ground_truth.detections[:1]
    s.save()
    (root / "train" / "labels" / "p.txt").write_text(f"{SQUARE}\n{NOTCHED}\n")
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    assert (tmp_path / "out" / "labels" / "train" / "p.txt").read_text() == f"{SQUARE}\n{NOTCHED}\n"
    said = [w for w in result.warnings if w.startswith(f"{P}: line 2")]
    assert len(said) == 1 and "deleted in the review" in said[0], result.warnings


def test_an_ok_on_a_polygon_redrawn_on_disk_does_not_hold(make_yolo_tree, tmp_path) -> None:
    """The reviewer tagged line 2 ``ok``; its points were then changed on disk under the same box. The rebuild
    carried the ``ok`` to the new polygon and an export wrote its mark: now the review of that file is kept aside
    (as for a box changed on disk), the duplicate is flagged again, and the export writes no mark for it."""
    root, s = _polygons_reviewed(make_yolo_tree, tmp_path)
    s.ground_truth.detections[1].tags.append(OK_TAG)
    s.save()
    (root / "train" / "labels" / "p.txt").write_text(f"{SQUARE}\n{NOTCHED}\n")
    result = export_reviewed(load_yolo(root), tmp_path / "out")  # the review as it is, files changed since
    assert not (tmp_path / "out" / OK_FILE).exists(), result.warnings
    assert (tmp_path / "out" / "labels" / "train" / "p.txt").read_text() == f"{SQUARE}\n{NOTCHED}\n"
    notes: list[str] = []
    again = _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a2", note=notes.append, **AUDIT))
    assert (P, 2) in again and len(_kept_reviews(root)) == 1, notes


def test_an_ok_on_an_unchanged_polygon_still_holds(make_yolo_tree, tmp_path) -> None:
    """The guard: another file changed (the FiftyOne dataset is rebuilt), the polygon's ``ok`` is carried over and
    the export writes its mark with the line's own points."""
    root, s = _polygons_reviewed(make_yolo_tree, tmp_path)
    s.ground_truth.detections[1].tags.append(OK_TAG)
    s.save()
    (root / "valid" / "labels" / "e.txt").write_text("0 0.5 0.6 0.2 0.2\n")
    notes: list[str] = []
    assert (P, 2) not in _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a2", note=notes.append, **AUDIT))
    assert not _kept_reviews(root), notes
    export_reviewed(load_yolo(root), tmp_path / "out")
    marks = json.loads((tmp_path / "out" / OK_FILE).read_text())
    assert [(m["image"], m["line"], m["label"]) for m in marks] == [
        ("images/train/p.jpg", 2, "0 0.4 0.4 0.6 0.4 0.6 0.6 0.4 0.6")
    ]


def test_a_line_as_loaded_keeps_its_points_and_an_older_row_is_read_as_its_box() -> None:
    """``curate_loaded`` keeps a polygon's points and a clipped line's own numbers, exactly; a plain box's row is as
    before (six values), and a polygon's row written by a curate that kept boxes only is compared by its box."""
    from curate.core.dataset import Label
    from curate.fiftyone.samples import _loaded_labels, loaded_text, same_line

    box = Label(1, 0.1 + 0.2, 1 / 3, 0.25, 2 / 7, line=4)
    polygon = Label(0, 0.5, 0.5, 0.2, 0.2, line=1, polygon=(0.4, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4, 0.6))
    clipped = Label(0, 0.9, 0.5, 0.2, 0.2, line=2, raw=(1.0, 0.5, 0.4, 0.2))
    assert _loaded_labels(loaded_text([box, polygon, clipped])) == [box, polygon, clipped]
    assert loaded_text([box]) == f"[[4,1,{0.1 + 0.2!r},{1 / 3!r},0.25,{2 / 7!r}]]"
    redrawn = Label(0, 0.5, 0.5, 0.2, 0.2, line=1, polygon=(0.4, 0.4, 0.6, 0.4, 0.6, 0.6, 0.5, 0.55, 0.4, 0.6))
    assert same_line(polygon, polygon) and not same_line(polygon, redrawn)
    assert not same_line(clipped, Label(0, 0.9, 0.5, 0.2, 0.2, line=2, raw=(1.0, 0.5, 0.6, 0.2)))
    (older,) = _loaded_labels("[[1,0,0.5,0.5,0.2,0.2]]")
    assert same_line(older, redrawn) and not same_line(older, Label(0, 0.5, 0.5, 0.3, 0.2, line=1))
