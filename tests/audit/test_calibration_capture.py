"""benchmarks/calibration_capture.py: a captured calibration's inputs give the run's scores again, under any map,
spliced into a full dump's box-check rows only."""

from __future__ import annotations

import calibration_capture as cc
import numpy as np

from curate.audit.boxmodel import model
from curate.audit.boxmodel.corruptions import KINDS
from curate.audit.boxmodel.prior import reordered
from curate.core.findings import Finding


def _capture(rng: np.random.Generator, n_real: int = 60, n_corrupt: int = 40) -> dict:
    """Two calibration calls as score_boxes makes them (the model's probabilities, then the prior's blend)."""
    y = np.concatenate([np.zeros(n_real, int), np.repeat(np.arange(1, 1 + len(KINDS)), n_corrupt)])
    calls = []
    for _ in range(2):
        logits = rng.normal(-3.0, 2.0, (len(y), len(KINDS)))
        for k in range(len(KINDS)):
            logits[y == k + 1, k] += 3.0
        prob = np.concatenate([np.ones((len(y), 1)), np.exp(logits)], axis=1)
        prob /= prob.sum(axis=1, keepdims=True)
        calls.append((prob.astype(np.float32), y, np.bincount(y) / len(y), np.flatnonzero(y == 0)))
    keys = [("train" if i % 2 else "valid", f"train/images/{i}.jpg", 1) for i in range(n_real)]
    scores = reordered(model.calibrate_heldout(*calls[1]), model.calibrate_heldout(*calls[0]))
    return {"name": "toy", "calls": calls, "scores": scores, "keys": keys}


def test_main_map_recomputed_gives_the_runs_scores_and_another_map_moves_only_box_rows() -> None:
    cap = _capture(np.random.default_rng(0))
    again = cc.rescore(cap)
    for kind in KINDS:
        assert np.array_equal(again[kind], cap["scores"][kind])

    findings = [Finding("train", f"train/images/{i}.jpg", "shifted", 0.3, "m", line=1) for i in range(1, 60, 2)]
    findings += [Finding("train", "train/images/1.jpg", "duplicate", 0.7, "d", line=1)]
    findings += [Finding("valid", "train/images/0.jpg", "grouped", 0.2, "g", line=1)]
    ones = {kind: np.ones(len(cap["keys"]), np.float32) for kind in KINDS}
    spliced = cc.splice(findings, cap, ones)
    assert [f.score for f in spliced if f.check == "shifted"] == [1.0] * 30  # every box row replaced
    assert [f.score for f in spliced if f.check == "duplicate"] == [0.7]  # another check's row kept
    assert spliced[-1].score == 1.0 and spliced[-1].split == "valid"  # keyed by split, image and line
    assert [f.score for f in findings if f.check == "shifted"] == [0.3] * 30  # the dump's own rows untouched


def test_variants_harness_reproduces_main_and_its_smooth_maps_keep_each_kinds_ranking() -> None:
    """benchmarks/calibration_variants.py: its re-implementation with main's Platt map gives main's scores, and a
    smoothed isotonic map is strictly increasing in the model's score (each kind's ranking, so its AP alone, kept)."""
    import calibration_variants as cv

    prob, y, prior, real = _capture(np.random.default_rng(1), n_real=300, n_corrupt=200)["calls"][0]
    main = model.calibrate_heldout(prob, y, prior, real)
    here = cv.VARIANTS["platt-here"](prob, y, prior, real)
    base = model.calibrate(prob, prior)
    for kind in KINDS:
        assert np.allclose(here[kind], main[kind], atol=1e-6)
    for name in ("binned-20-nomax", "shrunk-5-nomax", "avg-iso-0.5-nomax"):
        scores = cv.VARIANTS[name](prob, y, prior, real)
        for kind in KINDS:
            order = np.argsort(base[kind][real], kind="stable")
            assert (np.diff(scores[kind][order].astype(np.float64)) >= 0).all(), (name, kind)
