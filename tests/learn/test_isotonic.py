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
