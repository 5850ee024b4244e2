"""grouped: one box drawn around several objects of its class.

Scored by the dataset's own cross-fitted box model (:mod:`curate.audit.boxmodel`): P(grouped) from geometry
(far larger than the class's boxes, larger than its siblings in the image, same-class boxes inside), the
structure inside the box (separate blobs, gaps in the row/column profiles) and how the box and its halves
compare with the class's other boxes and with the model's own merges of them elsewhere.
"""

from __future__ import annotations

from curate.audit.boxmodel import BoxModelCheck, owncrop_features
from curate.audit.checks.base import Display
from curate.core import defaults

NAME = "grouped"


def _describe(ev: dict, score: float, name: str, threshold: float) -> str:
    parts = []
    blobs = max(ev.get("blobs", 0), ev.get("mask_blobs", 0), ev.get("runs", 0))
    if blobs >= 2:
        parts.append(f"~{blobs} separate objects inside")
    parts.append(f"{ev['area_vs_class']:.1f}× the median '{name}' area")
    if ev.get("halves_like_one"):
        parts.append(f"each half looks more like a single '{name}' than the whole box does")
    if ev.get("same_class_inside"):
        parts.append(f"{ev['same_class_inside']} '{name}' box(es) inside")
    head = "looks like a group box" if score >= threshold else "one object"
    return f"{head}: " + "; ".join(parts)


class Grouped(BoxModelCheck):
    names = (NAME,)
    description = "one box drawn around several objects of its class"
    order = 70
    display = {
        "grouped": Display(40, "#d97706", "mask", calibrated=True),
    }
    options = {
        "mask_top": defaults.BOXMODEL_MASK_TOP,
        "iterations": defaults.BOXMODEL_ITERATIONS,
        "members": defaults.BOXMODEL_MEMBERS,
        "owncrops": defaults.BOXMODEL_OWNCROPS,
    }
    choices = {"owncrops": owncrop_features.MODES}
    model_kind = "grouped"
    describe = staticmethod(_describe)
