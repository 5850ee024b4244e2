"""Reader/writer tests: the pure parser without files, then whole trees written to tmp_path."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from PIL import Image

from curate.io.yolo import DatasetError, WriteError, format_label_lines, load_yolo, parse_label_lines, save_yolo

# ---------------------------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    "text, n_labels, reason",
    [
        ("0 0.5 0.5 0.2 0.2\n", 1, None),  # plain box
        ("0 0.5 0.5 0.2 0.2", 1, None),  # no final newline
        ("\n\n0 0.5 0.5 0.2 0.2\n\n", 1, None),  # blank lines are skipped
        ("1 0.1 0.1 0.3 0.1 0.3 0.4\n", 1, None),  # polygon with 3 points
        ("3 0.5 0.5 0.2 0.2\n", 0, "out of range"),  # class id >= nc
        ("-1 0.5 0.5 0.2 0.2\n", 0, "out of range"),  # negative class id
        ("0 0.5 abc 0.2 0.2\n", 0, "non-numeric"),  # non-numeric field
        ("0 0.5 0.5 0.2\n", 0, "wrong field count"),  # 4 fields
        ("0 0.5 0.5 0.2 0.2 0.1\n", 0, "wrong field count"),  # 6 fields
        ("0 0.1 0.1 0.3 0.1 0.3 0.4 0.5 0.5\n", 1, None),  # polygon with 4 points
        ("0 0.1 0.1 0.3 0.1 0.3 0.4 0.5\n", 0, "wrong field count"),  # 8 fields: half a point
        ("0 0.9 0.5 0.4 0.2\n", 1, None),  # x2 = 1.1: Ultralytics checks cx, cy, w, h, not the corners
        ("0 1.0 0.5 0.2 0.2\n", 1, None),  # centre on the right edge
        ("0 0.5 1.5 0.2 0.2\n", 0, "outside the image"),  # cy > 1.01
        ("0 0.5 0.5 1.1 0.2\n", 0, "outside the image"),  # w > 1.01
        ("0 -0.05 0.5 0.2 0.2\n", 0, "outside the image"),  # cx < -0.01
        ("0 1.01 0.5 0.01 0.2\n", 0, "wholly outside"),  # x 1.005..1.015: nothing of it in the image
        ("0 0.9 0.1 1.1 0.1 1.1 0.3\n", 1, None),  # polygon reaching past the edge, its box's centre on it
        ("0 0.5 0.5 0 0.2\n", 0, "zero or negative"),  # zero width
        ("0 0.5 0.5 -0.1 0.2\n", 0, "zero or negative"),  # negative width
        ("1.5 0.5 0.5 0.2 0.2\n", 0, "not an integer"),  # fractional class
        ("0 1.5 0.5 0.2 0.2 0.3 0.3\n", 0, "outside the image"),  # polygon's box: w 1.3
        ("0 nan 0.5 0.2 0.2\n", 0, "NaN or infinite"),
        ("0 0.5 0.5 inf 0.2\n", 0, "NaN or infinite"),
        ("0 0.5 0.5 0.2 -inf\n", 0, "NaN or infinite"),
        ("0 0.1 0.1 0.3 0.1 0.3 NaN\n", 0, "NaN or infinite"),
    ],
)
def test_parse_label_lines(text: str, n_labels: int, reason: str | None) -> None:
    labels, problems = parse_label_lines(text.encode(), nc=3)
    assert len(labels) == n_labels
    if reason is None:
        assert problems == []
    else:
        assert len(problems) == 1 and reason in problems[0].reason and problems[0].line >= 1


def test_polygon_keeps_points_and_derives_box() -> None:
    labels, _ = parse_label_lines(b"2 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n", nc=3)
    (lb,) = labels
    assert lb.polygon == (0.1, 0.2, 0.5, 0.2, 0.5, 0.6, 0.1, 0.6)
    assert lb.xyxy == pytest.approx((0.1, 0.2, 0.5, 0.6))
    assert lb.line == 1 and lb.class_id == 2


def test_line_numbers_are_one_based_and_count_blank_lines() -> None:
    labels, problems = parse_label_lines(b"0 0.5 0.5 0.1 0.1\n\nbad\n1 0.5 0.5 0.1 0.1\n", nc=2)
    assert [lb.line for lb in labels] == [1, 4]
    assert [p.line for p in problems] == [3]


def test_bom_crlf_and_non_utf8() -> None:
    labels, problems = parse_label_lines(
        b"\xef\xbb\xbf0 0.5 0.5 0.1 0.1\r\n0 0.5 0.5 0.1 0.1\r\n\xff\xfe 0.5\r\n", nc=1
    )
    assert len(labels) == 2
    reasons = sorted(p.reason for p in problems)
    assert any("byte-order mark" in r for r in reasons)
    assert any("CRLF" in r for r in reasons)
    assert any("non-UTF-8" in r and p.line == 3 for p in problems for r in [p.reason])


def test_small_overshoot_is_clipped_not_flagged() -> None:
    labels, problems = parse_label_lines(b"0 0.9 0.5 0.202 0.2\n", nc=1)  # x2 = 1.001
    assert problems == [] and labels[0].xyxy[2] == pytest.approx(1.0)


# Lines around the edge of what Ultralytics' verify_image_label accepts (cx, cy, w, h <= 1.01; cx, cy >= -0.01).
ULTRALYTICS_EDGE = [
    "0 1.0 0.5 0.2 0.2",  # centre on the right edge: x 0.9..1.1
    "0 0.0 0.0 0.3 0.3",  # centre on the top-left corner
    "0 0.5 1.0 0.5 0.4",
    "0 1.01 0.5 0.2 0.2",  # 1 % tolerance
    "0 -0.01 0.5 0.2 0.2",
    "0 0.5 0.5 1.01 1.01",
    "0 0.9 0.5 0.4 0.2",
    "0 1.02 0.5 0.2 0.2",  # rejected from here on
    "0 -0.02 0.5 0.2 0.2",
    "0 0.5 0.5 1.02 0.2",
    "0 0.5 0.5 0.2 -0.1",
    "0 0.5 1.3 0.2 0.2",
    "0 0.9 0.1 1.1 0.1 1.1 0.3",  # polygon: its box's centre on the edge
    "0 -0.2 0.1 0.6 0.1 0.6 0.3",  # polygon: a point at -0.2, its box's centre at 0.2
    "0 1.5 0.5 0.2 0.2 0.3 0.3",  # polygon: its box 1.3 wide
]


@pytest.mark.parametrize("line", ULTRALYTICS_EDGE)
def test_reader_accepts_the_coordinates_ultralytics_accepts(tmp_path: Path, line: str) -> None:
    """The reader flagged ``0 1.0 0.5 0.2 0.2`` (centre on the image edge) and dropped it; Ultralytics trains on it.
    Compared with Ultralytics' own check of the same file, not with a copy of its rule."""
    from ultralytics.data.utils import verify_image_label

    _jpg(tmp_path / "images" / "a.jpg", (32, 32))
    _write(tmp_path / "labels" / "a.txt", line + "\n")
    im_file, lb_file = str(tmp_path / "images" / "a.jpg"), str(tmp_path / "labels" / "a.txt")
    ultralytics_reads = verify_image_label((im_file, lb_file, "", False, 1, 0, 0, False))[1] is not None
    labels, problems = parse_label_lines(line.encode(), nc=1)
    assert (len(labels) == 1 and problems == []) == ultralytics_reads, problems
    if labels:
        x1, y1, x2, y2 = labels[0].xyxy
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1  # the checks see the part inside the image
        assert format_label_lines(labels) == format_label_lines(parse_label_lines(f"{line}\n".encode(), nc=1)[0])
        assert [float(v) for v in format_label_lines(labels).split()] == [float(v) for v in line.split()]


def test_format_round_trip() -> None:
    labels, _ = parse_label_lines(b"0 0.5 0.25 0.125 0.5\n1 0.1 0.1 0.3 0.1 0.3 0.4\n", nc=2)
    again, problems = parse_label_lines(format_label_lines(labels).encode(), nc=2)
    assert [p.line for p in problems] == [2] and "mixes polygon rows" in problems[0].reason  # as the input did
    assert [(a.class_id, a.xyxy, a.polygon) for a in again] == [(b.class_id, b.xyxy, b.polygon) for b in labels]


# ---------------------------------------------------------------------------------------------- files


def _jpg(path: Path, size: tuple[int, int] = (32, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, "JPEG")


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _roboflow(root: Path, labels: dict[str, bytes | str | None], names: list[str] | None = None) -> Path:
    """A Roboflow-style tree: ``<split>/images/<stem>.jpg`` + labels; a None label = no label file."""
    names = names or ["a", "b"]
    for key, data in labels.items():
        split, stem = key.split("/")
        _jpg(root / split / "images" / f"{stem}.jpg")
        if data is not None:
            _write(root / split / "labels" / f"{stem}.txt", data)
    _write(root / "data.yaml", f"train: ../train/images\nval: ../valid/images\nnc: {len(names)}\nnames: {names}\n")
    return root


def _findings(ds, check: str = "format"):
    return [(f.image, f.line, f.message) for f in ds.findings if f.check == check]


@pytest.mark.parametrize(
    "label, line, reason",
    [
        ("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n", 2, "out of range"),
        ("-2 0.5 0.5 0.2 0.2\n", 1, "out of range"),
        ("0 0.5 0.5 0.2 0.2\n0 x 0.5 0.2 0.2\n", 2, "non-numeric"),
        ("0 0.5 0.5 0.2\n", 1, "wrong field count"),
        ("0 0.5 0.5 0.2 0.2\n0 0.5 1.4 0.2 0.2\n", 2, "outside the image"),
        ("0 0.5 0.5 0.0 0.2\n", 1, "zero or negative"),
        (b"0 0.5 0.5 0.2 0.2\n\xc3\x28 0.5 0.5 0.2 0.2\n", 2, "non-UTF-8"),
        (b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\n", 1, "byte-order mark"),
    ],
)
def test_each_malformed_kind_is_a_finding_with_file_and_line(tmp_path: Path, label, line, reason) -> None:
    root = _roboflow(tmp_path / "ds", {"train/img1": label, "valid/img2": "1 0.5 0.5 0.2 0.2\n"})
    before = _tree_digest(root)
    ds = load_yolo(root)
    found = _findings(ds)
    assert any(img == "train/images/img1.jpg" and ln == line and reason in msg for img, ln, msg in found), found
    assert _tree_digest(root) == before  # the input is never touched


def test_crlf_is_a_file_level_finding(tmp_path: Path) -> None:
    root = _roboflow(tmp_path / "ds", {"train/img1": "0 0.5 0.5 0.2 0.2\r\n1 0.5 0.5 0.2 0.2\r\n"})
    ds = load_yolo(root)
    assert len(ds.split("train")[0].labels) == 2
    assert any("CRLF" in m for _, _, m in _findings(ds))


def test_label_without_image_background_and_duplicate_stems(tmp_path: Path) -> None:
    root = _roboflow(tmp_path / "ds", {"train/img1": "0 0.5 0.5 0.2 0.2\n", "train/bg": None})
    _write(root / "train" / "labels" / "orphan.txt", "0 0.5 0.5 0.2 0.2\n")
    Image.new("RGB", (8, 8)).save(root / "train" / "images" / "img1.png")
    before = _tree_digest(root)
    ds = load_yolo(root)
    found = _findings(ds)
    assert ("train/labels/orphan.txt", None, "label file without an image") in found
    dup = [f for f in found if "same stem" in f[2]]
    assert {f[0] for f in dup} == {"train/images/img1.jpg", "train/images/img1.png"}
    bg = [r for r in ds.images if r.stem == "bg"]
    assert bg and bg[0].is_background and bg[0].label_path is None
    assert not any(f[0].endswith("bg.jpg") for f in found)  # a background image is not an error
    assert _tree_digest(root) == before


def test_two_images_sharing_a_stem_get_a_label_file_each(tmp_path: Path) -> None:
    """``a.jpg`` and ``a.png`` share ``a.txt`` in the input; the writer names them so that each has its own label
    file (Ultralytics finds a label by the image's stem): an edit of one image's labels is not read for the other
    (before: both were written to ``labels/train/a.txt``, the last one written won)."""
    import dataclasses

    root = _roboflow(tmp_path / "ds", {"train/a": "0 0.5 0.5 0.2 0.2\n"})
    Image.new("RGB", (8, 8)).save(root / "train" / "images" / "a.png")
    ds = load_yolo(root)
    jpg = next(r for r in ds.images if r.path.suffix == ".jpg")
    png = next(r for r in ds.images if r.path.suffix == ".png")
    edited = dataclasses.replace(png, labels=[dataclasses.replace(png.labels[0], class_id=1)], edited=True)
    ds = dataclasses.replace(ds, images=[edited if r is png else r for r in ds.images])
    out = save_yolo(ds, tmp_path / "out")
    names = {p.name: p.stem for p in (out / "images" / "train").iterdir()}
    assert len(set(names.values())) == 2
    labels = {name: (out / "labels" / "train" / f"{stem}.txt").read_text() for name, stem in names.items()}
    assert labels[jpg.path.name] == "0 0.5 0.5 0.2 0.2\n"
    assert [v for k, v in labels.items() if k != jpg.path.name] == ["1 0.5 0.5 0.2 0.2\n"]


def test_unreadable_truncated_and_empty_images(tmp_path: Path) -> None:
    root = _roboflow(tmp_path / "ds", {"train/ok": "0 0.5 0.5 0.2 0.2\n"})
    _write(root / "train" / "images" / "empty.jpg", b"")
    _write(root / "train" / "images" / "junk.jpg", b"this is not an image at all")
    ds = load_yolo(root)
    msgs = {img: msg for img, _, msg in _findings(ds)}
    assert "0 bytes" in msgs["train/images/empty.jpg"]
    assert "unreadable image" in msgs["train/images/junk.jpg"]


def test_layouts_ultralytics_flat_and_txt_list(tmp_path: Path) -> None:
    ul = tmp_path / "ul"
    for split in ("train", "val"):
        _jpg(ul / "images" / split / f"{split}1.jpg")
        _write(ul / "labels" / split / f"{split}1.txt", "0 0.5 0.5 0.2 0.2\n")
    ds = load_yolo(ul)  # no yaml: classes numbered, splits from folders
    assert ds.splits == ["train", "val"] and ds.names == ["0"] and ds.warnings

    flat = tmp_path / "flat"
    _jpg(flat / "images" / "a.jpg")
    _write(flat / "labels" / "a.txt", "1 0.5 0.5 0.2 0.2\n")
    _write(flat / "classes.txt", "cat\ndog\n")
    ds = load_yolo(flat)
    assert ds.splits == ["train"] and ds.names == ["cat", "dog"] and ds.num_boxes == 1

    _write(ul / "train.txt", "./images/train/train1.jpg\n./images/train/missing.jpg\n")
    _write(ul / "data.yaml", "path: .\ntrain: train.txt\nval: [images/val]\nnames: {0: thing}\n")
    ds = load_yolo(ul / "data.yaml")
    assert [r.rel for r in ds.split("train")] == ["images/train/train1.jpg"]
    assert ds.names == ["thing"]
    assert any(f.line == 2 and "not found" in f.message for f in ds.findings)


def test_foreign_absolute_paths_resolve_next_to_yaml(tmp_path: Path) -> None:
    root = _roboflow(tmp_path / "ds", {"train/a": "0 0.5 0.5 0.2 0.2\n", "valid/b": "1 0.5 0.5 0.2 0.2\n"})
    _write(
        root / "data.yaml",
        "train: /Users/x/proj/ds-8/train/images\nval: /Users/x/proj/ds-8/valid/images\n"
        "test: ../test/images\nnames: [a, b]\n",
    )
    ds = load_yolo(root)
    assert ds.splits == ["train", "val"]
    assert any("does not exist here" in w for w in ds.warnings) and any(
        "test" in w and "skipped" in w for w in ds.warnings
    )


def test_nothing_to_read_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_yolo(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such"):
        load_yolo(tmp_path / "nope")


def test_writer_round_trip_is_byte_identical_and_refuses_input(tmp_path: Path) -> None:
    root = _roboflow(
        tmp_path / "ds",
        {
            "train/a": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n",
            "train/bg": "",
            "train/nolabel": None,
            "valid/b": "1 0.1 0.1 0.3 0.1 0.3 0.4\n",
        },
    )
    ds = load_yolo(root)
    out = save_yolo(ds, tmp_path / "out")
    assert (out / "labels/train/a.txt").read_bytes() == (root / "train/labels/a.txt").read_bytes()
    assert (out / "labels/valid/b.txt").exists() is False and (out / "labels/val/b.txt").read_bytes() == (
        root / "valid/labels/b.txt"
    ).read_bytes()
    assert (out / "labels/train/bg.txt").read_bytes() == b"" and (out / "labels/train/nolabel.txt").read_bytes() == b""
    again = load_yolo(out)
    assert again.names == ["a", "b"] and again.splits == ["train", "val"]
    assert [(r.rel.split("/")[-1], [lb.xyxy for lb in r.labels]) for r in again.images] == [
        (r.path.name, [lb.xyxy for lb in r.labels]) for r in sorted(ds.images, key=lambda r: (r.split, r.path.name))
    ]
    for bad in (root, root / "train", tmp_path):
        with pytest.raises(WriteError):
            save_yolo(ds, bad)
    with pytest.raises(WriteError, match="not empty"):
        save_yolo(ds, out)


def test_writer_rewrites_only_edited(tmp_path: Path) -> None:
    from dataclasses import replace

    root = _roboflow(tmp_path / "ds", {"train/a": "0 0.50 0.5 0.2 0.2\n", "train/b": "1 0.500 0.5 0.2 0.2\n"})
    ds = load_yolo(root)
    rec = ds.split("train")[0]
    rec.labels = [replace(rec.labels[0], class_id=1)]
    rec.edited = True
    out = save_yolo(ds, tmp_path / "out")
    assert (out / "labels/train/a.txt").read_text() == "1 0.5 0.5 0.2 0.2\n"
    assert (out / "labels/train/b.txt").read_bytes() == b"1 0.500 0.5 0.2 0.2\n"


def test_a_box_past_the_image_edge_is_written_back_as_it_was(tmp_path: Path) -> None:
    """Read clipped to the image for the checks, a box whose centre lies on the edge is written with its own
    numbers when its file is rewritten (an edit of another line, a class renumbered by rebalance); a box
    that was moved is written where it is now."""
    from dataclasses import replace

    from curate.ops.rebalance import RebalanceOptions, rebalance, write_rebalanced

    root = _roboflow(
        tmp_path / "ds",
        {"train/a": "1 1.0 0.5 0.2 0.2\n0 0.3 0.3 0.1 0.1\n", "train/b": "0 0 0 0.4 0.4 0.2 0 0.2 -0.01\n"},
    )
    ds = load_yolo(root)
    assert not _findings(ds)
    a = next(r for r in ds.images if r.stem == "a")
    assert (a.labels[0].cx, a.labels[0].w) == pytest.approx((0.95, 0.1))
    a.labels = [a.labels[0], replace(a.labels[1], cx=0.35)]  # another line edited
    a.edited = True
    b = next(r for r in ds.images if r.stem == "b")
    b.labels, b.edited = list(b.labels), True
    out = save_yolo(ds, tmp_path / "out")
    assert (out / "labels/train/a.txt").read_text() == "1 1 0.5 0.2 0.2\n0 0.35 0.3 0.1 0.1\n"
    assert (out / "labels/train/b.txt").read_text() == "0 0 0 0.4 0.4 0.2 0 0.2 -0.01\n"

    a.labels = [replace(a.labels[0], cx=0.5)]  # this box moved: its old numbers no longer apply
    assert format_label_lines(a.labels) == "1 0.5 0.5 0.1 0.2\n"

    options = RebalanceOptions(split="50/50", keep_classes=["b"])
    result = rebalance(load_yolo(root), options, near_duplicates=lambda d: [])
    written = write_rebalanced(result, tmp_path / "rebalanced")
    (a_txt,) = written.glob("labels/*/a.txt")
    assert a_txt.read_text() == "0 1 0.5 0.2 0.2\n"  # class 1 -> 0, box as it was


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_image_size_is_the_upright_size_ultralytics_and_opencv_see(tmp_path: Path, fmt: str, orientation: int) -> None:
    """``record.size`` was PIL's stored size: for EXIF orientations 5-8 width and height were swapped against the
    pixels every crop, mask and thumbnail is cut from (OpenCV turns the image) and against Ultralytics' exif_size."""
    from ultralytics.data.utils import exif_size

    from curate.core.dataset import ImageRecord
    from curate.vision.foreground import read_image

    root = _roboflow(tmp_path / "ds", {"train/a": "0 0.5 0.5 0.2 0.2\n"})
    path = root / "train/images/a.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (48, 32), (120, 30, 200)).save(path, fmt, exif=exif)  # stored 48 wide, 32 high
    with Image.open(path) as im:
        ultralytics_size = exif_size(im)
    (record,) = load_yolo(root).images
    assert record.size == ultralytics_size == read_image(path).shape[1::-1]
    assert ImageRecord("train", path, "train/images/a.jpg").size == ultralytics_size  # read lazily: the same


def test_one_folder_listed_as_train_and_val_is_not_a_stem_clash(make_yolo_tree, tmp_path: Path) -> None:
    """``train: images`` and ``val: images`` (legal for Ultralytics) list each file twice; that is leakage
    (the near-duplicate check says so), not "images with the same stem share one label file"."""
    root = make_yolo_tree(
        tmp_path / "ds", {"train/a.jpg": ["0 0.5 0.5 0.2 0.2"], "train/b.jpg": []}, layout="ultralytics"
    )
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b]\n")
    ds = load_yolo(root)
    assert sorted((r.split, r.rel) for r in ds.images) == [
        ("train", "images/train/a.jpg"),
        ("train", "images/train/b.jpg"),
        ("val", "images/train/a.jpg"),
        ("val", "images/train/b.jpg"),
    ]
    assert not [f for f in ds.findings if "same stem" in f.message]


def test_a_name_given_to_two_class_ids_is_warned_about(make_yolo_tree, tmp_path: Path) -> None:
    """names: [a, a, b] is legal for Ultralytics, but rebalance silently merged ids 0 and 1 (it maps by name)."""
    root = make_yolo_tree(
        tmp_path / "ds", {"train/x.jpg": ["0 0.5 0.5 0.2 0.2", "1 0.2 0.2 0.1 0.1"]}, names=["a", "a", "b"]
    )
    ds = load_yolo(root)
    assert ds.names == ["a", "a", "b"] and len(ds.images[0].labels) == 2
    assert [w for w in ds.warnings if "names" in w] == [
        "data.yaml names: 'a' names classes 0, 1; rebalance writes them as one class"
    ]


def test_a_file_mixing_polygon_and_box_rows_is_a_problem_ultralytics_skips_the_image_for(tmp_path: Path) -> None:
    """Ultralytics' label check drops the whole image when polygon and box rows mix; both are still read here."""
    from PIL import Image
    from ultralytics.data.utils import verify_image_label

    text = "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n"
    labels, problems = parse_label_lines(text.encode(), nc=2)
    assert len(labels) == 2
    (p,) = problems
    assert p.line == 2 and "Ultralytics skips the whole image" in p.reason
    assert parse_label_lines(b"0 0.5 0.5 0.2 0.2\n", nc=2)[1] == []
    assert parse_label_lines(b"1 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n", nc=2)[1] == []
    img, lab = tmp_path / "a.jpg", tmp_path / "a.txt"
    Image.new("RGB", (64, 64)).save(img)
    lab.write_text(text)
    assert "mix segment and detection rows" in verify_image_label((str(img), str(lab), "", False, 2, 0, 0, False))[-1]


def _jpeg_variants(tmp_path: Path) -> list[bytes]:
    """JPEGs as PIL writes them with every option that changes the header, plus a PNG."""
    import io

    from PIL import ImageCms

    def save(mode: str, size: tuple[int, int] = (40, 24), **kw) -> bytes:
        buf = io.BytesIO()
        Image.new(mode, size, 90 if mode == "L" else (200, 40, 90, 10)[: len(mode)]).save(
            buf, kw.pop("format", "JPEG"), **kw
        )
        return buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return [
        save("RGB"),
        save("L"),
        save("CMYK"),
        save("RGB", (1, 1)),
        save("RGB", (3000, 7)),
        save("RGB", progressive=True),
        save("RGB", optimize=True),
        save("RGB", quality=100),
        save("RGB", quality=1),
        save("RGB", dpi=(300, 300)),
        save("RGB", comment=b"made here"),
        save("RGB", exif=exif),
        save("RGB", icc_profile=icc),
        save("RGB", subsampling=0),
        save("RGB", restart_marker_rows=1),
        save("RGB", qtables=[[300] * 64]),
        save("RGB", format="PNG"),
    ]


def test_plain_jpeg_size_is_pils_upright_size_or_none(tmp_path: Path) -> None:
    """The reader's JPEG header shortcut never claims a size PIL would not give: on PIL's own variants, on every
    truncation of their headers and on corrupted header bytes it answers PIL's size or None (PIL decides)."""
    import io
    import random

    from curate.core.dataset import upright_size
    from curate.io.yolo import JPEG_HEAD_BYTES, plain_jpeg_size

    def pil_size(data: bytes) -> tuple[int, int] | None:
        try:
            with Image.open(io.BytesIO(data)) as im:
                return upright_size(im)
        except Exception:  # noqa: BLE001 — any failure: the shortcut must not have answered
            return None

    rng = random.Random(3)
    cases: list[bytes] = []
    answered = 0
    for data in _jpeg_variants(tmp_path):
        cases.append(data)
        cases.extend(data[:n] for n in range(min(len(data), 700)))
        for _ in range(300):
            bad = bytearray(data)
            for _ in range(rng.randint(1, 3)):
                bad[rng.randrange(min(len(bad), 700))] = rng.choice([0, 1, 0xFF, 0xD8, 0xDA, 0xC0, rng.randrange(256)])
            cases.append(bytes(bad))
    for data in cases:
        fast = plain_jpeg_size(data[:JPEG_HEAD_BYTES])
        if fast is not None:
            answered += 1
            assert fast == pil_size(data)
    assert answered > len(cases) // 10  # the shortcut does answer for most plain files
    plain = _jpeg_variants(tmp_path)
    assert [plain_jpeg_size(d) is not None for d in plain] == [True] * 11 + [False, False] + [True, True, True, False]


@pytest.mark.parametrize(
    "image",
    [
        "/a/images/x.jpg",
        "/images/x.jpg",
        "images/x.jpg",
        "x.jpg",
        "/a/images/b/images/c/x.jpg",
        "/a/images/images/x",
        "/a/imagesx/x.jpg",
        "/a/ximages/x.JPG",
        "/a/images/.jpg",
        "/a/images/x.",
        "/a/images/x.tar.gz",
        "/a/images/.hidden.png",
        "rel/images/sub/x.png",
        "/a/b/images",
        "/images/images",
        "a",
        "/a/images/x..jpg",
    ],
)
def test_label_file_is_the_pathlib_rule_on_strings(image: str) -> None:
    """The reader's string form of Ultralytics' label path rule gives what the pathlib form it replaced gave."""
    from curate.io.yolo import _label_file

    def pathlib_rule(path: Path) -> Path:
        parts = list(path.parts)
        for i in range(len(parts) - 2, -1, -1):
            if parts[i] == "images":
                parts[i] = "labels"
                return Path(*parts).with_suffix(".txt")
        return path.with_suffix(".txt")

    assert _label_file(str(Path(image))) == str(pathlib_rule(Path(image)))


def test_image_files_finds_what_rglob_found(tmp_path: Path) -> None:
    """The reader's scandir walk lists the files ``rglob("*")`` + suffix + ``is_file`` listed: nested folders, odd
    names, links to files counted, linked folders not entered, broken links and folders named like images left out."""
    import os

    from curate.io.yolo import IMAGE_SUFFIXES, _image_files

    root = tmp_path / "images"
    for rel in [
        "a.jpg",
        "b.JPG",
        "c.jpeg.txt",
        ".jpg",
        "d.",
        "e.png",
        "sub/f.webp",
        "sub/deeper/g.tif",
        "sub/.h.bmp",
        "x.jpg/inner.jpg",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.jpg").write_bytes(b"x")
    os.symlink(outside, root / "linked_dir")
    os.symlink(outside / "o.jpg", root / "linked.jpg")
    os.symlink(tmp_path / "missing.jpg", root / "broken.jpg")
    want = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    assert sorted(_image_files(root)) == want
    assert root / "linked.jpg" in want and root / "x.jpg" / "inner.jpg" in want


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("nc: abc\nnames: [a, b]\n", "data.yaml nc: 'abc' is not a number of classes"),
        ("nc: [2]\nnames: [a, b]\n", "data.yaml nc: [2] is not a number of classes"),
        ("nc: -1\n", "data.yaml nc: -1 is not a number of classes"),
        ("nc: .inf\n", "data.yaml nc: inf is not a number of classes"),
        ("names: {0: a, 2: c}\n", "class ids 0..2 for 2 names; a mapping's keys must be 0..1"),
        ("names: {0: a, 1000000: b}\n", "class ids 0..1000000 for 2 names"),
    ],
)
def test_a_data_yaml_ultralytics_refuses_is_one_line_error(tmp_path: Path, yaml_text: str, expected: str) -> None:
    """``nc`` not an integer, or ``names`` keyed by ids other than 0..n-1: Ultralytics' check_det_dataset and
    check_class_names refuse them. Before, ``int(nc)`` raised ValueError/TypeError (a traceback), and a gap
    was filled with numbered names: a key of 10**9 built a list of 10**9 names (out of memory)."""
    root = _roboflow(tmp_path / "ds", {"train/a": "0 0.5 0.5 0.2 0.2\n"})
    _write(root / "data.yaml", "train: ../train/images\n" + yaml_text)
    with pytest.raises(DatasetError, match=re.escape(expected)):
        load_yolo(root)


@pytest.mark.parametrize("nc", ["'2'", "2.0", "2"])
def test_nc_written_as_an_integer_string_or_float_is_read_as_ultralytics_reads_it(tmp_path: Path, nc: str) -> None:
    root = _roboflow(tmp_path / "ds", {"train/a": "1 0.5 0.5 0.2 0.2\n"})
    _write(root / "data.yaml", f"train: ../train/images\nnc: {nc}\n")
    ds = load_yolo(root)
    assert ds.names == ["0", "1"] and ds.num_boxes == 1 and not ds.warnings


@pytest.mark.parametrize(
    "entry", ["..\\\\train\\\\images", "train\\\\images", "C:\\\\Users\\\\me\\\\ds\\\\train\\\\images"]
)
def test_a_split_written_with_windows_separators_is_read_with_a_warning(tmp_path: Path, entry: str) -> None:
    """A data.yaml saved on Windows: before, its train split was "not found; split skipped" and its images
    were left out of every command (rebalance wrote a dataset without them)."""
    root = _roboflow(tmp_path / "ds", {"train/a": "0 0.5 0.5 0.2 0.2\n", "valid/b": "1 0.5 0.5 0.2 0.2\n"})
    _write(root / "data.yaml", f'train: "{entry}"\nval: ../valid/images\nnames: [a, b]\n')
    ds = load_yolo(root)
    assert ds.splits == ["train", "val"] and ds.num_boxes == 2
    assert any("Windows separators" in w for w in ds.warnings), ds.warnings


@pytest.mark.parametrize(
    "bad_line",
    [
        "0 0.5 0.5 0.2 0.2 0.9",  # a confidence column
        "0 0.5 0.5 0.2",
        "0 x 0.5 0.2 0.2",
        "1.5 0.5 0.5 0.2 0.2",
        "9 0.5 0.5 0.2 0.2",
        "-1 0.5 0.5 0.2 0.2",
        "0 nan 0.5 0.2 0.2",
        "0 0.5 0.5 0 0.2",  # zero width: dropped here, kept by Ultralytics
    ],
)
def test_a_dropped_line_says_when_ultralytics_skips_the_whole_image(tmp_path: Path, bad_line: str) -> None:
    """One bad line costs the whole image (every good box of its file) in Ultralytics' training; its finding says
    so exactly where Ultralytics' own verify_image_label refuses the file."""
    from ultralytics.data.utils import verify_image_label

    text = f"0 0.5 0.5 0.2 0.2\n{bad_line}\n"
    _, problems = parse_label_lines(text.encode(), nc=2)
    assert len(problems) == 1 and problems[0].line == 2
    _jpg(tmp_path / "a.jpg")
    _write(tmp_path / "a.txt", text)
    skipped = (
        verify_image_label((str(tmp_path / "a.jpg"), str(tmp_path / "a.txt"), "", False, 2, 0, 0, False))[0] is None
    )
    assert ("Ultralytics skips the whole image" in problems[0].reason) == skipped


def test_a_pose_dataset_is_refused_in_one_line(tmp_path: Path) -> None:
    """Ultralytics' pose labels are class, box, then keypoints (``kpt_shape`` in data.yaml): 17 keypoints of
    2 values make a 39-field line, which the detection reader took for a polygon and boxed wrongly, and a
    rewritten line would have lost its keypoints. Refused before any label is read."""
    line = "0 0.5 0.5 0.2 0.4 " + " ".join(["0.5 0.45"] * 17) + "\n"
    root = _roboflow(tmp_path / "ds", {"train/a": line})
    _write(root / "data.yaml", "train: ../train/images\nkpt_shape: [17, 2]\nnames: [person]\n")
    with pytest.raises(DatasetError, match=re.escape("a pose dataset (kpt_shape [17, 2])")):
        load_yolo(root)
