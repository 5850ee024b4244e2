"""Bounded training samples (curate.learn.bounded): whole groups per stratum, the benchmark override."""

from __future__ import annotations

import numpy as np
import pytest

from curate.learn import bounded


def test_groups_fill_each_stratum_up_to_the_quota_and_stay_whole():
    rng = np.random.default_rng(0)
    rows = rng.integers(1, 9, size=300)
    stratum = rng.integers(0, 3, size=300)
    keep = bounded.by_group(rows, stratum, 3, 200, seed=5)
    for s in range(3):
        kept = rows[keep & (stratum == s)].sum()
        assert 200 - 8 < kept <= 200  # filled, never past the quota
    again = bounded.by_group(rows, stratum, 3, 200, seed=5)
    assert np.array_equal(keep, again)  # seeded
    assert not np.array_equal(keep, bounded.by_group(rows, stratum, 3, 200, seed=6))


def test_groups_all_learn_below_the_quota_and_a_stratum_is_never_empty():
    rows, stratum = np.array([3, 4, 500, 2]), np.array([0, 0, 1, 1])
    keep = bounded.by_group(rows, stratum, 2, 10, seed=0)
    assert keep[0] and keep[1]  # stratum 0 holds 7 rows: all learn
    assert keep[2] or keep[3]  # stratum 1: at least its first group in the draw


def test_the_override_is_a_share_of_the_rows(monkeypatch):
    monkeypatch.delenv(bounded.ENV, raising=False)
    assert bounded.cap("boxmodel", 20_000, 6_000) == 20_000
    monkeypatch.setenv(bounded.ENV, "boxmodel=0.39 missing=0.33")
    assert bounded.cap("boxmodel", 20_000, 6_000) == 2_340
    assert bounded.cap("missing", 20_000, 1_000) == 330
    assert bounded.cap("other", 20_000, 1_000) == 20_000  # not named: the constant
    monkeypatch.setenv(bounded.ENV, "boxmodel=lots")
    with pytest.raises(SystemExit, match="NAME=SHARE"):
        bounded.cap("boxmodel", 20_000, 6_000)
