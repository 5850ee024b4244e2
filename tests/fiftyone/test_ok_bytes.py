"""An ``ok`` given in the App and not yet exported holds only for the image bytes the reviewer looked at.

Real FiftyOne database (tests/conftest.py), real files; tags are set on the persistent FiftyOne dataset, as the
App sets them. After an export, curate_ok.json ties an image mark to the image's hash; before it, the marks are
read straight from the FiftyOne dataset, which remembers the hash of each image as it was loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from curate.audit.runner import run_audit
from curate.fiftyone.identity import default_name, find_fiftyone
from curate.fiftyone.samples import OK_TAG
from curate.io.yolo import load_yolo
from curate.ops.export import OK_FILE, export_reviewed

IMAGES = {
    "train/a.jpg": ["0 0.5 0.5 0.2 0.2"],
    "train/c.jpg": [],  # a flat grey image: low_information flags it
    "train/d.jpg": ["1 0.25 0.75 0.1 0.2", "1 0.25 0.75 0.1 0.2"],  # line 2 duplicates line 1
    "val/e.jpg": ["0 0.6 0.6 0.2 0.2"],
}
AUDIT = dict(only={"low_information", "duplicate"}, report=False, use_cache=False)
C, D = "train/images/c.jpg", "train/images/d.jpg"


def _flagged(result) -> set[tuple[str, int | None]]:
    return {(f.image, f.line) for f in result.findings if f.check in ("low_information", "duplicate")}


def _reviewed(make_yolo_tree, tmp_path: Path) -> Path:
    """Audit, then the reviewer's ``ok``: image c (a sample tag) and d's duplicate line 2 (a label tag)."""
    root = make_yolo_tree(tmp_path / "looked", IMAGES)
    ds = load_yolo(root)
    first = _flagged(run_audit(ds, out_dir=tmp_path / "a1", **AUDIT))
    assert {(C, None), (D, 2)} <= first
    fod = find_fiftyone(ds)
    for s in fod:
        if s.curate_rel == C:
            s.tags.append(OK_TAG)
        if s.curate_rel == D:
            s.ground_truth.detections[1].tags.append(OK_TAG)
        s.save()
    assert not {(C, None), (D, 2)} & _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a2", **AUDIT))
    return root


def _replace(path: Path, grey: int) -> None:
    """Another flat image in the file (still flagged by low_information: another picture all the same)."""
    Image.new("RGB", (64, 48), (grey, grey, grey)).save(path)


def test_an_image_replaced_since_its_ok_is_flagged_again_by_a_reaudit(make_yolo_tree, tmp_path: Path) -> None:
    """The image tagged ``ok`` and the image with an ``ok`` box were both replaced by other pictures: the next audit
    carried the tags to the rebuilt FiftyOne dataset and hid both findings, though nobody looked at these images.
    The review of those images is kept under a dated name (like a label file changed since), a note names it, and
    the findings are back."""
    import fiftyone as fo

    root = _reviewed(make_yolo_tree, tmp_path)
    _replace(root / "train" / "images" / "c.jpg", 120)
    _replace(root / "train" / "images" / "d.jpg", 90)
    notes: list[str] = []
    again = run_audit(load_yolo(root), out_dir=tmp_path / "a3", note=notes.append, **AUDIT)
    assert {(C, None), (D, 2)} <= _flagged(again)
    assert [n for n in fo.list_datasets() if n.startswith(default_name(load_yolo(root)) + "-review-")], notes
    assert any("--from-fiftyone" in n for n in notes), notes


def test_an_image_rewritten_with_its_size_and_time_is_flagged_again(make_yolo_tree, tmp_path: Path) -> None:
    """Bytes changed, size and modification time kept (``cp -p``, a sync tool, an editor that restores them): the
    FiftyOne dataset was not rebuilt (its fingerprint is by size and time), and the ``ok`` tags held for bytes
    nobody looked at. The audit sees the bytes of each image with an ``ok`` and rebuilds, keeping the review aside
    as for a replaced picture (a new ``ok`` then holds: tests/fiftyone/test_stale_review.py)."""
    import fiftyone as fo

    root = _reviewed(make_yolo_tree, tmp_path)
    for name in ("c.jpg", "d.jpg"):
        path = root / "train" / "images" / name
        st = path.stat()
        data = bytearray(path.read_bytes())
        assert data[6:18] == b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01"  # JFIF density 1:1, not a pixel of the picture
        data[14:18] = b"\x00\x48\x00\x48"  # density 72:72: other bytes, the same size
        path.write_bytes(bytes(data))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    notes: list[str] = []
    again = run_audit(load_yolo(root), out_dir=tmp_path / "a3", note=notes.append, **AUDIT)
    assert {(C, None), (D, 2)} <= _flagged(again)
    assert [n for n in fo.list_datasets() if n.startswith(default_name(load_yolo(root)) + "-review-")], notes
    said = [n for n in notes if "--from-fiftyone" in n]
    assert len(said) == 1 and "2 reviewed image(s) changed on disk" in said[0], notes


def test_an_export_writes_no_mark_for_an_image_replaced_since_its_ok(make_yolo_tree, tmp_path: Path) -> None:
    """The export hashed the image as it was at export time, so curate_ok.json blessed a picture nobody looked at,
    and every later audit of the export hid its findings. No mark for it (nor for its ``ok`` boxes), a warning
    naming the file; the unchanged image keeps its marks."""
    root = _reviewed(make_yolo_tree, tmp_path)
    _replace(root / "train" / "images" / "c.jpg", 120)
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    marks = json.loads((tmp_path / "out" / OK_FILE).read_text())
    assert [(m["image"], m["line"]) for m in marks] == [("images/train/d.jpg", 2)], marks
    said = [w for w in result.warnings if C in w]
    assert len(said) == 1 and "changed since" in said[0], result.warnings
    assert (tmp_path / "out" / "labels" / "train" / "c.txt").read_bytes() == b""  # the export itself as before


def test_an_unchanged_review_keeps_its_marks_after_another_file_changed(make_yolo_tree, tmp_path: Path) -> None:
    """The same check lets through what was looked at: another label file changed (the FiftyOne dataset is rebuilt
    and the review carried over) and both ``ok`` still hold, before and after the export."""
    root = _reviewed(make_yolo_tree, tmp_path)
    (root / "train" / "labels" / "a.txt").write_text("0 0.4 0.5 0.2 0.2\n")
    notes: list[str] = []
    again = run_audit(load_yolo(root), out_dir=tmp_path / "a3", note=notes.append, **AUDIT)
    assert not {(C, None), (D, 2)} & _flagged(again), notes
    assert not [n for n in notes if "ok" in n and "changed since" in n], notes
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    marks = json.loads((tmp_path / "out" / OK_FILE).read_text())
    assert {(m["image"], m["line"]) for m in marks} == {("images/train/c.jpg", None), ("images/train/d.jpg", 2)}
    assert not [w for w in result.warnings if "changed since" in w and "ok" in w], result.warnings


def test_a_box_ok_holds_only_for_its_line_as_loaded(make_yolo_tree, tmp_path: Path) -> None:
    """The label side (held before this session by the rebuild, kept here as a guard): d's lines rewritten by hand
    into another duplicate pair after the ``ok`` on line 2. The review of d is kept aside (its file changed since),
    the rebuilt dataset has no ``ok`` on the new line 2, and the duplicate is flagged again; c's ``ok`` still holds."""
    root = _reviewed(make_yolo_tree, tmp_path)
    (root / "train" / "labels" / "d.txt").write_text("1 0.3 0.7 0.1 0.2\n1 0.3 0.7 0.1 0.2\n")
    notes: list[str] = []
    again = _flagged(run_audit(load_yolo(root), out_dir=tmp_path / "a3", note=notes.append, **AUDIT))
    assert (D, 2) in again and (C, None) not in again, notes


def test_box_edits_made_on_a_replaced_picture_are_kept_aside_and_named(make_yolo_tree, tmp_path: Path) -> None:
    """A box moved in the App, then the image replaced by another picture: the rebuild carried the move over to the
    new picture silently. The review is kept under a dated name, as for a label file changed since; its export
    (asked for by name) writes the move and a warning names the image whose picture changed under it."""
    import fiftyone as fo

    root = make_yolo_tree(tmp_path / "moved", IMAGES)
    ds = load_yolo(root)
    run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    s = next(s for s in find_fiftyone(ds) if s.curate_rel == "train/images/a.jpg")
    s.ground_truth.detections[0].bounding_box = [0.1, 0.1, 0.2, 0.2]
    s.save()
    _replace(root / "train" / "images" / "a.jpg", 60)
    changed = load_yolo(root)
    run_audit(changed, out_dir=tmp_path / "a2", **AUDIT)
    kept = [n for n in fo.list_datasets() if n.startswith(default_name(changed) + "-review-")]
    assert len(kept) == 1
    fresh = next(s for s in find_fiftyone(changed) if s.curate_rel == "train/images/a.jpg")
    assert fresh.ground_truth.detections[0].bounding_box == pytest.approx([0.4, 0.4, 0.2, 0.2])  # the file as it is
    result = export_reviewed(changed, tmp_path / "out", fiftyone_name=kept[0])
    assert (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().startswith("0 0.2")
    said = [w for w in result.warnings if w.startswith("train/images/a.jpg: the image file changed")]
    assert len(said) == 1, result.warnings
