"""Foreground masks for the flagged boxes the report shows: started in a background thread while later checks
run (:func:`queue_masks`), collected after the last one (:func:`finish_masks`), which adds the measured
foreground fraction to those findings and their messages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from curate.audit.boxmodel.scores import BoxScores
from curate.audit.checks.base import Shared
from curate.core import defaults
from curate.core.dataset import ImageRecord
from curate.vision.decode import pixel_side


class MaskJobs(Shared):
    """The background thread computing the foreground masks of flagged boxes, and its jobs by image."""

    def __init__(self) -> None:
        self.pool: Any = None
        self.jobs: dict[str, Any] = {}


def _mask_rows(found: list, threshold: float, top: int) -> list[int]:
    """The flagged boxes the report shows for one check: its ``top`` findings at or above ``threshold``."""
    rows = [
        r
        for r, f in enumerate(found)
        if f.score >= threshold and f.line is not None and f.data.get("method") == "pixels"
    ]
    return sorted(rows, key=lambda r: -found[r].score)[:top]


def _mask_size(rec: ImageRecord) -> tuple[int, int]:
    """The mask's size: the image at the box features' decode side (:func:`~curate.vision.decode.pixel_side`)."""
    w, h = rec.size
    s = min(1.0, pixel_side((w, h)) / max(w, h))
    return max(1, round(w * s)), max(1, round(h * s))


def queue_masks(ctx: Any, bs: BoxScores, found: list, *, top: int, threshold: float) -> None:
    """Start computing (and caching) the foreground masks of a check's flagged boxes in a background thread.

    A mask costs 250–500 ms of U²-Net-p, 12 per pixel check: ~18 s on food-ingredients when the three box
    checks waited for them. ONNX Runtime releases the GIL, and the checks that run next (missing,
    class_inconsistent) leave part of a core idle, so the masks are mostly free there; :func:`finish_masks`
    collects them after the last check.
    """
    from concurrent.futures import ThreadPoolExecutor

    from curate.vision.foreground import foreground_mask, get_model

    rows = _mask_rows(found, threshold, top)
    if not rows:
        return
    masks = ctx.use(MaskJobs)
    if masks.pool is None:
        masks.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-masks")
    pool, jobs = masks.pool, masks.jobs
    model = get_model()
    for r in rows:
        rec = bs.records[r][0]  # ``found`` is one finding per row of the scores, in their order
        if rec.rel not in jobs:
            jobs[rec.rel] = pool.submit(lambda rec=rec: foreground_mask(rec, size=_mask_size(rec), model=model))


def finish_masks(ctx: Any, found: list, check: str, describe) -> None:
    """Add the measured foreground fraction to a check's flagged boxes the report shows (and their message).

    Runs after every check, on fresh and on cached findings alike: the masks come from the background jobs
    of :func:`queue_masks` or from the on-disk cache, and are computed here only when neither has them.
    """
    if ctx.fast:
        return
    rows = _mask_rows(found, ctx.threshold(check), int(ctx.param(check, "mask_top", defaults.BOXMODEL_MASK_TOP)))
    if not rows:
        return
    from curate.core.dataset import LabelLookup
    from curate.vision.foreground import foreground_mask, get_model

    jobs = ctx.use(MaskJobs).jobs
    lookup = LabelLookup(ctx.dataset)
    model = None
    for r in rows:
        f = found[r]
        lab = lookup.label(f)
        if lab is None:
            continue
        rec = lookup.records[f.image]
        try:
            if f.image in jobs:
                mask = jobs[f.image].result()
            else:
                model = model or get_model()
                mask = foreground_mask(rec, size=_mask_size(rec), model=model)
        except Exception:  # an unreadable image keeps its finding without a mask
            continue
        if mask is None:
            continue
        H, W = mask.shape
        x1, y1, x2, y2 = lab.xyxy
        crop = mask[
            max(int(y1 * H), 0) : max(int(np.ceil(y2 * H)), 1), max(int(x1 * W), 0) : max(int(np.ceil(x2 * W)), 1)
        ]
        if crop.size == 0:
            continue
        f.data["fg_fraction"] = round(float((crop > 0.5).mean()), 2)
        f.data["fg_method"] = (model or get_model()).method
        f.message = describe(f.data, f.score, f.data["class"], ctx.threshold(check))
