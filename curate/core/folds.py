"""Folds by image for cross-fitting: the fold each image (and so each of its rows) falls in.

Why by image: a box must be scored by a model that never saw its image (the boxes of one photo share its light,
background and labeller), so all rows of an image go to one fold. The box model and the missing check draw their
folds with this one rule.
"""

from __future__ import annotations

import numpy as np


def image_folds(n_images: int, k: int, seed: int) -> np.ndarray:
    """A fold in ``[0, k)`` for each of ``n_images`` images, drawn at random: same seed, same folds."""
    return np.random.default_rng(seed + 17).integers(0, k, size=n_images)
