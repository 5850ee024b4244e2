"""The sibling features' typical distances of a set less one member, all members at once (issue #25, speed):
the same numbers as computing each set alone."""

from __future__ import annotations

import numpy as np

from curate.audit.boxmodel.peers import _rms_distances, _sibling_nn, _without_one


def test_the_set_less_each_member_gives_each_sets_own_numbers() -> None:
    rng = np.random.default_rng(5)
    for m in (1, 2, 3, 4, 7, 40):
        stats, grid = rng.normal(size=(m, 7)), rng.normal(size=(m, 16))
        stats[m // 2 :: 3] = stats[0]  # ties: equal nearest distances
        ps, pg = _rms_distances(stats, stats), _rms_distances(grid, grid)
        got = _without_one(ps, pg)
        for e in range(m):
            s = np.flatnonzero(np.arange(m) != e)
            ss, gg = ps[np.ix_(s, s)], pg[np.ix_(s, s)]
            want = [_sibling_nn(ss), _sibling_nn(gg), _sibling_nn(ss + gg)]
            np.testing.assert_array_equal(got[:, e], want)  # bit for bit, NaN where fewer than two remain


def test_a_set_with_an_undefined_distance_is_left_to_the_per_set_path() -> None:
    ps = np.ones((4, 4))
    ps[1, 2] = np.nan
    assert _without_one(ps, np.ones((4, 4))) is None
