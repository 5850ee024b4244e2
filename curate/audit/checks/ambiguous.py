"""ambiguous: a box whose meaning is unclear — two reasons, one score per box (the max), message names it;
and ``border_cut``, a note (not an error) on a box that is a sliver along the image border.

- **two classes on one object**: the box's best IoU with an EARLIER box of another class, mapped like
  duplicate (IoU ``defaults.AMBIGUOUS_IOU`` → 0.5, identical → 1.0). The later line is flagged; the
  message names both classes and lines. A detector trained on both learns neither. On a dataset that holds more
  such copies than the prior (ten pairs at least, any size), the score is at least the probability that the
  pair is a copy (:func:`curate.audit.checks.duplicate.copy_probability`): where two classes never share an
  object rightly, a copy at IoU 0.85 is certain, yet its IoU map (0.75) put it under the box model's 0.9 on
  real errors of other kinds (epicureai, bccd: planted copies ranked below the naive IoU baseline). Only a
  raise, and none for two classes that overlap by design (a person and their vest): the IoU map stays, but for a
  pair drawn edge for edge on each other (:func:`curate.audit.checks.duplicate.copy_like`), which is a copy.
- **degenerate or tiny**: narrower or lower than ``defaults.TINY_BOX_PIXELS`` at the image's real size
  (``record.size``), or no area at all. Score 0.5 at the limit, rising to 1.0 at zero width.
- **cut by the border, little visible** (``border_cut``): a box touching an image edge that is much thinner
  across that edge than its class usually is — both its extent and its aspect ratio along the cut axis below
  ``defaults.BORDER_CUT_FRACTION`` (0.35) of the class medians. The aspect ratio guard keeps small but
  whole objects (far away, small in both axes) from being noted: only slivers are. A partly visible object
  should have a box (Ultralytics', COCO's and Roboflow's guidelines say so), so a sliver is a fact about the
  data, not an error: it is a separate note at ``defaults.BORDER_NOTE_SCORE`` (the assumed share of such
  boxes that are real errors), below every error in the worst-first list, and does not raise the box's
  ``ambiguous`` score: scored as an error, a sliver outranks almost every real error on a dataset with many
  objects at the border (61 slivers on an untouched underwater set; 87 of 139 flags on a set of apples).
"""

from __future__ import annotations

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.audit.checks.duplicate import copy_probability
from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.findings import Finding
from curate.core.overlap import later_line_pairs, overlap_score, partner_edge_offsets

NAME = "ambiguous"
BORDER = "border_cut"
NAMES = (NAME, BORDER)

BORDER_CUT_FRACTION = defaults.BORDER_CUT_FRACTION
BORDER_CUT_MAX_SCORE = defaults.BORDER_CUT_MAX_SCORE
BORDER_MIN_CLASS_BOXES = defaults.BORDER_MIN_CLASS_BOXES
BORDER_TOUCH = defaults.BORDER_TOUCH
BORDER_NOTE_SCORE = defaults.BORDER_NOTE_SCORE
#: Scores below 0.5 (two classes at IoU 0.4–0.7, boxes of 2–4 px) are multiplied by this. Why: the score is read
#: as the probability that the box is a real error, and such boxes are mostly right in dense scenes (a person
#: and their vest, a far-away ball); at their raw 0.1–0.5 they outranked real grouped and loose boxes in the
#: merged worst-first list (football-players, construction-ppe). Monotone: the check's own ranking is unchanged.
BELOW_HALF_WEIGHT = defaults.AMBIGUOUS_BELOW_HALF_WEIGHT


def _class_medians(dataset: Dataset) -> dict[int, tuple[float, float, float]]:
    """class → median (width, height, width/height) over boxes that don't touch the border (whole objects)."""
    per: dict[int, list[tuple[float, float]]] = {}
    for _, lab in dataset.boxes():
        x1, y1, x2, y2 = lab.xyxy
        if min(x1, y1) <= BORDER_TOUCH or max(x2, y2) >= 1 - BORDER_TOUCH or lab.w <= 0 or lab.h <= 0:
            continue
        per.setdefault(lab.class_id, []).append((lab.w, lab.h))
    out = {}
    for c, wh in per.items():
        if len(wh) >= BORDER_MIN_CLASS_BOXES:
            arr = np.array(wh)
            out[c] = (float(np.median(arr[:, 0])), float(np.median(arr[:, 1])), float(np.median(arr[:, 0] / arr[:, 1])))
    return out


def _clip01(x: float) -> float:
    """``float(np.clip(x, 0.0, 1.0))`` for one number, without numpy's ~3 µs a call (up to three calls a box).

    The same result bit for bit: numpy's clip takes a bound only when ``x`` is strictly outside it (so
    ``-0.0`` stays ``-0.0``) and passes NaN through.
    """
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def tiny_score(label: Label, size: tuple[int, int] | None) -> tuple[float, str]:
    """Degenerate/tiny score: 1.0 for no area, 0.5 at ``TINY_BOX_PIXELS`` on the short side, 0 at twice that."""
    if label.w <= 0 or label.h <= 0:
        return 1.0, f"degenerate box (w={label.w:.4g}, h={label.h:.4g}: no area)"
    if size is None:
        return 0.0, ""
    side = min(label.w * size[0], label.h * size[1])
    limit = float(defaults.TINY_BOX_PIXELS)
    score = _clip01(1.0 - side / (2 * limit))
    wpx, hpx = label.w * size[0], label.h * size[1]
    return score, f"tiny box ({wpx:.1f}×{hpx:.1f} px; limit {limit:g} px)"


def border_score(label: Label, medians: tuple[float, float, float] | None) -> tuple[float, str]:
    """Border-cut score: a sliver along an edge compared with its class's median extent and aspect."""
    if medians is None or label.w <= 0 or label.h <= 0:
        return 0.0, ""
    med_w, med_h, med_aspect = medians
    x1, y1, x2, y2 = label.xyxy
    best, msg = 0.0, ""
    aspect = label.w / label.h
    # cut at left/right: the width is what's lost; at top/bottom: the height
    for touches, visible, edge in (
        (x1 <= BORDER_TOUCH or x2 >= 1 - BORDER_TOUCH, max(label.w / med_w, aspect / med_aspect), "left/right"),
        (y1 <= BORDER_TOUCH or y2 >= 1 - BORDER_TOUCH, max(label.h / med_h, med_aspect / aspect), "top/bottom"),
    ):
        if not touches:
            continue
        # 0.5 at BORDER_CUT_FRACTION of the class's usual extent, 1.0 at nothing, 0 at twice the fraction
        score = _clip01(1.0 - visible / (2 * BORDER_CUT_FRACTION)) * 2 * BORDER_CUT_MAX_SCORE
        score = min(score, BORDER_CUT_MAX_SCORE)
        if score > best:
            best = score
            msg = f"cut by the {edge} border: {visible:.0%} of its class's usual extent visible"
    return best, msg


def _class_pairs(records: list[ImageRecord], partner: np.ndarray) -> list[tuple[int, int]]:
    """Per box (in :func:`later_line_pairs`' order), the sorted class pair with its partner; (-1, -1) without one."""
    out: list[tuple[int, int]] = []
    k = 0
    for rec in records:
        for lab in rec.labels:
            p = int(partner[k])
            k += 1
            out.append(tuple(sorted((lab.class_id, rec.labels[p].class_id))) if p >= 0 else (-1, -1))
    return out


def _image_size(rec: ImageRecord) -> tuple[int, int] | None:
    try:
        return rec.size
    except Exception:  # unreadable image: the image checks report it; skip the pixel-size test here
        return None


def run(ctx: AuditContext) -> list[Finding]:
    """A finding for every box (the max of its cross-class overlap and tiny scores), and a ``border_cut``
    note for every sliver along the border.

    The cross-class pairs of every image are scored in one numpy pass (:func:`later_line_pairs`)
    and read back as plain Python lists: per image, numpy's fixed cost per call was most of this check's time.
    """
    at_half = float(ctx.param(NAME, "iou", defaults.AMBIGUOUS_IOU))
    threshold = ctx.threshold(NAME)
    dataset = ctx.dataset
    medians = _class_medians(dataset)
    records = [rec for rec in dataset.images if rec.labels]
    per_image = [rec.labels for rec in records]
    best_a, partner_a = later_line_pairs(per_image, same_class=False)
    pairs = _class_pairs(records, partner_a)
    offsets = partner_edge_offsets(per_image, partner_a)
    raised = copy_probability(best_a, pairs, at_half, seed=ctx.seed, offsets=offsets)
    overlap_a = np.maximum(overlap_score(best_a, at_half), raised)
    overlap, best, partner = overlap_a.tolist(), best_a.tolist(), partner_a.tolist()
    out: list[Finding] = []
    k = 0
    for rec in records:
        size = _image_size(rec)
        labels = rec.labels
        for lab in labels:
            name = dataset.class_name(lab.class_id)
            iou, p = best[k], partner[k]
            reasons: list[tuple[float, str, str]] = []
            if p >= 0 and iou > 0:
                other = labels[p]
                reasons.append(
                    (
                        overlap[k],
                        "overlap",
                        f"'{name}' (line {lab.line}) and '{dataset.class_name(other.class_id)}' (line {other.line}) "
                        f"on the same object (IoU {iou:.2f})",
                    )
                )
            k += 1
            t_score, t_msg = tiny_score(lab, size)
            b_score, b_msg = border_score(lab, medians.get(lab.class_id))
            reasons.append((t_score, "tiny", t_msg))
            score, reason, msg = max(reasons, key=lambda r: r[0])
            if score < 0.5:  # see BELOW_HALF_WEIGHT
                score *= BELOW_HALF_WEIGHT
            data = {"class": name, "reason": reason}
            for r_score, r, _ in reasons:
                data[f"{r}_score"] = round(r_score, 4)
            data["border_score"] = round(b_score, 4)  # the sliver measure, for --all-scores; not part of the score
            if b_score >= 0.5:
                note = {"class": name, "sliver": round(b_score, 4), "note": True}
                out.append(
                    Finding(rec.split, rec.rel, BORDER, BORDER_NOTE_SCORE, f"note: {b_msg}", line=lab.line, data=note)
                )
            if reason == "overlap" and p >= 0:
                data["partner_line"] = labels[p].line
                data["iou"] = round(iou, 4)
            if score < threshold or not msg:
                msg = f"no ambiguity found (best: {reason} {score:.2f})" if score > 0 else "no ambiguity found"
            out.append(Finding(rec.split, rec.rel, NAME, score, msg, line=lab.line, data=data))
    return out


class Ambiguous(Check):
    names = NAMES
    description = "two classes on one object, a degenerate or tiny box; border_cut notes a sliver at the border"
    kind = "box"
    order = 30
    display = {
        "ambiguous": Display(90, "#4f46e5"),
        "border_cut": Display(190, "#64748b"),
    }
    options = {"iou": defaults.AMBIGUOUS_IOU}

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
