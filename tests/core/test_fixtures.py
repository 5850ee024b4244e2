"""The make_yolo_tree fixture writes datasets the reader loads as written, in both layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from curate.io.yolo import load_yolo


@pytest.mark.parametrize("layout", ["roboflow", "ultralytics"])
def test_make_yolo_tree_round_trips_through_the_reader(tmp_path: Path, make_yolo_tree, layout: str) -> None:
    root = make_yolo_tree(
        tmp_path / "ds",
        images={
            "train/a.jpg": ["0 0.5 0.5 0.25 0.25", "1 0.2 0.2 0.1 0.1"],
            "val/b.jpg": [],
            "test/c.jpg": ["1 0.5 0.5 0.5 0.5"],
        },
        names=["a", "b"],
        layout=layout,
        size=(80, 64),
    )
    ds = load_yolo(root)
    assert ds.names == ["a", "b"]
    assert {r.split: len(r.labels) for r in ds.images} == {"train": 2, "val": 0, "test": 1}
    assert [f for f in ds.findings if f.check == "format"] == []
    train = next(r for r in ds.images if r.split == "train")
    assert train.size == (80, 64)
    # The box is drawn: its centre has the class colour, a corner keeps the background.
    with Image.open(train.path) as im:
        assert im.getpixel((40, 32))[0] > 180 and im.getpixel((40, 32))[1] < 90
        assert min(im.getpixel((79, 63))) > 200
