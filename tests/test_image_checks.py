"""Image-level checks on generated images: corrupt files, EXIF rotation, near-duplicates and leakage."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from curate.checks import image_checks, near_duplicate
from curate.checks.base import AuditContext
from curate.dataset import Dataset, ImageRecord


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))


def _photo(seed: int, size: int = 320) -> Image.Image:
    """A smooth, photo-like image: random low-frequency noise upsampled, plus a few blobs."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
    im = Image.fromarray(low).resize((size, size), Image.BICUBIC)
    return im


def _ds(tmp_path: Path, files: dict[str, tuple[str, bytes]]) -> Dataset:
    recs = []
    for rel, (split, data) in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        recs.append(ImageRecord(split, p, rel))
    return Dataset(tmp_path, "t", ["a"], recs)


def _jpeg(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _run(mod, ds):
    return {(f.check, f.image): f for f in mod.run(AuditContext(ds, shared={}))}


@pytest.mark.parametrize(
    "name,make,check,expect",
    [
        ("ok.jpg", lambda: _jpeg(_photo(1)), "corrupt_image", False),
        ("trunc.jpg", lambda: _jpeg(_photo(1))[:-400], "corrupt_image", True),
        ("zero.jpg", lambda: b"", "corrupt_image", True),
        ("png_named.jpg", lambda: _png(_photo(1)), "corrupt_image", True),
        ("junk.jpg", lambda: b"not an image at all", "corrupt_image", True),
        ("rot.jpg", lambda: _jpeg(_photo(1), exif=_exif(6)), "exif_rotated", True),
        ("upright.jpg", lambda: _jpeg(_photo(1), exif=_exif(1)), "exif_rotated", False),
    ],
)
def test_image_level_kinds(tmp_path, name, make, check, expect):
    ds = _ds(tmp_path, {f"train/{name}": ("train", make())})
    f = _run(image_checks, ds)[(check, f"train/{name}")]
    assert (f.score >= 0.5) is expect, f.message


def _exif(orientation: int) -> Image.Exif:
    e = Image.Exif()
    e[0x0112] = orientation
    return e


@pytest.mark.parametrize(
    "crop",
    [
        0.02,
        # known weakness: a 5 % one-sided crop drops the thumbnail correlation to ~0.93 (< 0.97)
        pytest.param(0.05, marks=pytest.mark.xfail(strict=True, reason="5% crop needs shift-tolerant matching")),
    ],
)
def test_edited_copy_in_other_split_is_leakage_and_unrelated_is_not(tmp_path, crop):
    src = _photo(7, 400)
    w, h = src.size
    copy = src.crop((int(crop * w), 0, w, h)).resize((300, 300))
    copy = ImageEnhance.Brightness(copy).enhance(1.2)
    ds = _ds(tmp_path, {
        "train/a.jpg": ("train", _jpeg(src, quality=95)),
        "val/b.jpg": ("val", _jpeg(copy, quality=40)),
        "val/c.jpg": ("val", _jpeg(_photo(99, 400))),
    })
    found = [f for f in near_duplicate.run(AuditContext(ds, shared={})) if f.score >= 0.5]
    assert len(found) == 1, [f.message for f in found]
    f = found[0]
    assert f.check == "leakage" and "a.jpg" in f.message and "b.jpg" in f.message
    assert "train" in f.message and "val" in f.message
    assert {f.image, f.data["partner"]} == {"train/a.jpg", "val/b.jpg"}


def test_exact_duplicate_same_split(tmp_path):
    data = _jpeg(_photo(3))
    ds = _ds(tmp_path, {"train/a.jpg": ("train", data), "train/b.jpg": ("train", data)})
    found = near_duplicate.run(AuditContext(ds, shared={}))
    assert [(f.check, f.score) for f in found] == [("near_duplicate", 1.0)]
