"""The object inside a loose box, from the image's pixels (GrabCut seeded with the box), on a generated image."""

from __future__ import annotations

import numpy as np

from curate.audit.evidence import object_boxes
from curate.core.overlap import iou_one

W, H = 400, 300
OBJECT = (120 / W, 80 / H, 180 / W, 120 / H)


def _image() -> np.ndarray:
    """A green ellipse (the object, tight box ``OBJECT``) on a grey textured background."""
    import cv2

    rng = np.random.default_rng(0)
    img = (rng.normal(0, 10, (H, W, 3)) + 120).clip(0, 255).astype(np.uint8)
    cv2.ellipse(img, (150, 100), (30, 20), 0, 0, 360, (20, 200, 60), -1)
    return img


def test_the_object_is_found_wherever_it_sits_in_a_loose_box_and_a_tight_box_gets_none() -> None:
    img = _image()
    for loose in ((90 / W, 60 / H, 210 / W, 140 / H), (120 / W, 80 / H, 240 / W, 170 / H)):  # about it, in a corner
        found = object_boxes(img, np.array(loose))
        assert found and max(iou_one(tuple(b), OBJECT) for b in found) >= 0.85 > iou_one(loose, OBJECT)
    assert object_boxes(img, np.array(OBJECT)) == []  # already tight: nothing tighter to propose
    assert object_boxes(img, np.array((300 / W, 200 / H, 360 / W, 260 / H))) == []  # only background inside
