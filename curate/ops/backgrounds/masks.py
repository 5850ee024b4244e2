"""What counts as an object in a background candidate: the boxes and U²-Net-p's foreground, and the
residual score that rejects a candidate where an object remains (see the package docstring, steps 1 and 4)."""

from __future__ import annotations

import cv2
import numpy as np

from curate.core import defaults
from curate.core.dataset import ImageRecord


def saliency(bgr: np.ndarray, *, model=None) -> np.ndarray:
    """U²-Net-p's raw probability (320×320, not min-max stretched); the GrabCut mask without weights."""
    from curate.vision import foreground

    model = model or foreground.get_model()
    if model.session is None:
        return model.predict(bgr)
    side = model.side
    rgb = cv2.cvtColor(cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    x = rgb.astype(np.float32) / max(float(rgb.max()), 1.0)  # the same input as ForegroundModel.predict
    x = ((x - foreground._MEAN) / foreground._STD).transpose(2, 0, 1)[None]
    return model.session.run([model._output], {model._input: np.ascontiguousarray(x, dtype=np.float32)})[0][0, 0]


def residual_score(bgr: np.ndarray, *, model=None, prob: float | None = None) -> float:
    """Share of pixels U²-Net-p calls salient: near 0 for an empty scene, high when an object remains."""
    prob = defaults.BACKGROUND_RESIDUAL_PROB if prob is None else prob
    return float((saliency(bgr, model=model) > prob).mean())


def object_mask(
    record: ImageRecord, size: tuple[int, int], *, model=None, fg_threshold: float | None = None, salient: bool = True
) -> np.ndarray:
    """uint8 {0, 1} mask at ``size`` = (w, h): grown boxes ∪ salient foreground, dilated a little.

    ``salient=False`` gives the boxes alone (no model run): a cheap lower bound used to skip crowded
    photos before paying for their U²-Net-p mask.
    """
    from curate.vision import foreground

    w, h = size
    thr = defaults.BACKGROUND_FG_THRESHOLD if fg_threshold is None else fg_threshold
    fg = foreground.foreground_mask(record, size=size, model=model) if salient else None
    mask = (fg > thr).astype(np.uint8) if fg is not None else np.zeros((h, w), np.uint8)
    m = defaults.BACKGROUND_BOX_MARGIN
    pad = max(2, round(0.01 * max(w, h)))
    for lab in record.labels:
        x1, y1, x2, y2 = lab.xyxy
        bw, bh = (x2 - x1) * w, (y2 - y1) * h
        mask[
            max(0, int((y1 * h) - m * bh - pad)) : min(h, int(np.ceil(y2 * h + m * bh + pad))),
            max(0, int((x1 * w) - m * bw - pad)) : min(w, int(np.ceil(x2 * w + m * bw + pad))),
        ] = 1
    k = 2 * pad + 1
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
