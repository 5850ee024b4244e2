"""Foreground masks: real U²-Net-p weights and the GrabCut fallback on generated images; the disk cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from curate.core.dataset import ImageRecord
from curate.vision import foreground

WEIGHTS = foreground.default_weights()
needs_weights = pytest.mark.skipif(not WEIGHTS.exists(), reason=f"U²-Net-p weights not at {WEIGHTS}")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))


def _disc_image(path: Path, *, size=(320, 240), centre=(200, 120), r=55, seed=0) -> Path:
    """A saturated disc on a grey, lightly textured background: an unambiguous salient object."""
    rng = np.random.default_rng(seed)
    bg = (rng.normal(150, 6, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(bg)
    ImageDraw.Draw(im).ellipse((centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r), fill=(220, 30, 40))
    im.save(path, quality=95)
    return path


def _inside_outside(mask: np.ndarray, centre, r, scale=1.0) -> tuple[float, float]:
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(xx - centre[0] * scale, yy - centre[1] * scale)
    return float(mask[d < 0.7 * r * scale].mean()), float(mask[d > 1.4 * r * scale].mean())


@pytest.mark.parametrize("method", [pytest.param("u2netp", marks=needs_weights), "grabcut"])
def test_mask_is_higher_on_the_object(tmp_path, method, caplog):
    path = _disc_image(tmp_path / "disc.jpg")
    weights = WEIGHTS if method == "u2netp" else tmp_path / "absent.onnx"
    with caplog.at_level(logging.WARNING, logger="curate.vision.foreground"):
        model = foreground.ForegroundModel(weights)
    assert model.method == method
    if method == "grabcut":
        assert "GrabCut" in caplog.text  # the fallback says so
    mask = foreground.foreground_mask(ImageRecord("train", path, "disc.jpg"), model=model)
    assert mask.shape == (240, 320) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    inside, outside = _inside_outside(mask, (200, 120), 55)
    assert inside > 0.6 and outside < 0.25, (inside, outside)


@needs_weights
def test_cache_round_trip_and_batch(tmp_path):
    recs = [
        ImageRecord("train", _disc_image(tmp_path / f"{i}.jpg", centre=(100 + 60 * i, 120), seed=i), f"{i}.jpg")
        for i in range(2)
    ]
    assert foreground.cached_mask(recs[0]) is None  # nothing computed yet: never computes
    masks = foreground.masks_for(recs, max_side=160, progress=False)
    assert set(masks) == {"0.jpg", "1.jpg"}
    assert masks["0.jpg"].shape == (120, 160)  # working size, not full size
    full = foreground.cached_mask(recs[1])
    assert full is not None and full.shape == (240, 320)
    # the second disc sits further right: its mask's centre of mass too
    xs = [np.average(np.arange(160), weights=m.sum(axis=0) + 1e-6) for m in (masks["0.jpg"], masks["1.jpg"])]
    assert xs[1] > xs[0] + 15


def test_unreadable_image_gives_none(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert foreground.read_image(bad, max_side=320) is None


@needs_weights
def test_bundled_sample_mask_is_sane():
    """On real photos, the mask is brighter inside the annotated boxes than outside them."""
    root = Path(__file__).resolve().parents[2] / "curate" / "sample" / "food-mini"
    if not root.exists():
        pytest.skip("bundled sample not built yet")
    from curate.io.yolo import load_yolo

    ds = load_yolo(root)
    recs = [r for r in ds.images if r.labels][:4]
    inside, outside = [], []
    for rec in recs:
        mask = foreground.foreground_mask(rec, size=(160, 160))
        box = np.zeros_like(mask, bool)
        for lab in rec.labels:
            x1, y1, x2, y2 = (np.array(lab.xyxy) * 160).round().astype(int)
            box[max(y1, 0) : y2, max(x1, 0) : x2] = True
        if box.all() or not box.any():
            continue
        inside.append(mask[box].mean())
        outside.append(mask[~box].mean())
    assert inside and np.mean(inside) > np.mean(outside)


@pytest.mark.parametrize("method", [pytest.param("u2netp", marks=needs_weights), "grabcut"])
def test_mask_of_an_exif_rotated_photo_has_the_upright_shape(tmp_path, method):
    """masks_for sized a mask by the stored size (PIL), so an EXIF-rotated photo's mask (computed on the upright
    pixels OpenCV decodes) came back transposed: 240 x 320 for a 320-high, 240-wide image."""
    path = _disc_image(tmp_path / "disc.jpg", size=(320, 240), centre=(230, 70), r=50)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: 240 wide, 320 high, the disc near the bottom right
    Image.open(path).save(path, quality=95, exif=exif)
    model = foreground.ForegroundModel(WEIGHTS if method == "u2netp" else tmp_path / "absent.onnx")
    rec = ImageRecord("train", path, "disc.jpg")
    mask = foreground.masks_for([rec], max_side=320, progress=False, model=model)["disc.jpg"]
    upright = foreground.read_image(path, max_side=320)
    assert mask.shape == upright.shape[:2] == (320, 240)
    inside, outside = _inside_outside(mask, (240 - 70, 230), 50)  # the disc's centre in the upright image
    assert inside > outside + 0.3


@needs_weights
def test_the_model_keeps_no_memory_arena(tmp_path):
    """ONNX Runtime's default CPU arena kept ~0.5 GB resident after a few masks, the largest single piece of the
    full audit's peak (issue #25); without it the session and its masks stay under 0.2 GB."""
    import psutil

    me = psutil.Process()
    before = me.memory_info().rss
    model = foreground.ForegroundModel()
    for seed in range(3):
        rec = ImageRecord("train", _disc_image(tmp_path / f"d{seed}.jpg", seed=seed), f"train/d{seed}.jpg")
        foreground.foreground_mask(rec, size=(320, 240), model=model)
    assert me.memory_info().rss - before < 200 * 1024 * 1024


@needs_weights
def test_the_model_threads_do_not_spin(tmp_path):
    """The masks run on a background thread beside the checks: ONNX Runtime's threads spinning between operators took
    a fifth of a mask's CPU from them. Sleeping gives the same mask to the bit."""
    model = foreground.ForegroundModel()
    opts = model.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    rec = ImageRecord("train", _disc_image(tmp_path / "d.jpg"), "train/d.jpg")
    bgr = foreground.read_image(rec.path, max_side=2 * model.side)
    import onnxruntime as ort

    spinning = ort.SessionOptions()
    spinning.intra_op_num_threads, spinning.inter_op_num_threads, spinning.enable_cpu_mem_arena = 2, 1, False
    spinning.log_severity_level = 3
    model_spinning = foreground.ForegroundModel()
    model_spinning.session = ort.InferenceSession(str(model.weights), spinning, providers=["CPUExecutionProvider"])
    assert np.array_equal(model.predict(bgr), model_spinning.predict(bgr))
