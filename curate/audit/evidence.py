"""The object inside a loose box, from the image's own pixels: GrabCut seeded with the box.

Why: the loose search's centred shrinks (:mod:`curate.audit.refine`) hold a box at IoU ≥ 0.75 with the object for
70–90 % of planted loose boxes, but the judge's pick among them is often off the object or too small, and a box
enlarged more on one side (half the box model's loose corruptions) has no centred candidate at all. A loose box
says where the object is *not*: its border is background. That is exactly GrabCut's rectangle initialisation
(OpenCV: outside the rectangle is background, inside is unknown; colour models of both are fitted and the pixels
re-assigned), so the foreground's tight box is a candidate taken from the object rather than from the box's
geometry, wherever the object sits inside it. It is only a candidate: it is judged by the same classifier of real
against corrupted boxes as the shrinks, and its ``p_right`` calibrated the same way.

Not the box model's per-side object-ness extents: those compare a box's inside with a context ring around it,
which in a cluttered scene holds other objects (moving each side onto them made loose boxes worse; see refine's
docstring). GrabCut's background model is the box's own surroundings too, but it is fitted per box and the
foreground is kept as a connected region.
"""

from __future__ import annotations

import cv2
import numpy as np

from curate.core.overlap import iou_one

#: The image side the evidence is computed at (the pool's images are at most 640 px; small boxes need the pixels).
MAX_SIDE = 640
#: The crop around the box is resampled to this longer side for GrabCut (a few ms a box).
WORK_SIDE = 96
#: Background kept around the box in the crop, as a share of the box's size per side.
MARGIN = 0.15
ITERATIONS = 5
#: A foreground smaller than this share of the box is no evidence (GrabCut found nothing to separate).
MIN_SHARE = 0.03
#: A tight box this close to the box itself is no tighter box (a loose box holds at least 1.2× its object's area).
NEARLY_WHOLE = 0.9


def _tight(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def object_boxes(bgr: np.ndarray, box: np.ndarray) -> list[np.ndarray]:
    """Tight boxes (normalized xyxy) of the object GrabCut finds inside ``box`` (normalized xyxy) of ``bgr``: of
    its whole foreground, and of its largest connected part. Empty where it finds nothing, or everything."""
    found = _grabcut(bgr, box)
    if found is None:
        return []
    fg, (x0, y0, sx, sy) = found
    H, W = bgr.shape[:2]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    largest = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8) if n > 1 else fg
    out = []
    for part in (fg, largest):
        t = _tight(part)
        if t is None:
            continue
        a, b, c, d = t
        out.append(np.clip(np.array([(x0 + a / sx) / W, (y0 + b / sy) / H, (x0 + c / sx) / W, (y0 + d / sy) / H]),
                           0.0, 1.0))  # fmt: skip
    if len(out) == 2 and np.allclose(out[0], out[1]):
        out = out[:1]
    return [b for b in out if iou_one(tuple(b), tuple(np.asarray(box, float))) < NEARLY_WHOLE]


def _grabcut(bgr: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, tuple[int, int, float, float]] | None:
    """GrabCut's foreground (uint8, at the work size) of the crop around ``box`` (normalized xyxy), and the
    crop's origin and scale (x0, y0, sx, sy) to map it back to image pixels; None where it cannot run."""
    H, W = bgr.shape[:2]
    x1, y1, x2, y2 = np.asarray(box, float) * np.array([W, H, W, H])
    bw, bh = x2 - x1, y2 - y1
    if bw < 2 or bh < 2:
        return None
    cx1, cy1 = max(int(np.floor(x1 - MARGIN * bw)), 0), max(int(np.floor(y1 - MARGIN * bh)), 0)
    cx2, cy2 = min(int(np.ceil(x2 + MARGIN * bw)), W), min(int(np.ceil(y2 + MARGIN * bh)), H)
    crop = bgr[cy1:cy2, cx1:cx2]
    if min(crop.shape[:2]) < 2:
        return None
    s = WORK_SIDE / max(crop.shape[:2])
    size = (max(int(round(crop.shape[1] * s)), 4), max(int(round(crop.shape[0] * s)), 4))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    sx, sy = size[0] / crop.shape[1], size[1] / crop.shape[0]
    # the rectangle in the crop, kept a pixel inside its edges (GrabCut needs background to fit)
    rx1, ry1 = max(int(round((x1 - cx1) * sx)), 1), max(int(round((y1 - cy1) * sy)), 1)
    rx2, ry2 = min(int(round((x2 - cx1) * sx)), size[0] - 1), min(int(round((y2 - cy1) * sy)), size[1] - 1)
    if rx2 - rx1 < 3 or ry2 - ry1 < 3:
        return None
    mask = np.zeros(small.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's colour models start from k-means: the same box gives the same evidence
    try:
        cv2.grabCut(small, mask, (rx1, ry1, rx2 - rx1, ry2 - ry1), bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # a flat crop: no colour models to fit
        return None
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    share = fg.sum() / float((rx2 - rx1) * (ry2 - ry1))
    if share < MIN_SHARE or share > 0.98:
        return None
    return fg, (cx1, cy1, sx, sy)
