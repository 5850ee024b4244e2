"""Near-duplicate images, and split leakage: the same photo in train and in val/test.

A near-duplicate pair inside one split over-weights that photo; across splits it leaks — the model is
tested on what it trained on and the test mAP is inflated. Pairs come from :mod:`curate.vision.hashing`
(byte-identical files, or thumbnail correlation robust to resize, re-compression, small crops and
brightness). One finding per pair, on the later image (by split order then path), naming both.
"""

from __future__ import annotations

from curate.audit.checks.base import AuditContext, Check, Display
from curate.audit.shared import ImageSignatures, NearDuplicatePairs
from curate.core.dataset import SPLITS, Dataset
from curate.core.findings import Finding
from curate.vision.hashing import NEAR_DUPLICATE_SIMILARITY

NAME = "near_duplicate"
NAMES = ("near_duplicate", "leakage")


def score_of(similarity: float, *, at_half: float = NEAR_DUPLICATE_SIMILARITY) -> float:
    """Linear: ``at_half`` → 0.5, identical → 1.0, clipped to [0, 1]."""
    return float(min(1.0, max(0.0, 0.5 + 0.5 * (similarity - at_half) / (1.0 - at_half))))


def run(ctx: AuditContext) -> list[Finding]:
    at_half = float(ctx.param("near_duplicate", "similarity", NEAR_DUPLICATE_SIMILARITY))
    split_of = {r.rel: r.split for r in ctx.dataset.images}
    order = {s: i for i, s in enumerate(SPLITS)}
    out: list[Finding] = []
    for pair in ctx.use(NearDuplicatePairs).at(ctx, max(0.0, 2 * at_half - 1.0)):
        a, b = sorted((pair.a, pair.b), key=lambda r: (order.get(split_of[r], 9), r))
        sa, sb = split_of[a], split_of[b]
        how = "identical file" if pair.exact else f"similarity {pair.similarity:.3f}"
        check = "leakage" if sa != sb else "near_duplicate"
        if check == "leakage":
            msg = f"same photo in {sa} and {sb}: {b} ≈ {a} ({how}) — the {sb} score is inflated"
        else:
            msg = f"near-duplicate of {a} in {sa} ({how})"
        data = {"partner": a, "partner_split": sa, "similarity": round(pair.similarity, 4), "exact": pair.exact}
        out.append(Finding(sb, b, check, score_of(pair.similarity, at_half=at_half), msg, data=data))
    return out + listed_in_several_splits(ctx.dataset)


def listed_in_several_splits(dataset: Dataset) -> list[Finding]:
    """Leakage of one image file listed under several splits (data.yaml ``train: images``, ``val: images``).

    Why apart from the pairs: signatures are keyed by the image's path, so a file in two splits is one
    signature and never pairs with itself. Ultralytics trains and validates on such a file. One finding per
    extra split, naming the first split it is listed in.
    """
    order = {s: i for i, s in enumerate(SPLITS)}
    out: list[Finding] = []
    for rel, splits in dataset.splits_by_file().items():
        first, *later = sorted(splits, key=lambda s: (order.get(s, 9), s))
        for split in later:
            msg = f"the same file is listed in {first} and {split} (data.yaml) — the {split} score is inflated"
            data = {"partner": rel, "partner_split": first, "similarity": 1.0, "exact": True}
            out.append(Finding(split, rel, "leakage", 1.0, msg, data=data))
    return out


class NearDuplicate(Check):
    names = NAMES
    description = "two images of the same photo; leakage when they straddle train/val/test"
    kind = "pair"
    order = 60
    display = {
        "leakage": Display(30, "#c2410c", "pair"),
        "near_duplicate": Display(180, "#ea580c", "pair"),
    }
    options = {"similarity": NEAR_DUPLICATE_SIMILARITY}
    needs = (ImageSignatures, NearDuplicatePairs)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
