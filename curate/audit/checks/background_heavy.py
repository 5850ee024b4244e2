"""background_heavy (loose box): the object fills only part of its box; the rest is background.

Scored by the dataset's own cross-fitted box model (:mod:`curate.audit.boxmodel`): P(loose) from geometry and
the pixels around each edge, calibrated so a clean dataset gets few flags. The message names the sides
where the object ends well inside the box and the estimated background share.
"""

from __future__ import annotations

from curate.audit.boxmodel import BOX_CHECKS, BoxModel, MaskJobs, findings_for, finish_masks, loose_sides
from curate.audit.checks.base import AuditContext, Check, Display
from curate.core import defaults
from curate.core.findings import Finding

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


def run(ctx: AuditContext) -> list[Finding]:
    """A finding for every box: how likely it is drawn much larger than its object."""
    return findings_for(ctx, "loose", NAME, _describe)


def finish(ctx: AuditContext, found: list[Finding]) -> None:
    """After every check: the foreground fraction of the flagged boxes the report shows (masks made meanwhile)."""
    finish_masks(ctx, found, NAME, _describe)


class BackgroundHeavy(Check):
    names = (NAME,)
    description = "loose box: the object fills only part of it, the rest is background"
    kind = "box"
    order = 80
    display = {
        "background_heavy": Display(50, "#ca8a04", "mask", calibrated=True),
    }
    options = {"mask_top": defaults.BOXMODEL_MASK_TOP, "use_mask": defaults.BOXMODEL_USE_MASK}
    options_from = BOX_CHECKS  # the shared model reads options of all three: a change to any refreshes this one
    needs = (BoxModel, MaskJobs)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)

    def finish(self, ctx: AuditContext, found: list[Finding]) -> None:
        finish(ctx, found)
