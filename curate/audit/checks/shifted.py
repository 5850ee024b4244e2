"""shifted (badly placed box): the box cuts through its object on one side and holds background on the other.

Scored by the dataset's own cross-fitted box model (:mod:`curate.audit.boxmodel`): P(shifted) from geometry and
the pixels around each edge. The message names the sides the object continues past and the sides with a
background band.
"""

from __future__ import annotations

from curate.audit.boxmodel import BoxModelCheck, cut_sides, loose_sides
from curate.audit.checks.base import Display
from curate.core import defaults

NAME = "shifted"


def _describe(ev: dict, score: float, name: str, threshold: float) -> str:
    opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
    loose = loose_sides(ev)
    # a cut side only counts with background inside the opposite edge: that pair is what a shift looks like
    cut = [s for s in cut_sides(ev) if opposite[s] in loose]
    loose = [s for s in loose if opposite[s] in cut]
    head = "looks shifted" if score >= threshold else "placed on its object"
    parts = []
    dx, dy = ev.get("object_offset", (0.0, 0.0))
    if max(abs(dx), abs(dy)) >= 0.05:
        vertical = ("lower" if dy > 0 else "upper") if abs(dy) >= 0.05 else ""
        horizontal = ("right" if dx > 0 else "left") if abs(dx) >= 0.05 else ""
        towards = (
            f"{vertical} {horizontal}".strip()
            if vertical and horizontal
            else (horizontal or ("bottom" if dy > 0 else "top"))
        )
        parts.append(f"the object sits off-centre, towards the {towards} ({max(abs(dx), abs(dy)):.0%} of the box size)")
    if cut:
        parts.append("object continues past " + ", ".join(cut))
    if loose:
        parts.append("background inside " + ", ".join(loose))
    if not parts:
        return head if "side_extent" in ev else f"{head} (geometry only)"
    return f"{head}: " + "; ".join(parts)


class Shifted(BoxModelCheck):
    names = (NAME,)
    description = "the box cuts its object on one side and holds background on the other"
    order = 90
    display = {
        "shifted": Display(60, "#65a30d", "mask", calibrated=True),
    }
    options = {"mask_top": defaults.BOXMODEL_MASK_TOP}
    model_kind = "shifted"
    describe = staticmethod(_describe)
