"""Appearance features of box crops: colour, texture and shape numbers a small classifier can use.

No pretrained network is reachable offline, so a box is described by what distinguishes food classes
without one: its colour (Lab statistics, a saturation-weighted hue histogram), its texture (gradient
orientation histograms on a 2×2 grid, edge density) and its shape (log size and aspect). Features are
computed on the image decoded at reduced size and cached on disk per (image content, boxes).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.io import cache
from curate.vision.decode import record_side

PATCH = 32  # crops are resized to PATCH×PATCH
FEATURES_VERSION = 1


def _features(img: np.ndarray | None, labels: list[Label]) -> np.ndarray:
    out = np.zeros((len(labels), feature_size()), np.float32)
    if img is None:
        return out
    h, w = img.shape[:2]
    for i, lb in enumerate(labels):
        x1, y1, x2, y2 = lb.xyxy
        px1, py1 = int(max(0, np.floor(x1 * w))), int(max(0, np.floor(y1 * h)))
        px2, py2 = int(min(w, max(px1 + 2, np.ceil(x2 * w)))), int(min(h, max(py1 + 2, np.ceil(y2 * h))))
        crop = img[py1:py2, px1:px2]
        if crop.size == 0:
            continue
        out[i] = _describe(cv2.resize(crop, (PATCH, PATCH), interpolation=cv2.INTER_AREA), lb)
    return out


def feature_size() -> int:
    return 6 + 18 + 8 + 32 + 2 + 3


def _describe(patch: np.ndarray, lb: Label) -> np.ndarray:
    inner = patch[PATCH // 5 : -PATCH // 5, PATCH // 5 : -PATCH // 5]
    lab = cv2.cvtColor(inner, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
    hue_hist = np.bincount((hsv[:, 0] / 10).astype(int).clip(0, 17), weights=hsv[:, 1] / 255.0, minlength=18)
    hue_hist /= max(hue_hist.sum(), 1e-6)
    s_hist = np.bincount((hsv[:, 1] / 64).astype(int).clip(0, 3), minlength=4) / len(hsv)
    v_hist = np.bincount((hsv[:, 2] / 64).astype(int).clip(0, 3), minlength=4) / len(hsv)
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    mag, ang = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    bins = ((ang % 180) / 22.5).astype(int).clip(0, 7)
    hog = []
    half = PATCH // 2
    for cy in (0, half):
        for cx in (0, half):
            m = mag[cy : cy + half, cx : cx + half].ravel()
            hog.append(np.bincount(bins[cy : cy + half, cx : cx + half].ravel(), weights=m, minlength=8))
    hog_v = np.concatenate(hog)
    hog_v /= max(np.linalg.norm(hog_v), 1e-6)
    texture = [float(mag.mean() / 255.0), float(cv2.Laplacian(gray, cv2.CV_32F).std() / 255.0)]
    shape = [np.log(max(lb.w, 1e-4)), np.log(max(lb.h, 1e-4)), np.log(max(lb.w, 1e-4) / max(lb.h, 1e-4))]
    return np.concatenate(
        [lab.mean(0) / 255.0, lab.std(0) / 255.0, hue_hist, s_hist, v_hist, hog_v, texture, shape]
    ).astype(np.float32)


def _key(record: ImageRecord, side: int) -> str:
    """The crops' cache key: image content, boxes, and the decode side where it is not the pixel checks' (so an
    image of up to 640 px keeps the key it always had)."""
    boxes = repr([(lb.cx, lb.cy, lb.w, lb.h) for lb in record.labels]).encode()
    grown = "" if side == defaults.PIXEL_MAX_SIDE else f"-{side}"
    return hashlib.blake2b(
        f"v{FEATURES_VERSION}-{cache.file_hash(record.path)}{grown}".encode() + boxes, digest_size=16
    ).hexdigest()


def record_features(record: ImageRecord) -> np.ndarray:
    """(n_labels, D) appearance features of one image's boxes; cached on disk."""
    if not record.labels:
        return np.zeros((0, feature_size()), np.float32)
    side = record_side(record)  # half a large image's side: its small objects keep their pixels (decode.py)
    try:
        key = _key(record, side)
    except OSError:
        return np.zeros((len(record.labels), feature_size()), np.float32)
    hit = cache.load_array("crops", key)
    if hit is not None and hit.shape == (len(record.labels), feature_size()):
        return hit
    from curate.vision.foreground import read_image

    feats = _features(read_image(record.path, max_side=side), record.labels)
    cache.save_array("crops", key, feats)
    return feats


def dataset_features(dataset: Dataset, *, progress: bool = True) -> list[np.ndarray]:
    """Per image (in dataset order) its boxes' features; threads (OpenCV releases the GIL)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        it = pool.map(record_features, dataset.images)
        if progress and len(dataset.images) > 50:
            from rich.progress import track

            it = track(it, total=len(dataset.images), description="crop features", transient=True)
        return list(it)
