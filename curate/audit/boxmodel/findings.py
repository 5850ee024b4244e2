"""The box checks' findings: one per real box of every split, scored for one kind (loose, shifted, grouped),
with the evidence behind it, and the sides a message names.
"""

from __future__ import annotations

from typing import Any

from curate.audit.boxmodel.child import BOX_CHECKS, BoxModel, shared_scores
from curate.audit.boxmodel.corruptions import KINDS
from curate.audit.boxmodel.masks import MaskJobs, finish_masks, queue_masks
from curate.audit.checks.base import Check
from curate.core import defaults


def loose_sides(ev: dict[str, Any], *, at: float = 0.12) -> list[str]:
    """Sides where the object ends well inside the box (a background band)."""
    return [s for s, x in (ev.get("side_extent") or {}).items() if x is not None and x >= at]


def cut_sides(ev: dict[str, Any], *, at: float = -0.05) -> list[str]:
    """Sides the object continues past."""
    return [s for s, x in (ev.get("side_extent") or {}).items() if x is not None and x <= at]


def findings_for(ctx: Any, kind: str, check: str, describe) -> list:
    """One finding per real box of every split for ``kind``; ``describe(ev, score, cls_name, threshold)`` → message
    (the check's configured threshold: a box it flags reads as flagged, one it passes as passed)."""
    from curate.core.findings import Finding

    bs = shared_scores(ctx)
    dataset = ctx.dataset
    scores = bs.scores[kind]
    threshold = ctx.threshold(check)
    out = []
    for row, (rec, j) in enumerate(bs.records):
        lab = rec.labels[j]
        ev = bs.evidence(row)
        name = dataset.class_name(lab.class_id)
        score = float(scores[row])
        data = {"class": name, **ev, "p_" + kind: round(float(bs.prob[row, 1 + KINDS.index(kind)]), 3)}
        if bs.method.endswith("grabcut"):
            data["fg_method"] = "grabcut"
        elif "fg_fraction" in ev:
            data["fg_method"] = "u2netp"
        out.append(
            Finding(rec.split, rec.rel, check, score, describe(ev, score, name, threshold), line=lab.line, data=data)
        )
    if not ctx.fast and bs.method == "pixels" and ctx.finishing:
        queue_masks(
            ctx,
            bs,
            out,
            top=int(ctx.param(check, "mask_top", defaults.BOXMODEL_MASK_TOP)),
            threshold=ctx.threshold(check),
        )
    return out


class BoxModelCheck(Check):
    """A check the box model scores (grouped, background_heavy, shifted): one finding per box for the model's
    kind :attr:`model_kind`, worded by :meth:`describe`; after every check, the foreground fraction of the
    flagged boxes the report shows is added (:func:`finish_masks`). A subclass declares its names, display,
    options and ``describe``."""

    kind = "box"
    options_from = BOX_CHECKS  # the shared model reads options of all three: a change to any refreshes each
    needs = (BoxModel, MaskJobs)
    model_kind: str = ""

    @staticmethod
    def describe(ev: dict, score: float, name: str, threshold: float) -> str:
        """The message of a box: its evidence ``ev``, its score, its class name and the configured threshold."""
        raise NotImplementedError

    def run(self, ctx: Any) -> list:
        return findings_for(ctx, self.model_kind, self.name, self.describe)

    def finish(self, ctx: Any, found: list) -> None:
        finish_masks(ctx, found, self.name, self.describe)
