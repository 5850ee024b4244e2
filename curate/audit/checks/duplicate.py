"""duplicate: two boxes of the same class on the same object (a double click, a copy-paste, a merged export).

Pure geometry, no pixels: for every box, its best IoU with an earlier same-class box of the image,
mapped to a score (IoU ``defaults.DUPLICATE_IOU`` = 0.7 → 0.5, an exact copy → 1.0; see
:func:`curate.core.overlap.overlap_score`). Only the later line of a pair is flagged — the earlier is
usually the original — and the partner's line goes into ``data["partner_line"]``. Intersection over the
smaller box is NOT used: a small box inside a large one of the same class is a grouped box or a part,
not a duplicate, and the ``grouped`` check owns it.
"""

from __future__ import annotations

from curate.audit.checks.base import AuditContext, Check, Display
from curate.core import defaults
from curate.core.findings import Finding
from curate.core.overlap import later_line_pairs, overlap_score

NAME = "duplicate"


def run(ctx: AuditContext) -> list[Finding]:
    """A finding for every box: its duplicate score against earlier same-class boxes of its image.

    The pairs of every image are scored in one numpy pass (:func:`later_line_pairs`) and read back
    as plain Python lists: per image, numpy's fixed cost per call was most of this check's time.
    """
    at_half = float(ctx.param(NAME, "iou", defaults.DUPLICATE_IOU))
    threshold = ctx.threshold(NAME)
    dataset = ctx.dataset
    records = [rec for rec in dataset.images if rec.labels]
    best_a, partner_a = later_line_pairs([rec.labels for rec in records], same_class=True)
    scores, best, partner = overlap_score(best_a, at_half).tolist(), best_a.tolist(), partner_a.tolist()
    out: list[Finding] = []
    k = 0
    for rec in records:
        labels = rec.labels
        for lab in labels:
            name = dataset.class_name(lab.class_id)
            iou, p, score = best[k], partner[k], scores[k]
            k += 1
            data = {"class": name, "iou": round(iou, 4)}
            if p >= 0 and iou > 0:
                other = labels[p].line
                data["partner_line"] = other
                if score >= threshold:
                    kind = "exact duplicate" if iou >= 0.98 else "duplicate"
                    msg = f"{kind} of line {other} '{name}' (IoU {iou:.2f})"
                else:
                    msg = f"closest earlier '{name}' box is line {other} (IoU {iou:.2f})"
            else:
                msg = f"no earlier '{name}' box overlaps it"
            out.append(Finding(rec.split, rec.rel, NAME, score, msg, line=lab.line, data=data))
    return out


class Duplicate(Check):
    names = (NAME,)
    description = "two boxes of the same class on the same object"
    kind = "box"
    order = 20
    display = {
        "duplicate": Display(80, "#0284c7"),
    }
    options = {"iou": defaults.DUPLICATE_IOU}

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
