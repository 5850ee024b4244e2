"""iou_one is pairwise_iou's value for one pair, to the bit: the proposals' searches call it in plain Python."""

import numpy as np

from curate.core.overlap import iou_one, pairwise_iou


def _reference(a, b) -> float:
    return float(pairwise_iou(np.asarray([a], dtype=float), np.asarray([b], dtype=float))[0, 0])


def test_iou_one_equals_pairwise_iou_to_the_bit():
    rng = np.random.default_rng(0)
    for t in range(20_000):
        a, b = rng.uniform(0, 1, 4), rng.uniform(0, 1, 4)
        if t % 4 == 0:  # proper boxes
            a, b = np.sort(a.reshape(2, 2), axis=0).ravel(), np.sort(b.reshape(2, 2), axis=0).ravel()
        elif t % 4 == 1:  # shared edges, touching and zero-area boxes
            a, b = np.round(a, 1), np.round(b, 1)
        elif t % 4 == 2:  # near copies
            b = a + rng.normal(0, 0.01, 4)
        else:  # float32 inputs, a tuple
            a, b = a.astype(np.float32), tuple(b.astype(np.float32))
        got, want = iou_one(a, b), _reference(a, b)
        assert got == want and np.signbit(got) == np.signbit(want), (a, b, got, want)


def test_iou_one_with_nan_and_degenerate_boxes():
    assert iou_one((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert iou_one((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0  # no area: 0, not a division by zero
    assert iou_one((0.5, 0.5, 0.2, 0.2), (0, 0, 1, 1)) == _reference((0.5, 0.5, 0.2, 0.2), (0, 0, 1, 1))
    nan = (0.0, 0.0, float("nan"), 1.0)
    assert np.array_equal(iou_one(nan, (0, 0, 1, 1)), _reference(nan, (0, 0, 1, 1)), equal_nan=True)
