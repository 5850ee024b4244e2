"""duplicate: two boxes of the same class on the same object (a double click, a copy-paste, a merged export).

Pure geometry, no pixels: for every box, its best IoU with an earlier same-class box of the image,
mapped to a score (IoU ``defaults.DUPLICATE_IOU`` = 0.7 → 0.5, an exact copy → 1.0; see
:func:`curate.checks._overlap.overlap_score`). Only the later line of a pair is flagged — the earlier is
usually the original — and the partner's line goes into ``data["partner_line"]``. Intersection over the
smaller box is NOT used: a small box inside a large one of the same class is a grouped box or a part,
not a duplicate, and the ``grouped`` check owns it.
"""

from __future__ import annotations

from curate import defaults
from curate.checks._overlap import later_line_pairs, overlap_score
from curate.checks.base import AuditContext
from curate.findings import Finding

NAME = "duplicate"


def run(ctx: AuditContext) -> list[Finding]:
    """A finding for every box: its duplicate score against earlier same-class boxes of its image."""
    at_half = float(ctx.param(NAME, "iou", defaults.DUPLICATE_IOU))
    threshold = ctx.threshold(NAME)
    dataset = ctx.dataset
    out: list[Finding] = []
    for rec in dataset.images:
        if not rec.labels:
            continue
        best, partner = later_line_pairs(rec.labels, same_class=True)
        scores = overlap_score(best, at_half)
        for k, lab in enumerate(rec.labels):
            name = dataset.class_name(lab.class_id)
            data = {"class": name, "iou": round(float(best[k]), 4)}
            if partner[k] >= 0 and best[k] > 0:
                other = rec.labels[int(partner[k])].line
                data["partner_line"] = other
                if scores[k] >= threshold:
                    kind = "exact duplicate" if best[k] >= 0.98 else "duplicate"
                    msg = f"{kind} of line {other} '{name}' (IoU {best[k]:.2f})"
                else:
                    msg = f"closest earlier '{name}' box is line {other} (IoU {best[k]:.2f})"
            else:
                msg = f"no earlier '{name}' box overlaps it"
            out.append(Finding(rec.split, rec.rel, NAME, float(scores[k]), msg, line=lab.line, data=data))
    return out
