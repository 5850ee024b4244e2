"""missing on large and dense images: the region cap, the decode ceiling and the crop embeddings' decode grow with
the image (issue #22: drone views, schools of fish, apples on trees), and images up to 640 px keep what they had."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.audit.checks import missing
from curate.audit.checks.base import AuditContext
from curate.audit.checks.missing.model import decode_side, image_cap
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.io import cache
from curate.vision import embed
from curate.vision.foreground import read_image

COLOURS = [(40, 40, 220), (40, 180, 60), (200, 120, 30)]  # BGR


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))


def _dense_scene(rng: np.random.Generator, side: int, grid: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A noisy light table with a filled object in most cells of a ``grid`` × ``grid`` layout (a crate of apples,
    a few gaps: the count of boxes must not tell an image with unboxed objects); their (class, cx, cy, side) in
    pixels."""
    img = np.clip(int(rng.integers(195, 225)) + rng.normal(0, 6, (side, side, 3)), 0, 255).astype(np.uint8)
    cell = side // grid
    objs = []
    gaps = set(rng.choice(grid * grid, int(rng.integers(0, grid * grid // 4)), replace=False).tolist())
    for gy in range(grid):
        for gx in range(grid):
            if gy * grid + gx in gaps:
                continue
            s = int(rng.integers(cell * 4 // 10, cell * 6 // 10))
            cx = gx * cell + cell // 2 + int(rng.integers(-cell // 10, cell // 10 + 1))
            cy = gy * cell + cell // 2 + int(rng.integers(-cell // 10, cell // 10 + 1))
            c = int(rng.integers(len(COLOURS)))
            cv2.rectangle(img, (cx - s // 2, cy - s // 2), (cx + s // 2, cy + s // 2), COLOURS[c], -1)
            cv2.circle(img, (cx, cy), max(2, s // 6), (255, 255, 255), -1)
            objs.append((c, cx, cy, s))
    return img, objs


def test_a_dense_image_holds_more_than_three_regions(tmp_path: Path) -> None:
    """Up to 64 objects an image, 10 of the first image's unboxed: three regions (the old fixed cap) could find three
    of them at most; its 40-odd boxes give it a cap of 5 and more of the ten come back."""
    rng = np.random.default_rng(5)
    side, grid = 400, 8
    records, hidden = [], []
    for k in range(24):
        img, objs = _dense_scene(rng, side, grid)
        path = tmp_path / f"crate{k:02d}.png"
        cv2.imwrite(str(path), img)
        labels = [Label(c, x / side, y / side, s / side, s / side, line=j + 1) for j, (c, x, y, s) in enumerate(objs)]
        if k == 0:
            drop = set(rng.choice(len(labels), 10, replace=False).tolist())
            hidden = [lb for j, lb in enumerate(labels) if j in drop]
            labels = [lb for j, lb in enumerate(labels) if j not in drop]
        records.append(ImageRecord("train", path, path.name, None, labels))
    ds = Dataset(tmp_path, "crates", ["red", "green", "blue"], records)
    cap = image_cap(records[0], len(records[0].labels))
    assert cap > 3
    ctx = AuditContext(ds, params={"missing": {"embeddings": False}})
    first = [f for f in missing.run(ctx) if f.image == records[0].rel]
    assert 3 < len(first) <= cap

    def hit(lb: Label) -> bool:
        for f in first:
            cx, cy, w, h = f.region
            ix = max(0, min(cx + w / 2, lb.cx + lb.w / 2) - max(cx - w / 2, lb.cx - lb.w / 2))
            iy = max(0, min(cy + h / 2, lb.cy + lb.h / 2) - max(cy - h / 2, lb.cy - lb.h / 2))
            if ix * iy / (w * h + lb.w * lb.h - ix * iy) >= 0.3:
                return True
        return False

    assert sum(map(hit, hidden)) > 3


def _blank(path: Path, w: int, h: int) -> Path:
    cv2.imwrite(str(path), np.full((h, w, 3), 200, np.uint8))
    return path


def test_cap_grows_with_pixels_and_boxes_and_not_below_three(tmp_path: Path) -> None:
    small = ImageRecord("train", _blank(tmp_path / "s.png", 640, 480), "s.png", None, [])
    large = ImageRecord("train", _blank(tmp_path / "l.png", 1280, 1280), "l.png", None, [])
    huge = ImageRecord("train", _blank(tmp_path / "h.png", 8000, 6000), "h.png", None, [])
    gone = ImageRecord("train", tmp_path / "gone.png", "gone.png", None, [])
    assert image_cap(small, 0) == image_cap(small, 30) == 3  # the pool's photos: as before
    assert image_cap(small, 100) == 10  # 100 apples on a 640-px photo
    assert image_cap(large, 4) == 12  # a 2 × 2 mosaic of 640-px photos: 3 a tile
    assert image_cap(huge, 0) == 48  # bounded
    assert image_cap(gone, 45) == 5  # an unreadable header counts by its boxes


def test_decode_ceiling_follows_images_over_640_px(tmp_path: Path) -> None:
    """Boxes 6 px on the short side in a 1280-px file: the old ceiling decoded at 640 (3 px, under the smallest
    window); a 640-px dataset of the same boxes keeps 640 as before."""
    for name, px in (("big", 1280), ("small", 640)):
        path = _blank(tmp_path / f"{name}.png", px, px)
        rec = ImageRecord("train", path, path.name, None, [])
        box = 6 / px
        boxes = [np.array([[0.5, 0.5, 0.5 + box, 0.5 + box]])] * 3
        side = decode_side([rec] * 3, boxes)
        assert side == (1280 if px == 1280 else 640)


def test_embedding_crops_of_a_large_image_come_from_the_larger_decode(tmp_path: Path) -> None:
    """A window of a 1280-px image is cut from its 640-px decode (the pixel checks' side), a window of a 640-px image
    from its 320-px decode under the same cache key as before."""
    rng = np.random.default_rng(0)
    win = np.array([[0.40, 0.40, 0.43, 0.44]])
    for px, side in ((1280, 640), (640, 320)):
        path = tmp_path / f"noise{px}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (px, px, 3), dtype=np.uint8))
        key, hit, crops = embed._load_windows((path, win))
        assert hit is None
        want = embed._xyxy_crops(read_image(path, max_side=side), win)
        assert np.array_equal(crops[0], want[0])
        key_given, _, crops_given = embed._load_windows((path, win, (px, px)))
        assert key_given == key and np.array_equal(crops_given[0], want[0])
    # the pool's images (≤ 640 px) keep their old keys: the side in them is still DECODE_SIDE
    old = embed.hashlib.blake2b(
        f"w{embed.EMBED_VERSION}-{embed.SIDE}-320-{cache.file_hash(path)}".encode()
        + np.round(np.asarray(win, np.float64), 6).tobytes(),
        digest_size=16,
    ).hexdigest()
    assert key == old


def test_a_dense_mosaic_of_a_one_class_set_runs_and_keeps_each_image_under_its_cap(
    tmp_path: Path, shared_datasets: Path
) -> None:
    """potholes-road (one class, 416 px) tiled 2 × 2 twice (benchmarks/domain_shift.py): 1664-px images of 4 × 4
    scenes, up to ~80 boxes each, more pixels than the decode ceiling. The whole check (objectness, the
    near-duplicate and the embedding evidence where the weights are) runs without an error, every region lies
    inside its image, every image keeps at most its cap, and the larger images get more than the old three."""
    import domain_shift

    from curate.io.yolo import load_yolo

    once = domain_shift.build(shared_datasets / "potholes-road", tmp_path / "x2", "mosaic", seed=0)
    twice = domain_shift.build(once, tmp_path / "x4", "mosaic", seed=1)
    ds = load_yolo(twice)
    assert max(max(r.size) for r in ds.images) > 1280 and sum(len(r.labels) for r in ds.images) >= 100
    assert len(ds.names) == 1
    findings = missing.run(AuditContext(ds))
    assert findings and all(f.check == "missing" and f.region is not None for f in findings)
    per: dict[str, int] = {}
    for f in findings:
        cx, cy, w, h = f.region
        assert 0 <= cx - w / 2 + 1e-9 and cx + w / 2 <= 1 + 1e-9 and 0 <= cy - h / 2 + 1e-9 and cy + h / 2 <= 1 + 1e-9
        assert f.data["class"] == ds.names[0]
        per[f.image] = per.get(f.image, 0) + 1
    caps = {r.rel: image_cap(r, len(r.labels)) for r in ds.images}
    assert all(n <= caps[rel] for rel, n in per.items())
    assert max(per.values()) > 3
