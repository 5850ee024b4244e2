"""The box model's own-crop columns (curate.audit.boxmodel.owncrop_features): out of fold, cached, gated, and the
same numbers from a child process as here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_class_inconsistent import _fine_texture_dataset  # 30 images of checkerboard and flat-grey boxes

from curate.audit.boxmodel import owncrop_features
from curate.audit.checks.base import AuditContext
from curate.core.folds import image_folds
from curate.vision import embed

needs_weights = pytest.mark.skipif(not embed.weights_path().is_file(), reason="backbone weights not installed")


def _rows(tmp_path: Path, n_images: int = 9):
    """Images of four 48-px textured squares on flat grey; rows: the four real boxes ("ok"), box 0 enlarged 2×
    (loose) and box 1 moved by half its side (shifted). (paths, image, xyxy, y, fold, train)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    look = np.where((yy // 6 + xx // 6) % 2 == 0, 60, 200)
    paths, image, xyxy, y = [], [], [], []
    for i in range(n_images):
        img = rng.normal(128, 3, (192, 192, 3)).clip(0, 255).astype(np.uint8)
        boxes = []
        for cx, cy in [(48, 48), (144, 48), (48, 144), (144, 144)]:
            img[cy - 24 : cy + 24, cx - 24 : cx + 24] = (look[..., None] + rng.integers(-10, 10, 3)).clip(0, 255)
            boxes.append(np.array([cx - 24, cy - 24, cx + 24, cy + 24]) / 192)
        path = tmp_path / f"img{i:03d}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
        c0 = (boxes[0][:2] + boxes[0][2:]) / 2
        loose = np.clip(np.r_[c0 - 0.25, c0 + 0.25], 0, 1)
        shifted = boxes[1] + np.array([0.125, 0.0, 0.125, 0.0])
        for b, kind in [*((b, 0) for b in boxes), (loose, 1), (shifted, 2)]:
            image.append(i)
            xyxy.append(b)
            y.append(kind)
    image = np.array(image)
    fold = image_folds(n_images, 3, 0)[image]
    return paths, image, np.array(xyxy), np.array(y), fold, np.ones(len(y), bool)


@needs_weights
def test_a_rows_columns_hold_no_label_of_its_fold(tmp_path: Path) -> None:
    """Every label of fold 0's rows changed (and one of them no longer teaching): fold 0's columns are the same to
    the bit (its networks trained on the other folds only), the other folds' are not (theirs learnt fold 0)."""
    paths, image, xyxy, y, fold, train = _rows(tmp_path)
    assert len(np.unique(fold)) == 3
    before = owncrop_features.out_of_fold_columns(paths, image, xyxy, y, fold, train, seed=0)
    assert before.shape == (len(y), 4) and before.dtype == np.float32
    np.testing.assert_allclose(before.sum(axis=1), 1.0, rtol=1e-5)
    relabelled, taught = y.copy(), train.copy()
    relabelled[fold == 0] = 3 - relabelled[fold == 0]
    taught[np.flatnonzero(fold == 0)[0]] = False
    after = owncrop_features.out_of_fold_columns(paths, image, xyxy, relabelled, fold, taught, seed=0)
    assert np.array_equal(before[fold == 0], after[fold == 0])
    assert not np.array_equal(before[fold != 0], after[fold != 0])


def test_the_cache_key_covers_every_image_row_label_fold_seed_and_constant(tmp_path: Path, monkeypatch) -> None:
    paths, image, xyxy, y, fold, train = _rows(tmp_path, n_images=3)
    key = owncrop_features.columns_key(paths, image, xyxy, y, fold, train, seed=0)
    assert owncrop_features.columns_key(paths, image.copy(), xyxy.copy(), y.copy(), fold, train, seed=0) == key

    def changed(a: np.ndarray, value) -> np.ndarray:
        a = a.copy()
        a[-1] = value
        return a

    other = {
        "a row's image": owncrop_features.columns_key(paths, changed(image, 0), xyxy, y, fold, train, seed=0),
        "a box": owncrop_features.columns_key(paths, image, xyxy + (np.arange(len(y)) == 2)[:, None] * 0.01, y, fold,
                                              train, seed=0),
        "a label": owncrop_features.columns_key(paths, image, xyxy, changed(y, 3), fold, train, seed=0),
        "a fold": owncrop_features.columns_key(paths, image, xyxy, y, changed(fold, (fold[-1] + 1) % 3), train, seed=0),
        "a row that teaches": owncrop_features.columns_key(paths, image, xyxy, y, fold, changed(train, False), seed=0),
        "the seed": owncrop_features.columns_key(paths, image, xyxy, y, fold, train, seed=1),
    }  # fmt: skip
    img = cv2.imread(str(paths[1]))
    img[0, 0] = 0
    cv2.imwrite(str(paths[1]), img)
    other["an image's bytes"] = owncrop_features.columns_key(paths, image, xyxy, y, fold, train, seed=0)
    monkeypatch.setattr(owncrop_features, "MAX_CROP_PASSES", owncrop_features.MAX_CROP_PASSES + 1)
    other["a constant"] = owncrop_features.columns_key(paths, image, xyxy, y, fold, train, seed=0)
    monkeypatch.setattr(owncrop_features, "EPOCHS", owncrop_features.EPOCHS + 1)
    other["the epochs"] = owncrop_features.columns_key(paths, image, xyxy, y, fold, train, seed=0)
    assert len(set(other.values()) | {key}) == len(other) + 1, [k for k, v in other.items() if v == key]


@needs_weights
def test_the_columns_made_in_a_child_are_the_numbers_made_here_and_are_cached(tmp_path: Path, monkeypatch) -> None:
    from curate.runtime import worker

    paths, image, xyxy, y, fold, train = _rows(tmp_path, n_images=6)
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CURATE_DEBUG", "1")  # a failed child raises instead of falling back to this process
    spawned = []
    real_spawn = worker.try_spawn
    monkeypatch.setattr(worker, "try_spawn", lambda *a: spawned.append(a) or real_spawn(*a))
    from_child = owncrop_features.columns(paths, image, xyxy, y, fold, train, seed=0)
    assert len(spawned) == 1
    here = owncrop_features.out_of_fold_columns(paths, image, xyxy, y, fold, train, seed=0)
    assert from_child.dtype == here.dtype and np.array_equal(from_child, here)
    again = owncrop_features.columns(paths, image, xyxy, y, fold, train, seed=0)
    assert len(spawned) == 1 and np.array_equal(again, here)  # read from the cache: no child, no training


@needs_weights
def test_auto_adds_the_columns_where_the_backbone_does_not_name_the_classes_or_there_is_one(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    known = _fine_texture_dataset(tmp_path / "known", lambda i, j, look: look)  # the backbone names the look
    coin = np.random.default_rng(1).integers(0, 2, (30, 4))
    unknown = _fine_texture_dataset(tmp_path / "unknown", lambda i, j, look: int(coin[i, j]))  # a class no look tells
    one = _fine_texture_dataset(tmp_path / "one", lambda i, j, look: 0)
    auto = {"grouped": {"owncrops": "auto"}}
    assert owncrop_features.wanted(AuditContext(known, params=auto)) is False
    assert owncrop_features.wanted(AuditContext(unknown, params=auto)) is True
    assert owncrop_features.wanted(AuditContext(one, params=auto)) is True
    assert owncrop_features.wanted(AuditContext(one, params=auto, fast=True)) is False
    assert owncrop_features.wanted(AuditContext(known, params={"grouped": {"owncrops": True}})) is True
    assert owncrop_features.wanted(AuditContext(unknown)) is False  # the default: two classes, off (merged swapped)
    monkeypatch.setattr(owncrop_features, "MAX_BOXES", 100)  # each holds 120
    assert owncrop_features.wanted(AuditContext(one, params=auto)) is False


@needs_weights
def test_the_default_adds_the_columns_where_every_box_has_one_class_and_never_asks_the_backbone_otherwise(
    tmp_path: Path, monkeypatch
) -> None:
    """The default mode ``one-class``: one class → on; two classes → off without ``class_inconsistent``'s backbone
    test (no embeddings made, the box model the one without columns) even where ``auto`` would open; ``--fast`` and
    more than :data:`~owncrop_features.MAX_BOXES` boxes → off; the config accepts the mode's name."""
    from curate.audit.checks import class_inconsistent
    from curate.audit.config import ConfigError, validate_params
    from curate.core import defaults

    one = _fine_texture_dataset(tmp_path / "one", lambda i, j, look: 0)
    coin = np.random.default_rng(1).integers(0, 2, (30, 4))
    two = _fine_texture_dataset(tmp_path / "two", lambda i, j, look: int(coin[i, j]))  # auto opens here
    assert defaults.BOXMODEL_OWNCROPS == owncrop_features.ONE_CLASS == "one-class"

    def asked(ctx):
        raise AssertionError("the one-class gate asked the backbone")

    monkeypatch.setattr(class_inconsistent, "backbone_knows", asked)
    assert owncrop_features.wanted(AuditContext(one)) is True
    assert owncrop_features.wanted(AuditContext(two)) is False
    assert owncrop_features.wanted(AuditContext(two, params={"grouped": {"owncrops": "one-class"}})) is False
    assert owncrop_features.wanted(AuditContext(one, fast=True)) is False
    assert owncrop_features.wanted(AuditContext(one, params={"grouped": {"owncrops": False}})) is False
    assert validate_params({"grouped": {"owncrops": "one-class"}}) == {"grouped": {"owncrops": "one-class"}}
    with pytest.raises(ConfigError, match="one-class"):
        validate_params({"grouped": {"owncrops": "one_class"}})
    monkeypatch.setattr(owncrop_features, "MAX_BOXES", 100)  # it holds 120
    assert owncrop_features.wanted(AuditContext(one)) is False


@needs_weights
def test_an_audit_with_the_columns_never_imports_torch_in_its_own_process(tmp_path: Path) -> None:
    """``owncrops: true`` on the bundled sample: the box model's rows gain the four columns, made (and cached) by a
    child process; the audit's own process never imports torch."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from curate.io.yolo import load_yolo; from curate.audit.runner import run_audit; "
        "from curate.runtime.env import REPO; "
        "run_audit(load_yolo(REPO / 'curate' / 'sample' / 'food-mini'), params={'grouped': {'owncrops': True}}, "
        f"out_dir={str(tmp_path / 'out')!r}, only={{'grouped'}}, fiftyone=False, report=False); "
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "CURATE_CACHE_DIR": str(tmp_path / "cache"), "CURATE_DEBUG": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert list((tmp_path / "cache" / "ownbox").rglob("*.npy"))  # the child made and cached them
