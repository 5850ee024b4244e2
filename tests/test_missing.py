"""missing on generated images: three red squares, two boxed → a region finding on the third."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.checks import missing
from curate.checks.base import AuditContext
from curate.dataset import Dataset, ImageRecord, Label

CENTRES = [(40, 40), (120, 50), (80, 130)]


def _dataset(tmp_path: Path, boxed: int) -> Dataset:
    img = np.full((192, 192, 3), 210, np.uint8)
    rng = np.random.default_rng(0)
    img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    for cx, cy in CENTRES:
        cv2.rectangle(img, (cx - 15, cy - 15), (cx + 15, cy + 15), (0, 0, 220), -1)
        cv2.circle(img, (cx, cy), 6, (0, 200, 255), -1)
    path = tmp_path / "three.png"
    cv2.imwrite(str(path), img)
    labels = [Label(0, cx / 192, cy / 192, 32 / 192, 32 / 192, line=i + 1) for i, (cx, cy) in enumerate(CENTRES[:boxed])]
    return Dataset(tmp_path, "t", ["square"], [ImageRecord("train", path, path.name, None, labels)])


def _iou(a, b) -> float:
    ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx1, by1, bx2, by2 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_unboxed_sibling_is_found(tmp_path: Path) -> None:
    findings = missing.run(AuditContext(_dataset(tmp_path, boxed=2)))
    truth = (80 / 192, 130 / 192, 32 / 192, 32 / 192)
    hits = [f for f in findings if f.score >= 0.5 and _iou(f.region, truth) >= 0.3]
    assert hits and hits[0].line is None and hits[0].data["class"] == "square"
    assert "square" in hits[0].message


@pytest.mark.parametrize("fast", [False, True])
def test_fully_boxed_image_has_no_strong_region(tmp_path: Path, fast: bool) -> None:
    findings = missing.run(AuditContext(_dataset(tmp_path, boxed=3), fast=fast))
    assert all(f.score < 0.5 for f in findings)


def test_score_grows_with_correlation() -> None:
    cs = np.linspace(0, 1, 50)
    s = [missing.corr_to_score(c) for c in cs]
    assert all(b >= a for a, b in zip(s, s[1:])) and s[0] == 0 and s[-1] == 1
