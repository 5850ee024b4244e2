"""benchmarks/domain_shift.py: proxy-domain copies whose labels stay exactly valid, nothing of the input lost."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import domain_shift as ds
import numpy as np
import pytest
from PIL import Image

from curate.io.yolo import load_yolo

# 5 train images (a background, a polygon, a box on the border) and 2 val images: a mosaic of 2 + a partial one.
IMAGES = {
    "train/a.jpg": ["0 0.25 0.25 0.2 0.3", "1 0.7 0.6 0.3 0.2"],
    "train/b.jpg": ["1 0.5 0.5 0.4 0.4"],
    "train/c.jpg": [],
    "train/d.jpg": ["0 0.1 0.2 0.3 0.2 0.2 0.4", "1 0.9 0.9 0.2 0.2"],
    "train/e.jpg": ["0 0.5 0.5 1 1"],
    "val/f.jpg": ["1 0.3 0.3 0.2 0.2"],
    "val/g.jpg": ["0 0.6 0.6 0.2 0.2"],
}


def _source(tmp_path: Path, make_yolo_tree) -> Path:
    return make_yolo_tree(tmp_path / "toy", IMAGES, names=["a", "b"], size=(64, 48))


def _floats(line: str) -> list[float]:
    return [float(v) for v in line.split()[1:]]


def test_mosaic_moves_every_line_into_its_tile_once(tmp_path: Path, make_yolo_tree) -> None:
    """Each input line lands exactly once, in its split, at ``(c + tile) / 2`` (size halved), and the pixels
    under a moved box are the input's box colour; the images are twice the side."""
    src = _source(tmp_path, make_yolo_tree)
    out = ds.build(src, tmp_path / "out", "mosaic", seed=0)
    assert out == (tmp_path / "out" / "toy-mosaic").resolve()
    moved = load_yolo(out)
    assert {r.split: r.size for r in moved.images} == {"train": (128, 96), "val": (128, 96)}
    assert Counter(r.split for r in moved.images) == {"train": 2, "val": 1}
    with (out / "sources.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    seen = Counter((r["source_image"], int(r["source_line"])) for r in rows)
    original = load_yolo(src)
    expected = {(rec.rel, lab.line) for rec in original.images for lab in rec.labels}
    assert set(seen) == expected and set(seen.values()) == {1}
    by_rel = {rec.rel: rec for rec in original.images}
    out_lines = {
        (r.rel, lab.line): lab for r in moved.images for lab in r.labels
    }  # what curate itself reads from the output
    assert len(out_lines) == len(expected)
    for r in rows:
        src_rec = by_rel[r["source_image"]]
        src_lab = next(lab for lab in src_rec.labels if lab.line == int(r["source_line"]))
        new = out_lines[(r["image"], int(r["line"]))]
        assert new.class_id == src_lab.class_id
        assert src_rec.split == next(m.split for m in moved.images if m.rel == r["image"])
        col, row = int(r["col"]), int(r["row"])
        if src_lab.polygon is not None:
            want = [(v + (col if i % 2 == 0 else row)) / 2 for i, v in enumerate(src_lab.polygon)]
            assert np.allclose(new.polygon, want, atol=1e-6)
        else:
            assert np.allclose(
                [new.cx, new.cy, new.w, new.h],
                [(src_lab.cx + col) / 2, (src_lab.cy + row) / 2, src_lab.w / 2, src_lab.h / 2],
                atol=1e-6,
            )
            if src_lab.w < 1:  # the box's own colour is under its moved centre, not the background's
                img = np.asarray(Image.open(out / r["image"]).convert("RGB"), dtype=int)
                x, y = int(new.cx * 128), int(new.cy * 96)
                src_img = np.asarray(Image.open(src_rec.path).convert("RGB"), dtype=int)
                sx, sy = int(src_lab.cx * 64), int(src_lab.cy * 48)
                assert np.abs(img[y, x] - src_img[sy, sx]).max() <= 12
    assert (tmp_path / "toy" / "train" / "labels" / "a.txt").read_text().splitlines() == IMAGES["train/a.jpg"]


@pytest.mark.parametrize("transform", ["gray", "dark"])
def test_gray_and_dark_keep_names_and_labels_byte_for_byte(tmp_path: Path, make_yolo_tree, transform: str) -> None:
    """Every image under its own stem with its label file unchanged (so one seed plants the same errors); gray has
    three equal channels, dark is darker than the input."""
    src = _source(tmp_path, make_yolo_tree)
    out = ds.build(src, tmp_path / "out", transform)
    original, copy = load_yolo(src), load_yolo(out)
    assert sorted((r.split, r.path.stem) for r in copy.images) == sorted(
        (r.split, r.path.stem) for r in original.images
    )
    for rec in original.images:
        twin = next(r for r in copy.images if r.split == rec.split and r.path.stem == rec.path.stem)
        assert twin.label_path.read_bytes() == rec.label_path.read_bytes()
        pixels = np.asarray(Image.open(twin.path).convert("RGB"), dtype=int)
        before = np.asarray(Image.open(rec.path).convert("RGB"), dtype=int)
        if transform == "gray":
            assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 2
        else:
            assert pixels.mean() < 0.6 * before.mean()


def test_bad_lines_and_outputs_are_one_line_errors(tmp_path: Path, make_yolo_tree) -> None:
    """A line mosaic cannot move names its file and line (and leaves no folder); the output is never the input's
    folder nor an existing one."""
    src = make_yolo_tree(tmp_path / "bad", {"train/a.jpg": ["0 0.5 0.5 0.2 0.2", "0 0.5 0.5 0.2 0.2 0.3"]})
    with pytest.raises(ds.DomainError, match=r"a\.txt:2: .*5 numbers"):
        ds.build(src, tmp_path / "out", "mosaic")
    assert not (tmp_path / "out" / "bad-mosaic").exists()
    assert not (tmp_path / "out" / "bad-mosaic.partial").exists()
    with pytest.raises(ds.DomainError, match="inside the input"):
        ds.build(src, src, "gray")
    ds.build(src, tmp_path / "out", "gray")
    with pytest.raises(ds.DomainError, match="already exists"):
        ds.build(src, tmp_path / "out", "gray")
    assert ds.main(["--dataset", str(tmp_path / "nowhere"), "--transform", "gray", "--out", str(tmp_path)]) == 1


def test_dark_refuses_two_images_of_one_stem(tmp_path: Path, make_yolo_tree) -> None:
    """dark writes JPEGs: a.png and a.jpg in one split would both become a.jpg and one label file would be lost."""
    src = make_yolo_tree(tmp_path / "stems", {"train/a.jpg": ["0 0.5 0.5 0.2 0.2"], "train/b.jpg": []})
    Image.open(src / "train" / "images" / "b.jpg").save(src / "train" / "images" / "a.png")
    (src / "train" / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    with pytest.raises(ds.DomainError, match="stem 'a'"):
        ds.build(src, tmp_path / "out", "dark")
    assert not (tmp_path / "out" / "stems-dark").exists()
