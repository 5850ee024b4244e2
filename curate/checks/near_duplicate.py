"""Near-duplicate images, and split leakage: the same photo in train and in val/test.

A near-duplicate pair inside one split over-weights that photo; across splits it leaks — the model is
tested on what it trained on and the test mAP is inflated. Pairs come from :mod:`curate.hashing`
(byte-identical files, or thumbnail correlation robust to resize, re-compression, small crops and
brightness). One finding per pair, on the later image (by split order then path), naming both.
"""

from __future__ import annotations

from curate.checks.base import AuditContext
from curate.checks.image_checks import signatures
from curate.dataset import SPLITS
from curate.findings import Finding
from curate.hashing import NEAR_DUPLICATE_SIMILARITY, near_duplicate_pairs

NAME = "near_duplicate"
NAMES = ("near_duplicate", "leakage")
#: Pairs are listed (with --all-scores) from this similarity; score 0.5 at NEAR_DUPLICATE_SIMILARITY, 1.0 at 1.0.
FLOOR = 2 * NEAR_DUPLICATE_SIMILARITY - 1.0


def score_of(similarity: float, *, at_half: float = NEAR_DUPLICATE_SIMILARITY) -> float:
    """Linear: ``at_half`` → 0.5, identical → 1.0, clipped to [0, 1]."""
    return float(min(1.0, max(0.0, 0.5 + 0.5 * (similarity - at_half) / (1.0 - at_half))))


def run(ctx: AuditContext) -> list[Finding]:
    sigs = signatures(ctx)
    at_half = float(ctx.param("near_duplicate", "similarity", NEAR_DUPLICATE_SIMILARITY))
    split_of = {r.rel: r.split for r in ctx.dataset.images}
    order = {s: i for i, s in enumerate(SPLITS)}
    out: list[Finding] = []
    for pair in near_duplicate_pairs(sigs, threshold=max(0.0, 2 * at_half - 1.0)):
        a, b = sorted((pair.a, pair.b), key=lambda r: (order.get(split_of[r], 9), r))
        sa, sb = split_of[a], split_of[b]
        how = "identical file" if pair.exact else f"similarity {pair.similarity:.3f}"
        check = "leakage" if sa != sb else "near_duplicate"
        if check == "leakage":
            msg = f"same photo in {sa} and {sb}: {b} ≈ {a} ({how}) — the test score is inflated"
        else:
            msg = f"near-duplicate of {a} in {sa} ({how})"
        data = {"partner": a, "partner_split": sa, "similarity": round(pair.similarity, 4), "exact": pair.exact}
        out.append(Finding(sb, b, check, score_of(pair.similarity, at_half=at_half), msg, data=data))
    return out
