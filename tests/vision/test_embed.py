"""Crop embeddings: the real ImageNet MobileNetV2 weights on generated crops; the cache; missing weights."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.vision import embed

needs_weights = pytest.mark.skipif(
    not embed.weights_path().is_file(), reason=f"embedding weights not at {embed.weights_path()}"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))


def _stripes(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((80, 80, 3), np.uint8)
    for x in range(0, 80, 8):
        img[:, x : x + 4] = rng.integers(0, 255, 3)
    return img


def _disc(colour: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(200, 8, (80, 80, 3)).clip(0, 255).astype(np.uint8)
    cv2.circle(img, (40 + int(rng.integers(-5, 5)), 40), 25, colour, -1)
    return img


@needs_weights
def test_embeddings_are_unit_vectors_that_tell_objects_apart() -> None:
    discs = [_disc((0, 0, 220), s) for s in range(4)]
    stripes = [_stripes(s) for s in range(4)]
    e = embed.embed_crops(discs + stripes + [discs[0][:, ::-1].copy()])
    assert e.shape == (9, embed.DIM)
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert float(e[0] @ e[8]) > 0.9  # a crop and its mirror image
    same = np.mean([e[i] @ e[j] for i in range(4) for j in range(4) if i != j])
    across = np.mean([e[i] @ e[4 + j] for i in range(4) for j in range(4)])
    assert same > across + 0.2


@needs_weights
def test_dataset_embeddings_per_image_and_cached(tmp_path: Path) -> None:
    images = []
    for i in range(3):
        img = np.full((120, 160, 3), 230, np.uint8)
        img[20:60, 20:60] = _disc((0, 0, 220), i)[20:60, 20:60]
        path = tmp_path / f"img{i}.jpg"
        cv2.imwrite(str(path), img)
        labels = [Label(0, 0.25, 0.33, 0.25, 0.33, line=1), Label(1, 0.7, 0.7, 0.3, 0.3, line=2)] if i else []
        images.append(ImageRecord("train", path, path.name, None, labels))
    ds = Dataset(tmp_path, "d", ["a", "b"], images)
    first = embed.dataset_embeddings(ds, progress=False)
    assert [e.shape for e in first] == [(0, embed.DIM), (2, embed.DIM), (2, embed.DIM)]
    assert len(list((tmp_path / "cache" / "embed").rglob("*.npy"))) == 2
    again = embed.dataset_embeddings(ds, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_missing_weights_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CURATE_EMBED_WEIGHTS", str(tmp_path / "nowhere.pt"))
    embed.backbone.cache_clear()
    try:
        with pytest.raises(embed.MissingWeights, match="nowhere.pt.*make models"):
            embed.embed_crops([np.zeros((10, 10, 3), np.uint8)])
    finally:
        embed.backbone.cache_clear()


@needs_weights
def test_a_window_is_embedded_as_a_box_with_the_same_corners_and_cached(tmp_path: Path) -> None:
    """missing's windows (curate.audit.checks.missing.evidence) are compared with the boxes' embeddings: a window on
    a box's corners must give that box's numbers; a second call reads them from the cache."""
    img = np.full((120, 160, 3), 230, np.uint8)
    img[20:60, 20:60] = _disc((0, 0, 220), 0)[20:60, 20:60]
    path = tmp_path / "img.jpg"
    cv2.imwrite(str(path), img)
    labels = [Label(0, 0.25, 0.33, 0.25, 0.33, line=1), Label(1, 0.7, 0.7, 0.3, 0.3, line=2)]
    boxes = embed.dataset_embeddings(
        Dataset(tmp_path, "d", ["a", "b"], [ImageRecord("train", path, "img.jpg", None, labels)]), progress=False
    )[0]
    windows = np.array([lb.xyxy for lb in labels])
    got = embed.window_embeddings([(path, windows), (tmp_path / "gone.jpg", windows[:1])])
    assert got[0].shape == (2, embed.DIM) and np.allclose(got[0], boxes, atol=1e-5)
    assert got[1].shape == (1, embed.DIM) and not got[1].any()  # an unreadable image: zeros, no error
    assert len(list((tmp_path / "cache" / "embed-windows").rglob("*.npy"))) == 1
    assert np.array_equal(embed.window_embeddings([(path, windows)])[0], got[0])


@needs_weights
def test_an_embedding_process_does_not_grow_with_batch_sizes() -> None:
    """Every image's crops end in a batch of a new size; torch's oneDNN cached kernels per shape and the process
    grew ~0.4 GB over 30 passes (session 21). Run in a fresh process: oneDNN reads its cache size when torch starts."""
    import subprocess
    import sys

    code = """
import numpy as np, psutil
from curate.vision import embed
rng = np.random.default_rng(0)
crops = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(130)]
embed.embed_crops(crops[:64])
start = psutil.Process().memory_info().rss
for n in range(65, 129, 2):  # 32 passes, each ending in a batch of a new size
    embed.embed_crops(crops[:n])
print((psutil.Process().memory_info().rss - start) / 1e9)
"""
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert float(out.stdout.strip().splitlines()[-1]) < 0.15  # the old code: ~0.35 GB


def test_a_crop_gets_the_same_embedding_alone_or_in_a_batch() -> None:
    """torch's CPU convolution gives a batch of one other bits (2-3e-7) than any larger batch, and which crop
    ends alone in ``_embed_all``'s last batch depends on the cache's content: football-players' swap scores moved
    by up to 0.46 between a cold and a warm run (benchmarks/README.md, session 22)."""
    pytest.importorskip("torch")
    if not embed.weights_path().exists():
        pytest.skip("no embedding weights")
    rng = np.random.default_rng(1)
    crops = [
        rng.integers(0, 255, (int(rng.integers(8, 90)), int(rng.integers(8, 90)), 3), dtype=np.uint8) for _ in range(3)
    ]
    together = embed.embed_crops(crops)
    for i, crop in enumerate(crops):
        assert np.array_equal(embed.embed_crops([crop])[0], together[i])
