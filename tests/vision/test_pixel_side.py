"""The pixel decode side grows with the image above 640 px, and the crop features decode at it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.core import defaults
from curate.core.dataset import ImageRecord, Label
from curate.vision import crops
from curate.vision.decode import pixel_side, record_side
from curate.vision.foreground import read_image


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    "size, side",
    [
        ((64, 48), 320),
        ((416, 416), 320),
        ((640, 480), 320),
        ((480, 640), 320),  # portrait: the long side decides
        ((641, 400), 320),  # just above: half is 320, never less
        ((960, 720), 480),
        ((1280, 1280), 640),
        ((720, 1280), 640),
        ((4000, 3000), 640),  # the ceiling
        ((3000, 4000), 640),
    ],
)
def test_pixel_side_is_320_up_to_640_px_then_half_the_long_side_up_to_640(size, side):
    assert pixel_side(size) == side
    assert pixel_side(size) == defaults.PIXEL_MAX_SIDE or size[0] > 640 or size[1] > 640


def _players(path: Path, side: int = 1280) -> list[Label]:
    """A grass field with small striped 'players' (12 × 24 px): their stripes survive a 640-px decode, not 320."""
    rng = np.random.default_rng(0)
    img = np.zeros((side, side, 3), np.uint8)
    img[:] = (40, 140, 60)
    img = (img + rng.normal(0, 6, img.shape)).clip(0, 255).astype(np.uint8)
    labels = []
    for n, (x, y) in enumerate([(200, 300), (640, 500), (1000, 900), (300, 1100)], start=1):
        for r in range(24):
            img[y + r, x : x + 12] = (230, 230, 230) if (r // 2) % 2 else (200, 30, 30)
        labels.append(Label(0, (x + 6) / side, (y + 12) / side, 12 / side, 24 / side, n))
    Image.fromarray(img).save(path)  # PNG: lossless, the decode sees exactly these pixels
    return labels


def test_crop_features_of_a_1280_px_image_come_from_a_640_px_decode(tmp_path):
    path = tmp_path / "big.png"
    labels = _players(path)
    rec = ImageRecord("train", path, "big.png", labels=labels)
    assert record_side(rec) == 640
    got = crops.record_features(rec)
    want = crops._features(read_image(path, max_side=640), labels)
    old = crops._features(read_image(path, max_side=320), labels)
    np.testing.assert_array_equal(got, want)
    assert not np.allclose(want, old)  # the 320 decode described other pixels: the test tells the two apart
    np.testing.assert_array_equal(crops.record_features(rec), want)  # and the cached copy is the 640 one


def test_a_640_px_image_keeps_its_320_decode_and_its_crop_cache_key(tmp_path):
    path = tmp_path / "small.png"
    labels = _players(path, side=1280)
    Image.open(path).resize((640, 640)).save(path)
    labels = [Label(0, lb.cx, lb.cy, lb.w, lb.h, lb.line) for lb in labels]
    rec = ImageRecord("train", path, "small.png", labels=labels)
    assert record_side(rec) == 320
    np.testing.assert_array_equal(crops.record_features(rec), crops._features(read_image(path, max_side=320), labels))
    big = ImageRecord("train", path, "small.png", labels=labels)
    assert crops._key(rec, 320) != crops._key(big, 640)  # a grown side never reads a 320 entry
