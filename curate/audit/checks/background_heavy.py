"""background_heavy (loose box): the object fills only part of its box; the rest is background.

Scored by the dataset's own cross-fitted box model (:mod:`curate.audit.boxmodel`): P(loose) from geometry and
the pixels around each edge, calibrated so a clean dataset gets few flags. The message names the sides
where the object ends well inside the box and the estimated background share.
"""

from __future__ import annotations

from curate.audit.boxmodel import BoxModelCheck, loose_sides
from curate.audit.checks.base import Display
from curate.core import defaults

NAME = "background_heavy"


def _describe(ev: dict, score: float, name: str, threshold: float) -> str:
    parts = []
    if "background_share" in ev:
        share = ev["background_share"]
        sides = loose_sides(ev)
        if share >= 0.15:
            text = f"box holds ~{share:.0%} background"
            if sides:
                text += "; loose on " + ", ".join(sides)
            parts.append(text)
        if "fg_fraction" in ev:
            parts.append(f"fg fraction {ev['fg_fraction']:.2f}")
    parts.append(f"{ev['area_vs_class']:.1f}× the median '{name}' area")
    head = "looks loose" if score >= threshold else "fits its object"
    return f"{head}: " + "; ".join(parts)


class BackgroundHeavy(BoxModelCheck):
    names = (NAME,)
    description = "loose box: the object fills only part of it, the rest is background"
    order = 80
    display = {
        "background_heavy": Display(50, "#ca8a04", "mask", calibrated=True),
    }
    options = {"mask_top": defaults.BOXMODEL_MASK_TOP, "use_mask": defaults.BOXMODEL_USE_MASK}
    model_kind = "loose"
    describe = staticmethod(_describe)
