"""The numpy isotonic regression that calibrates duplicate's (and class_inconsistent's) scores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curate.learn.isotonic import isotonic_fit, isotonic_predict


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("decimals", [2, 6])  # many ties in x, or few
def test_matches_scikit_learn(increasing: bool, decimals: int) -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(decimals)
    x = np.round(rng.random(3000), decimals)
    y = (rng.random(3000) < (x if increasing else 1 - x)).astype(float)
    w = rng.uniform(0.1, 2.0, 3000)
    ref = IsotonicRegression(increasing=increasing, out_of_bounds="clip").fit(x, y, sample_weight=w)
    xs, fitted = isotonic_fit(x, y, w, increasing=increasing)
    query = np.r_[x, rng.uniform(-0.5, 1.5, 500)]  # training points, between them and outside their range
    assert np.allclose(isotonic_predict(xs, fitted, query), ref.predict(query), atol=1e-12)


def test_duplicate_calibration_imports_neither_scikit_learn_nor_scipy() -> None:
    """duplicate runs in --fast, whose speed rests on skipping scikit-learn (~2 s) and scipy.optimize (~0.4 s):
    its calibration (on 1,000 boxes or more) must not bring them in."""
    code = (
        "import sys; from pathlib import Path; from curate.core.dataset import Dataset, ImageRecord, Label; "
        "from curate.audit.checks import duplicate; from curate.audit.checks.base import AuditContext; "
        "recs = [ImageRecord('train', Path(f'/n/{i}.jpg'), f'train/images/{i}.jpg', None, "
        "[Label(0, 0.2 + 0.1 * k, 0.5, 0.1, 0.1, line=k + 1) for k in range(5)], _size=(640, 640)) "
        "for i in range(250)]; "
        "f = duplicate.run(AuditContext(Dataset(Path('/n'), 't', ['a'], recs))); "
        "print(len(f), 'sklearn' in sys.modules, 'scipy' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1250", "False", "False"]


def test_the_error_share_is_read_from_the_data_where_it_exceeds_the_prior() -> None:
    """Labels with 5 % errors at a 2 % prior: ``prior × r`` put pure errors (scores no right label reaches) at
    about 0.4; the share the data show puts them at ~1, and a dataset with fewer errors than the prior keeps
    the prior."""
    from curate.learn.isotonic import density_ratio, error_share

    rng = np.random.default_rng(0)
    synthetic = rng.uniform(0.8, 1.0, 4000)
    right = rng.uniform(0.0, 0.6, 3800)
    many = np.r_[right, rng.uniform(0.8, 1.0, 200)]  # 5 % errors
    ratio = density_ratio(many, synthetic)
    share = error_share(many, synthetic, 0.02, share_from=0.7)
    assert 0.04 < share < 0.06 and (0.02 * ratio[-200:]).max() < 0.5 and (share * ratio[-200:]).min() > 0.95
    few = np.r_[right, rng.uniform(0.8, 1.0, 40)]  # 1 %: fewer than the prior
    assert error_share(few, synthetic, 0.02, share_from=0.7) == 0.02


def test_a_few_high_legitimate_scores_do_not_set_the_share() -> None:
    """A dataset's few highest right labels sit under all the synthetic errors above them: the ratio's top step
    reads them as pure errors, a tail of at least ``SHARE_MIN_TAIL`` labels does not; below ``share_from``
    nothing counts."""
    from curate.learn.isotonic import density_ratio, error_share

    observed = np.r_[np.zeros(1860), np.linspace(0.45, 0.8, 140)]  # 7 % overlap by design, up to 0.8
    synthetic = np.linspace(0.6, 1.0, 2000)
    assert 1.0 / density_ratio(observed, synthetic).max() > 0.05  # the top step's bound: over twice the prior
    assert error_share(observed, synthetic, 0.02, share_from=0.7) == 0.02
    assert error_share(observed, synthetic, 0.02, share_from=0.4) == 0.02
