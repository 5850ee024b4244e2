"""The box model's cross-dataset prior (curate.audit.boxmodel.prior): the shipped file loads without pickle, reads
only features the pixel model makes, and its odds are blended into the box model's probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from curate.audit.boxmodel import prior
from curate.audit.boxmodel.corruptions import KINDS
from curate.learn.boosting import BoostedTrees


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("CURATE_BOXMODEL_PRIOR", raising=False)
    prior.load.cache_clear()
    yield
    prior.load.cache_clear()


def _model_file(path, names: list[str], *, version: int = prior.VERSION):
    """A small prior on random rows over ``names``, written as benchmarks/prior_train.py writes the real one."""
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(600, len(names)))
    y = (X[:, 0] > 0.5).astype(int) + 2 * (X[:, 1] > 0.6)
    model = BoostedTrees(iterations=8, max_depth=3).fit(X, y)
    np.savez(path, version=np.array(version), names=np.array(names), **model.to_arrays())
    return model


def _pixel_model_names() -> list[str]:
    """The full box model's feature names, made without an image (pixel_features on a blank patch)."""
    from curate.audit.boxmodel.geometry import GEOM_NAMES
    from curate.audit.boxmodel.peers import NEIGHBOUR_NAMES, PROTO_NAMES, SIB_NAMES
    from curate.audit.boxmodel.pixels import P, pixel_features

    names = [
        *GEOM_NAMES,
        *pixel_features(np.zeros((1, P, P, 5), np.float32), with_mask=False)[1],
        *SIB_NAMES,
        *PROTO_NAMES,
    ]
    return names + list(NEIGHBOUR_NAMES)


def test_shipped_prior_reads_the_features_the_pixel_model_makes():
    """A renamed or dropped feature would turn the prior off with a warning: it fails here instead."""
    loaded = prior.load(str(prior.PRIOR_PATH))
    assert loaded is not None, "curate/audit/boxmodel/prior.npz missing or of another version"
    model, reads = loaded
    assert reads == prior.invariant(_pixel_model_names())  # the same features, in the order it was trained on
    assert model.classes_.tolist() == list(range(1 + len(KINDS)))
    assert prior.PRIOR_PATH.stat().st_size < 3_000_000


def test_within_dataset_is_the_quantile_among_the_real_boxes():
    reference = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 40.0]])
    X = np.array([[0.0, 10.0], [2.0, 35.0], [9.0, np.nan]])
    out = prior.within_dataset(X, reference)
    assert np.allclose(out[:, 0], [0.0, 0.375, 1.0])
    assert np.allclose(out[:2, 1], [1 / 6, 2 / 3]) and np.isnan(out[2, 1])


def test_log_odds_are_the_models_in_any_slice_of_rows(tmp_path, monkeypatch):
    names = ["g_logw", "g_n_img", "p_grid3", "c_whole", "n_quads"]
    reads = prior.invariant(names)
    assert reads == ["g_logw", "c_whole", "n_quads"]
    model = _model_file(tmp_path / "p.npz", reads)
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", str(tmp_path / "p.npz"))
    X = np.random.default_rng(1).normal(size=(50, len(names))).astype(np.float32)
    monkeypatch.setattr(prior, "PREDICT_ROWS", 7)
    out = prior.prior_log_odds(X, names, n_real=30)
    p = model.predict_proba(prior.within_dataset(X[:, [0, 3, 4]], X[:30, [0, 3, 4]]))
    expected = np.log(np.clip(p[:, 1:], 1e-6, 1)) - np.log(np.clip(p[:, :1], 1e-6, 1))
    assert out.shape == (50, len(KINDS)) and np.allclose(out, expected, atol=1e-5)


def test_off_another_version_or_missing_features_give_no_prior(tmp_path, monkeypatch, caplog):
    names = ["g_logw", "c_whole"]
    X = np.ones((4, 2), np.float32)
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", "off")
    assert prior.prior_log_odds(X, names, 4) is None
    _model_file(tmp_path / "old.npz", names, version=prior.VERSION - 1)
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", str(tmp_path / "old.npz"))
    assert prior.prior_log_odds(X, names, 4) is None
    _model_file(tmp_path / "wide.npz", [*names, "n_quads"])
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", str(tmp_path / "wide.npz"))
    assert prior.prior_log_odds(X, names, 4) is None
    assert "not used" in caplog.text


def test_blend_multiplies_the_odds_and_keeps_unscored_rows_zero():
    prob = np.array([[0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 0.0]], np.float32)
    odds = np.array([[np.log(4.0), 0.0, -np.log(4.0)], [3.0, 3.0, 3.0]], np.float32)
    out = prior.blended(prob, odds, weight=0.5)
    assert np.allclose(out[0], np.array([0.7, 0.2, 0.1, 0.05]) / 1.05)
    assert np.array_equal(out[1], np.zeros(4))


def test_the_prior_is_on_unless_turned_off(monkeypatch):
    """On by default now that it only reorders the dataset's own scores (benchmarks/README.md, issue #22)."""
    assert prior.prior_path() == str(prior.PRIOR_PATH)
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", "off")
    assert prior.prior_path() is None
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", "on")
    assert prior.prior_path() == str(prior.PRIOR_PATH)
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", "/somewhere/lodo.npz")
    assert prior.prior_path() == "/somewhere/lodo.npz"


def test_reordered_keeps_the_scores_and_takes_the_order():
    """The blend may only reorder a kind's scores: right boxes it would raise must not meet other checks' errors at
    higher levels than the dataset's own model gave (benchmarks/README.md, issue #22)."""
    own = {k: np.array([0.9, 0.1, 0.5, 0.3], np.float32) for k in KINDS}
    blend = {k: np.array([0.2, 0.95, 0.6, 0.6], np.float32) for k in KINDS}  # rows 2 and 3 tie
    out = prior.reordered(blend, own)
    for k in KINDS:
        assert out[k].dtype == np.float32
        assert np.array_equal(out[k][:2], np.array([0.1, 0.9], np.float32))  # the lowest level, the highest
        assert out[k][2] == out[k][3] == np.float32(0.3)  # a tie shares the middle level of its block
        assert np.array_equal(np.sort(np.r_[out[k][:3], 0.5]), np.sort(own[k]))


def test_score_boxes_with_the_prior_gives_the_scores_of_the_model_alone_in_another_order(sample_dir, monkeypatch):
    """End to end on the sample, by default: the scores are a permutation of the dataset's own model's."""
    from curate.audit.boxmodel.model import score_boxes
    from curate.io.yolo import load_yolo

    ds = load_yolo(sample_dir)
    monkeypatch.setenv("CURATE_BOXMODEL_PRIOR", "off")
    alone = score_boxes(ds, progress=False, members=1, iterations=20)
    monkeypatch.delenv("CURATE_BOXMODEL_PRIOR")
    with_prior = score_boxes(ds, progress=False, members=1, iterations=20)
    for k in KINDS:
        assert np.array_equal(np.sort(with_prior.scores[k]), np.sort(alone.scores[k]))
        assert not np.array_equal(with_prior.scores[k], alone.scores[k])
