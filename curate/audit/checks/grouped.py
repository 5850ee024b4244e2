"""grouped: one box drawn around several objects of its class.

Scored by the dataset's own cross-fitted box model (:mod:`curate.audit.boxmodel`): P(grouped) from geometry
(far larger than the class's boxes, larger than its siblings in the image, same-class boxes inside), the
structure inside the box (separate blobs, gaps in the row/column profiles) and how the box and its halves
compare with the class's other boxes and with the model's own merges of them elsewhere.
"""

from __future__ import annotations

from curate.audit.boxmodel import BOX_CHECKS, BoxModel, MaskJobs, findings_for, finish_masks
from curate.audit.checks.base import AuditContext, Check, Display
from curate.core import defaults
from curate.core.findings import Finding

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


def run(ctx: AuditContext) -> list[Finding]:
    """A finding for every box: how likely it encloses several objects of its class."""
    return findings_for(ctx, "grouped", NAME, _describe)


def finish(ctx: AuditContext, found: list[Finding]) -> None:
    """After every check: the foreground fraction of the flagged boxes the report shows (masks made meanwhile)."""
    finish_masks(ctx, found, NAME, _describe)


class Grouped(Check):
    names = (NAME,)
    description = "one box drawn around several objects of its class"
    kind = "box"
    order = 70
    display = {
        "grouped": Display(40, "#d97706", "mask", calibrated=True),
    }
    options = {
        "mask_top": defaults.BOXMODEL_MASK_TOP,
        "iterations": defaults.BOXMODEL_ITERATIONS,
        "members": defaults.BOXMODEL_MEMBERS,
    }
    options_from = BOX_CHECKS  # the shared model reads options of all three: a change to any refreshes this one
    needs = (BoxModel, MaskJobs)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)

    def finish(self, ctx: AuditContext, found: list[Finding]) -> None:
        finish(ctx, found)
