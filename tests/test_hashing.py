"""Signatures: content hash agrees with the cache's, cache reuse, and near-duplicate groups."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from curate import cache
from curate.dataset import Dataset, ImageRecord
from curate.hashing import image_signatures, near_duplicate_groups, near_duplicate_pairs


def _img(tmp_path: Path, name: str, seed: int, quality: int = 90) -> Path:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)).resize((256, 256), Image.BICUBIC)
    p = tmp_path / name
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    p.write_bytes(buf.getvalue())
    return p


def test_signatures_groups_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    paths = [_img(tmp_path, "a.jpg", 1), _img(tmp_path, "b.jpg", 1, quality=30), _img(tmp_path, "c.jpg", 2)]
    ds = Dataset(tmp_path, "t", [], [ImageRecord("train", p, p.name) for p in paths])
    sigs = image_signatures(ds, progress=False)
    assert sigs["a.jpg"].content_hash == cache.file_hash(paths[0])
    assert (sigs["a.jpg"].width, sigs["a.jpg"].height, sigs["a.jpg"].status) == (256, 256, "ok")
    assert [(a, b) for a, b, _ in near_duplicate_pairs(sigs)] == [("a.jpg", "b.jpg")]
    assert near_duplicate_groups(ds, sigs) == [["a.jpg", "b.jpg"]]
    assert image_signatures(ds, progress=False) == sigs  # second pass from the disk cache
