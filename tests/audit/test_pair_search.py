"""One near-duplicate pair search per audit (issue #25): the search is all-pairs, and four users asked for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.audit.checks.base import AuditContext
from curate.audit.runner import run_audit
from curate.audit.shared import NearDuplicatePairs
from curate.io.yolo import load_yolo
from curate.vision import hashing
from curate.vision.hashing import at_least, image_signatures, near_duplicate_pairs


@pytest.mark.parametrize("low, high", [(0.80, 0.85), (0.0, 0.85), (0.0, 0.90)])
def test_pairs_filtered_from_a_lower_search_are_the_search_at_the_higher(sample_dir: Path, low, high) -> None:
    """The same pairs, order and similarity floats: a pair's correlation does not depend on the threshold or the
    block it was found in. (A block where most pairs were candidates took a BLAS product, whose float for a
    pair differed from the per-pair one: at 0.0 every pair is a candidate.)"""
    sigs = image_signatures(load_yolo(sample_dir), progress=False)
    direct = near_duplicate_pairs(sigs, threshold=high)
    assert len(direct) >= 3
    for block in (2048, 64):
        assert at_least(near_duplicate_pairs(sigs, threshold=low, block=block), high) == direct


def test_the_audits_pairs_are_searched_once_and_again_only_below(sample_dir: Path) -> None:
    """A user asking below the search's threshold (a --config near_duplicate similarity) gets a search of its own;
    above 1 no filter stands for a search, so it searches too."""
    ctx = AuditContext(load_yolo(sample_dir))
    sigs = image_signatures(ctx.dataset, progress=False)
    pairs = ctx.use(NearDuplicatePairs)
    assert pairs.at(ctx, 0.85) == near_duplicate_pairs(sigs, threshold=0.85)
    assert pairs.at(ctx, 0.5) == near_duplicate_pairs(sigs, threshold=0.5)
    assert pairs.at(ctx, 0.9) == near_duplicate_pairs(sigs, threshold=0.9)
    assert pairs.at(ctx, 1.5) == near_duplicate_pairs(sigs, threshold=1.5)


def test_a_full_audit_searches_the_near_duplicate_pairs_once(sample_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """near_duplicate (from 0.80), the box model's scenes, missing's duplicate regions and the proposals' search
    (0.85) each searched all pairs: four quadratic searches an audit, now one at the lowest threshold."""
    from curate.audit.boxmodel import peers

    searched: list[float] = []
    scenes: list[int] = []
    search, make_scenes = hashing.near_duplicate_pairs, peers.scenes

    def counted_search(sigs, *, threshold=None, **kw):
        searched.append(threshold)
        return search(sigs, threshold=threshold, **kw)

    def counted_scenes(dataset, *args, **kw):
        scenes.append(len(dataset.images))
        return make_scenes(dataset, *args, **kw)

    monkeypatch.setattr(hashing, "near_duplicate_pairs", counted_search)
    monkeypatch.setattr(peers, "scenes", counted_scenes)
    monkeypatch.setattr("curate.audit.boxmodel.features.scenes", counted_scenes)
    result = run_audit(load_yolo(sample_dir), out_dir=tmp_path / "audit", fiftyone=False, report=False, use_cache=False)
    assert {"near_duplicate", "leakage", "missing"} & {f.check for f in result.findings}
    assert any(p.action == "resize" for p in result.proposals)  # the search ran: its scenes were asked
    assert len(scenes) == 2  # the box model's and the search's
    assert searched == [NearDuplicatePairs.LOWEST] == [0.80]


def test_the_signatures_and_the_box_scores_are_dropped_once_no_check_left_needs_them(sample_dir: Path) -> None:
    """Held to the end of the audit, they sat under every later check's peak (issue #25): the signatures once the
    pairs are made (no check after near_duplicate reads one), the box scores after the last box check."""
    from curate.audit.boxmodel import BoxModel
    from curate.audit.runner import score_dataset
    from curate.audit.shared import ImageSignatures

    ctx = AuditContext(load_yolo(sample_dir))
    held: dict[str, tuple[bool, bool, bool]] = {}

    def mark(module: str) -> None:  # before each check runs
        sigs, scores = ctx.use(ImageSignatures)._result, ctx.use(BoxModel)._scores
        held[module] = (sigs is not None, ctx.use(NearDuplicatePairs)._pairs is not None, scores is not None)

    checks = {"near_duplicate", "grouped", "background_heavy", "shifted", "missing"}
    scores, _, errors = score_dataset(ctx, only=checks, use_cache=False, on_check=mark)
    assert not errors and {f.check for f in scores} >= checks - {"near_duplicate"}
    assert held["grouped"] == (False, True, False)  # the pairs made, the signatures dropped
    assert held["shifted"] == (False, True, True)
    assert held["missing"] == (False, True, False)  # the box scores dropped after shifted
