"""The learnt pick among a loose box's candidates (curate/audit/loose.py), on scenes of like objects."""

from __future__ import annotations

import numpy as np

from curate.audit.loose import FEATURES, describe, learnt_picks
from curate.audit.refine import MIN_P_RIGHT, MIN_ROWS, RIGHT_IOU, SHRINKS, _candidates, _classifier
from curate.core.overlap import iou_one


def _search(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A scene of like objects (a row of touching boxes of one size, the size varying by scene), the first box
    loosened about its centre by 1.5–2.2 per axis, its centred shrinks, and a judge whose favourite is always the
    shrink a step larger than the object (it holds a neighbour's edge, as in a pile of cells): the candidates, the
    judge's chances, the image's real boxes, and each candidate's IoU with the object."""
    side = rng.uniform(0.05, 0.12)
    x0, y0 = rng.uniform(0.2, 0.4), rng.uniform(0.2, 0.6)
    real = np.array([[x0 + j * side, y0, x0 + (j + 1) * side, y0 + side] for j in range(5)])
    obj = real[2]
    cx, cy = (obj[0] + obj[2]) / 2, (obj[1] + obj[3]) / 2
    sx, sy = rng.uniform(1.5, 2.2, 2) * side / 2
    box = np.array([cx - sx, cy - sy, cx + sx, cy + sy])
    cands = np.array([box, *_candidates(box, "loose")])
    ious = np.array([iou_one(tuple(c), tuple(obj)) for c in cands])
    width = cands[:, 2] - cands[:, 0]
    too_big = int(np.argmin(np.where(width > side * 1.15, width, np.inf)))  # the next shrink up from the object
    chance = rng.uniform(0.2, 0.5, len(cands))
    chance[too_big] = 0.9
    return cands, chance, real, ious, obj


def test_the_learnt_pick_finds_the_object_where_the_judges_favourite_is_a_neighbour() -> None:
    """The judge's favourite is wrong on every box; a classifier of right against wrong candidates, learnt on the
    calibration boxes, picks the candidate of the scene's size, and its held-out ``p_right`` says it is sure."""
    rng = np.random.default_rng(0)
    tables, right, truth, favourite = {}, {}, {}, {}
    for k in range(90):
        cands, chance, real, ious, _ = _search(rng)
        # the searched box replaces the middle real box (its original): its scene is the other four
        tables[k] = describe(cands, chance, np.zeros(len(cands), bool), real, np.zeros(5, int), (2,), 0, (0.1, 0.1))
        truth[k] = ious >= RIGHT_IOU
        favourite[k] = int(np.argmax(chance))
        if k < 60:  # calibration boxes: their box before corruption is known
            right[k] = truth[k].astype(int)
    assert tables[0].shape == (1 + len(SHRINKS) ** 2, len(FEATURES))
    assert not any(truth[k][favourite[k]] for k in tables)  # refine's first rule: wrong on every box
    picks = learnt_picks(tables, list(range(60)), right, lambda: _classifier(0), MIN_ROWS)
    flagged = range(60, 90)
    made = [k for k in flagged if picks[k][0] > 0 and picks[k][1] >= MIN_P_RIGHT]
    assert len(made) >= 20
    assert sum(truth[k][picks[k][0]] for k in made) >= 0.9 * len(made)


def test_no_learnt_pick_where_the_calibration_is_too_small() -> None:
    rng = np.random.default_rng(1)
    tables, right = {}, {}
    for k in range(MIN_ROWS - 1):
        cands, chance, real, ious, _ = _search(rng)
        tables[k] = describe(cands, chance, np.zeros(len(cands), bool), real, np.zeros(5, int), (2,), 0, (0.1, 0.1))
        right[k] = (ious >= RIGHT_IOU).astype(int)
    assert learnt_picks(tables, list(tables), right, lambda: _classifier(0), MIN_ROWS) == {}


def test_features_describe_the_candidate_against_its_scene() -> None:
    """A candidate the size of the class's other boxes in the image reads 0 against them; one reaching over a
    neighbour overlaps it; GrabCut's box, where given, is marked and found off the box's centre."""
    real = np.array([[0.1, 0.1, 0.2, 0.2], [0.2, 0.1, 0.3, 0.2], [0.3, 0.1, 0.4, 0.2]])
    box = np.array([0.17, 0.07, 0.33, 0.23])
    cands = np.array([box, [0.2, 0.1, 0.3, 0.2], [0.18, 0.08, 0.32, 0.22], [0.22, 0.1, 0.3, 0.2]])
    chance = np.array([0.1, 0.6, 0.8, 0.5])
    from_image = np.array([False, False, False, True])
    f = describe(cands, chance, from_image, real, np.zeros(3, int), (1,), 0, (0.1, 0.1))
    col = {name: f[:, i] for i, name in enumerate(FEATURES)}
    assert np.allclose(col["log_width_typical"][1], 0.0) and np.allclose(col["log_height_typical"][1], 0.0)
    assert col["overlap_others"][2] > col["overlap_others"][1] == 0.0
    assert list(col["rank"]) == [1.0, 1 / 3, 0.0, 2 / 3] and np.allclose(col["margin"], chance - 0.1)
    assert col["image_found"].all() and col["from_image"][3] == 1.0 and col["iou_image"][3] == 1.0
    assert col["image_dx"][0] > 0 and col["log_same_class"][0] == np.log1p(2)
