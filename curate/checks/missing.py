"""missing: an object no box covers — a region finding (line None, region = normalized cx, cy, w, h).

Evidence: the image's own boxes as templates. A forgotten box usually has labelled siblings of the same
class in the same image that look alike (several eggs, tomatoes, bottles), so each labelled crop is
matched (normalized cross-correlation, ``cv2.matchTemplate``) over the image decoded small; strong peaks
that no existing box covers become candidates of that class. Candidates are merged by non-maximum
suppression and at most a few are kept per image. Singleton objects (no sibling) are not found by this
evidence; saliency blobs were left out (weak on cluttered scenes, see NOTES-audit.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from curate.checks.base import AuditContext
from curate.dataset import ImageRecord
from curate.findings import Finding

NAME = "missing"
SIDE = 192  # images are decoded with their longest side at most this
MIN_TEMPLATE_PX = 8  # templates narrower/lower than this (at SIDE) are skipped
TEMPLATES_PER_CLASS = 3  # at most this many labelled crops of a class are matched per image
PEAKS_PER_TEMPLATE = 4  # local maxima taken per template
CORR_FLOOR = 0.45  # correlation below this is no candidate
CORR_AT_HALF = 0.7  # correlation that maps to score 0.5 (0.6 doubled recall on epicureai but gave ~8 regions per 100 boxes on unmodified data)
COVER_IOU = 0.2  # a candidate overlapping an existing box this much is covered
COVER_INSIDE = 0.5  # … or lying this much inside one
MAX_PER_IMAGE = 3  # region findings per image


def _iou(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU of one xyxy box ``a`` with many ``b`` (n, 4); also the share of ``a`` inside each."""
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9), inter / max(area_a, 1e-9)


def corr_to_score(c: float) -> float:
    """Monotone map of correlation to [0, 1], 0.5 at CORR_AT_HALF."""
    if c <= CORR_FLOOR:
        return 0.0
    if c < CORR_AT_HALF:
        return 0.5 * (c - CORR_FLOOR) / (CORR_AT_HALF - CORR_FLOOR)
    return min(1.0, 0.5 + 0.5 * (c - CORR_AT_HALF) / (1 - CORR_AT_HALF))


def candidates(img: np.ndarray, record: ImageRecord) -> list[tuple[float, np.ndarray, int]]:
    """(score, normalized xyxy, class id) of uncovered template peaks, after NMS, best first."""
    h, w = img.shape[:2]
    existing = np.array([lb.xyxy for lb in record.labels], np.float64)
    found: list[tuple[float, np.ndarray, int]] = []
    per_class: dict[int, int] = {}
    for lb in sorted(record.labels, key=lambda lb: -lb.area):
        if per_class.get(lb.class_id, 0) >= TEMPLATES_PER_CLASS:
            continue
        x1, y1, x2, y2 = lb.xyxy
        px1, py1, px2, py2 = int(max(0, x1 * w)), int(max(0, y1 * h)), int(min(w, x2 * w)), int(min(h, y2 * h))
        tw, th = px2 - px1, py2 - py1
        if tw < MIN_TEMPLATE_PX or th < MIN_TEMPLATE_PX or tw > w * 0.6 or th > h * 0.6:
            continue
        per_class[lb.class_id] = per_class.get(lb.class_id, 0) + 1
        res = cv2.matchTemplate(img, img[py1:py2, px1:px2], cv2.TM_CCOEFF_NORMED)
        for _ in range(PEAKS_PER_TEMPLATE):
            _, c, _, (mx, my) = cv2.minMaxLoc(res)
            if c < CORR_FLOOR:
                break
            res[max(0, my - th // 2) : my + th // 2 + 1, max(0, mx - tw // 2) : mx + tw // 2 + 1] = -1
            box = np.array([mx / w, my / h, (mx + tw) / w, (my + th) / h])
            iou, inside = _iou(box, existing)
            if iou.max() >= COVER_IOU or inside.max() >= COVER_INSIDE:
                continue
            found.append((corr_to_score(float(c)), box, lb.class_id))
    found.sort(key=lambda t: -t[0])
    kept: list[tuple[float, np.ndarray, int]] = []
    for cand in found:
        if kept and _iou(cand[1], np.array([k[1] for k in kept]))[0].max() >= 0.3:
            continue
        kept.append(cand)
        if len(kept) >= MAX_PER_IMAGE:
            break
    return kept


def _image_findings(record: ImageRecord, names: list[str]) -> list[Finding]:
    if not record.labels:
        return []
    from curate.foreground import read_image

    img = read_image(record.path, max_side=SIDE)
    if img is None:
        return []
    out = []
    for score, (x1, y1, x2, y2), cls in candidates(img, record):
        name = names[cls] if 0 <= cls < len(names) else str(cls)
        region = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
        msg = f"unlabelled object that looks like its labelled '{name}' siblings (score {score:.2f})"
        out.append(Finding(record.split, record.rel, NAME, score, msg, region=region, data={"class": name, "class_id": cls}))
    return out


def run(ctx: AuditContext) -> list[Finding]:
    if ctx.fast:
        return []
    ds = ctx.dataset
    with ThreadPoolExecutor(max_workers=2) as pool:
        it = pool.map(lambda r: _image_findings(r, ds.names), ds.images)
        if len(ds.images) > 50:
            from rich.progress import track

            it = track(it, total=len(ds.images), description="missing boxes", transient=True)
        return [f for fs in it for f in fs]
