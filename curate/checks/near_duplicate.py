"""Near-duplicate images, and leakage when a pair straddles train/val/test (inflates test metrics)."""

from __future__ import annotations

from curate.checks.base import AuditContext
from curate.checks.image_checks import _signatures
from curate.findings import Finding
from curate.hashing import NEAR_DUPLICATE_SIMILARITY, near_duplicate_pairs

NAME = "near_duplicate"
NAMES = ("near_duplicate", "leakage")
FLOOR = 0.90  # similarity mapped to score 0; NEAR_DUPLICATE_SIMILARITY maps to 0.5


def _score(sim: float) -> float:
    mid = NEAR_DUPLICATE_SIMILARITY
    if sim >= mid:
        return min(1.0, 0.5 + 0.5 * (sim - mid) / (1.0 - mid))
    return max(0.0, 0.5 * (sim - FLOOR) / (mid - FLOOR))


def run(ctx: AuditContext) -> list[Finding]:
    sigs = _signatures(ctx)
    split = {r.rel: r.split for r in ctx.dataset.images}
    out: list[Finding] = []
    for a, b, sim in near_duplicate_pairs(sigs, threshold=FLOOR):
        exact = sigs[a].content_hash == sigs[b].content_hash
        kind = "exact duplicate" if exact else f"near-duplicate (similarity {sim:.3f})"
        if split[a] != split[b]:
            check, msg = "leakage", f"{a} ({split[a]}) and {b} ({split[b]}) are an {kind} across splits"
        else:
            check, msg = "near_duplicate", f"{a} and {b} are an {kind} in {split[a]}"
        out.append(Finding(split[a], a, check, 1.0 if exact else _score(sim), msg,
                           data={"partner": b, "partner_split": split[b], "similarity": sim}))
    return out
