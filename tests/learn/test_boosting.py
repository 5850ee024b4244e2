"""curate.learn.boosting: --fast's numpy gradient boosting and Platt fit, on small generated data."""

from __future__ import annotations

import numpy as np
import pytest

from curate.learn.boosting import BoostedTrees, bin_edges, platt


def _interaction_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four classes decided by two features jointly (a 2×2 checkerboard): no single-feature rule gets them."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 5))
    y = (X[:, 0] > 0).astype(int) * 2 + (X[:, 1] > 0).astype(int)
    return X, y


def test_learns_an_interaction_and_generalises() -> None:
    X, y = _interaction_data(3000, 0)
    Xt, yt = _interaction_data(1000, 1)
    model = BoostedTrees(iterations=30).fit(X, y)
    prob = model.predict_proba(Xt)
    assert prob.shape == (1000, 4) and np.allclose(prob.sum(axis=1), 1.0)
    assert (prob.argmax(axis=1) == yt).mean() > 0.95


def test_classes_are_the_labels_present_in_order() -> None:
    X, y = _interaction_data(800, 2)
    labels = np.array([0, 2, 3, 3])[y]  # label 1 absent: columns follow classes_, as in scikit-learn
    model = BoostedTrees(iterations=10).fit(X, labels)
    assert model.classes_.tolist() == [0, 2, 3]
    assert model.predict_proba(X).shape == (800, 3)


def test_missing_values_go_to_the_side_that_gains() -> None:
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, size=(2000, 2))
    y = (rng.random(2000) < 0.5).astype(int)
    X[y == 1, 0] = np.nan  # the label is "is feature 0 missing"
    model = BoostedTrees(iterations=10, max_depth=1).fit(X, y)
    test = np.array([[np.nan, 0.5], [0.5, 0.5]])
    p = model.predict_proba(test)[:, 1]
    assert p[0] > 0.9 and p[1] < 0.1


def test_deterministic() -> None:
    X, y = _interaction_data(1000, 4)
    a = BoostedTrees(iterations=15).fit(X, y).predict_proba(X)
    b = BoostedTrees(iterations=15).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_sibling_histograms_by_subtraction_equal_counting_them() -> None:
    """Below the root only the smaller sibling's rows are counted; the other is parent minus it."""
    rng = np.random.default_rng(5)
    model = BoostedTrees(max_bins=8)
    n, nf, k = 500, 3, 2
    binned = rng.integers(0, 8, size=(n, nf))
    offsets = binned + np.arange(nf) * 8
    g, h = rng.normal(size=(n, k)), rng.uniform(0.1, 1, size=(n, k))
    rows = rng.permutation(n)[:400]
    local = rng.integers(0, 4, size=400)  # two sibling pairs: (0, 1) and (2, 3)
    direct = model._histograms((local[:, None] * (nf * 8) + offsets[rows]).ravel(), g[rows], h[rows], 4, nf)
    parent = model._histograms(((local // 2)[:, None] * (nf * 8) + offsets[rows]).ravel(), g[rows], h[rows], 2, nf)
    by_subtraction = model._level_histograms(offsets, rows, local, g[rows], h[rows], 4, parent)
    for a, b in zip(direct, by_subtraction):
        assert np.allclose(a, b)


def test_bin_edges_few_values_and_many() -> None:
    assert bin_edges(np.array([1.0, 1.0, 3.0, np.nan]), 64).tolist() == [2.0]
    edges = bin_edges(np.random.default_rng(6).normal(size=5000), 64)
    assert len(edges) == 62 and np.all(np.diff(edges) > 0)  # 63 bins of values, the 64th for NaN
    assert bin_edges(np.array([np.nan, np.nan]), 64).size == 0


def test_platt_matches_scikit_learns_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    z = rng.normal(size=3000) * 2
    t = rng.random(3000) < 1 / (1 + np.exp(-(1.3 * z - 0.7)))
    lr = LogisticRegression(C=1.0).fit(z[:, None], t.astype(int))
    a, b = platt(z, t)
    assert a == pytest.approx(lr.coef_[0, 0], abs=1e-3) and b == pytest.approx(lr.intercept_[0], abs=1e-3)


def test_fast_box_model_imports_neither_scikit_learn_nor_scipy(sample_dir) -> None:
    """--fast's promise of hundreds of images a second rests on this: scikit-learn's import costs ~2 s."""
    import subprocess
    import sys

    code = (
        "import sys; from curate.io.yolo import load_yolo; from curate.audit import boxmodel; "
        f"bs = boxmodel.score_boxes(load_yolo({str(sample_dir)!r}), fast=True, progress=False); "
        "print(len(bs.records), 'sklearn' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n, sk, sp = out.stdout.split()
    assert int(n) > 100 and sk == "False" and sp == "False"


def test_arrays_round_trip_through_npz_predicts_the_same(tmp_path) -> None:
    """A shipped model (the box model's cross-dataset prior) is stored as plain arrays, loaded without pickle."""
    X, y = _interaction_data(1500, 4)
    X[::7, 2] = np.nan
    model = BoostedTrees(iterations=12, max_depth=3).fit(X, y)
    path = tmp_path / "model.npz"
    np.savez(path, **model.to_arrays())
    with np.load(path, allow_pickle=False) as arrays:
        loaded = BoostedTrees.from_arrays(arrays)
    Xt, _ = _interaction_data(500, 5)
    Xt[::5, 2] = np.nan
    assert np.array_equal(loaded.predict_proba(Xt), model.predict_proba(Xt))
    assert loaded.classes_.tolist() == model.classes_.tolist()
