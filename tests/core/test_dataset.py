"""The dataset model's own counts, and the one rule for folds by image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.folds import image_folds


def _record(split: str, name: str, classes: list[int]) -> ImageRecord:
    labels = [Label(c, 0.5, 0.5, 0.1, 0.1, k) for k, c in enumerate(classes, 1)]
    return ImageRecord(split, Path("/data") / name, f"{split}/{name}", labels=labels)


def test_instance_counts_per_split_by_id_and_by_name() -> None:
    """Two classes named alike count together by name; a class with no box in a split reads 0."""
    ds = Dataset(
        Path("/data"),
        "d",
        ["cat", "dog", "cat"],
        [_record("train", "a.jpg", [1, 0, 1]), _record("train", "b.jpg", []), _record("val", "c.jpg", [2, 0])],
    )
    assert ds.instance_counts() == {1: 2, 0: 2, 2: 1}
    assert list(ds.instance_counts()) == [1, 0, 2]  # in the order the boxes are met
    assert ds.instance_counts("train") == {1: 2, 0: 1} and ds.instance_counts("train")[2] == 0
    assert ds.instance_counts("val", by_name=True) == {"cat": 2}
    assert ds.instance_counts(by_name=True) == {"dog": 2, "cat": 3}
    assert ds.instance_counts("test") == {}


def test_image_folds_one_seeded_fold_per_image() -> None:
    folds = image_folds(500, 3, seed=0)
    assert folds.shape == (500,) and set(folds.tolist()) == {0, 1, 2}
    assert np.array_equal(folds, image_folds(500, 3, seed=0))
    assert not np.array_equal(folds, image_folds(500, 3, seed=1))
