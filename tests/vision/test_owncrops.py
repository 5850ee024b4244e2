from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curate.vision import owncrops


def _textures(tmp_path: Path, n_images: int = 24) -> tuple[list, np.ndarray, np.ndarray]:
    """Class 0: a coarse checkerboard, class 1: horizontal stripes, of the same grey mean; two of each per image."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    looks = [np.where((yy // 6 + xx // 6) % 2 == 0, 60, 200), np.where((yy // 6) % 2 == 0, 60, 200)]
    items, y, groups = [], [], []
    for i in range(n_images):
        img = rng.normal(128, 3, (192, 192, 3)).clip(0, 255).astype(np.uint8)
        boxes = []
        for j, (cx, cy) in enumerate([(48, 48), (144, 48), (48, 144), (144, 144)]):
            cls = (i + j) % 2
            patch = looks[cls][..., None] + rng.integers(-10, 10, 3)
            img[cy - 24 : cy + 24, cx - 24 : cx + 24] = patch.clip(0, 255).astype(np.uint8)
            boxes.append([(cx - 24) / 192, (cy - 24) / 192, (cx + 24) / 192, (cy + 24) / 192])
            y.append(cls)
            groups.append(i)
        path = tmp_path / f"img{i:03d}.png"
        cv2.imwrite(str(path), img)
        items.append((path, np.array(boxes)))
    return items, np.array(y), np.array(groups)


def test_the_crops_own_classifier_names_their_class_out_of_fold(tmp_path: Path) -> None:
    items, y, groups = _textures(tmp_path)
    probs = owncrops.out_of_fold_probs(items, y, groups, 2, seed=0)
    assert probs.shape == (len(y), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (probs.argmax(axis=1) == y).mean() >= 0.9


def test_a_boxs_probabilities_hold_no_label_of_its_image(tmp_path: Path) -> None:
    """Every label of image 0 flipped: its boxes' probabilities are the same to the bit (its image was in no
    training fold of the network that scored it), so class_inconsistent's synthetic swaps stay exact."""
    items, y, groups = _textures(tmp_path, n_images=12)
    before = owncrops.out_of_fold_probs(items, y, groups, 2, seed=0)
    flipped = y.copy()
    flipped[groups == 0] = 1 - flipped[groups == 0]
    after = owncrops.out_of_fold_probs(items, flipped, groups, 2, seed=0)
    assert np.array_equal(before[groups == 0], after[groups == 0])
    assert not np.array_equal(before[groups != 0], after[groups != 0])  # the others were trained on image 0


def test_epochs_shrink_on_many_boxes_so_the_cost_is_bounded() -> None:
    assert owncrops.epochs_for(500) == owncrops.EPOCHS
    big = 10 * owncrops.MAX_CROP_PASSES
    assert owncrops.epochs_for(big) == 1
    n = owncrops.MAX_CROP_PASSES // (owncrops.FOLDS * 4)
    assert owncrops.epochs_for(n) * owncrops.FOLDS * n <= owncrops.MAX_CROP_PASSES
    assert owncrops.epochs_for(500, epochs=3) == 3  # a caller's own epoch count (the box model's columns), capped
    assert owncrops.epochs_for(big, epochs=3) == 1


def test_unreadable_image_gives_grey_crops_and_one_image_is_uniform(tmp_path: Path) -> None:
    crops = owncrops.crops(tmp_path / "absent.jpg", [[0.1, 0.1, 0.5, 0.5]])
    assert len(crops) == 1 and crops[0].shape == (owncrops.SIDE, owncrops.SIDE, 3)
    items, y, groups = _textures(tmp_path, n_images=1)
    assert np.all(owncrops.out_of_fold_probs(items, y, groups, 2, seed=0) == 0.5)


def test_the_cache_key_covers_every_image_box_label_option_and_constant(tmp_path: Path, monkeypatch) -> None:
    """The same arguments give the same key; each thing the probabilities depend on, changed alone, another."""
    items, y, groups = _textures(tmp_path, n_images=4)
    key = owncrops.probs_key(items, y, groups, 2, seed=0)
    assert owncrops.probs_key(items, y.copy(), groups, 2, seed=0) == key
    relabelled = y.copy()
    relabelled[-1] = 1 - relabelled[-1]
    moved = [(path, boxes + (0.01 if i == 3 else 0.0)) for i, (path, boxes) in enumerate(items)]
    other = {
        "a label": owncrops.probs_key(items, relabelled, groups, 2, seed=0),
        "a box": owncrops.probs_key(moved, y, groups, 2, seed=0),
        "the images' grouping": owncrops.probs_key(items, y, np.arange(len(y)), 2, seed=0),
        "the class count": owncrops.probs_key(items, y, groups, 3, seed=0),
        "the seed": owncrops.probs_key(items, y, groups, 2, seed=1),
    }
    cv2.imwrite(str(items[2][0]), np.zeros((192, 192, 3), np.uint8))  # an image's content
    other["an image"] = owncrops.probs_key(items, y, groups, 2, seed=0)
    monkeypatch.setattr(owncrops, "PAD", owncrops.PAD + 0.1)
    other["a constant"] = owncrops.probs_key(items, y, groups, 2, seed=0)
    assert key not in other.values() and len(set(other.values())) == len(other)
