"""Member boxes for a grouped finding: the boxes of the several objects that one group box was drawn around.

Why candidate sets judged box by box, and no detector: a group box is the enclosing box of 2–5 neighbouring
objects of its class, so each side of it touches a member, and its members are about the class's size. That
leaves few plausible layouts: the box tiled into equal parts (in a row, a column or a grid), split unevenly in two,
two members at opposite corners (objects overlapping on a diagonal), or members of the class's size (its typical
box in the image, and its median over the dataset) in a row or column spread from side to side, in three or four
corners, or in two adjacent ones. Each layout is a *set* of candidate boxes, and every member of the right set
should look like one real box of the class. The judge of :mod:`curate.audit.refine` (a classifier of the
dataset's real boxes against its corrupted ones — loose, shifted and grouped — cross-fitted by image) gives each
candidate the chance it is a real box.

Which set is the pick is learnt too: each set is described by its members' chances, count, size and overlap
(:func:`set_features`), and a classifier of right against wrong sets, fitted on the dataset's own synthetic merges
(the box model's grouped corruptions, whose members are known), scores them (:func:`learnt_picks`). A set is right
when at least half of the larger of the two sets (the picked members, the true ones) match one to one at IoU ≥
:data:`MEMBER_IOU`. No members are proposed where the pick's members look less like real boxes than the group box
itself (a right box flagged by mistake: its parts look less like the class than it does), and a logistic fit of
right on the pick's score, over the merges' held-out picks, gives ``p_right``; none below refine's
``MIN_P_RIGHT`` (0.5) — a wrong split accepted in batch is worse than the group box left for a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.core.overlap import iou_one

#: A proposed member this close to a merged box recovers it (issue #23's target: ≥ 50 % at IoU ≥ 0.5).
MEMBER_IOU = 0.5
#: Grouped findings searched, at most: the highest-scored first.
MAX_SEARCHED = 300
#: Tilings of the group box into equal parts: (columns, rows).
TILINGS = ((2, 1), (1, 2), (3, 1), (1, 3), (2, 2), (4, 1), (1, 4))
#: ... and into five or six (a group of five members; tried after the others).
MORE_TILINGS = ((5, 1), (1, 5), (3, 2), (2, 3))
#: Uneven splits in two: where the cut falls, as a share of the box.
CUTS = (0.35, 0.65)
#: Two members at opposite corners: each member's width and height as shares of the group box.
CORNER_SHARES = (0.6, 0.8, 1.0)
#: Members sized as the class's typical box (in the image, and over the dataset) times these: a scene's objects vary.
SIZE_SCALES = (0.8, 1.0, 1.25)
#: Typical-sized members in a row, a column or a 2×2 grid, the outer ones against the sides: (columns, rows).
GRIDS = ((2, 1), (3, 1), (4, 1), (5, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 2))
#: Members of the class's size slid along each side of the group box: this many positions a side, from one corner
#: to the other (:func:`slid_members`).
SLIDE_POSITIONS = 9
#: The box model's merges searched like flagged groups, to learn the pick and ``p_right``: a constant of the member
#: search's own, apart from refine's ``CALIBRATION_BOXES`` for loose and shifted boxes.
CALIBRATION_MERGES = 150
#: Calibration merges are cut into this many folds to learn the pick: each merge's pick comes from a scorer that never
#: saw it, so ``p_right`` is fitted on held-out picks.
PICK_FOLDS = 5
#: What a candidate set is described by, for the learnt pick (:func:`set_features`).
SET_FEATURES = (
    "mean_p",
    "min_p",
    "max_p",
    "margin",
    "p_group",
    "members",
    "log_area_vs_image",
    "log_area_vs_class",
    "log_aspect_vs_image",
    "max_pair_iou",
    "area_share",
    "log_group_vs_image",
)


@dataclass(frozen=True)
class Members:
    """A grouped box's proposed members (normalized x1, y1, x2, y2 each) and the held-out chance they are right."""

    boxes: tuple[tuple[float, float, float, float], ...]
    p_right: float


def calibration_sample(pool: list[int], n: int, seed: int) -> list[int]:
    """The rows of ``n`` of the box model's merges (``pool``) searched for calibration, sorted: a seeded draw, the
    same for the same pool, ``n`` and seed, so a benchmark can search the draws of several ``n`` at once and replay
    each."""
    rng = np.random.default_rng(seed + 13)
    return sorted(rng.choice(pool, min(n, len(pool)), replace=False).tolist())


def typical_size(
    boxes: np.ndarray, classes: np.ndarray, exclude: tuple[int, ...], cls: int, fallback: tuple[float, float]
) -> tuple[float, float]:
    """The median width and height of the image's other boxes of ``cls`` (a scene has one scale), else the
    class's median over the dataset (``fallback``)."""
    keep = [j for j in range(len(boxes)) if classes[j] == cls and j not in exclude]
    if not keep:
        return fallback
    b = boxes[keep]
    return float(np.median(b[:, 2] - b[:, 0])), float(np.median(b[:, 3] - b[:, 1]))


def class_sizes(boxes: list[np.ndarray], classes: list[np.ndarray], nc: int) -> list[tuple[float, float]]:
    """Each class's median normalized width and height over its real boxes (all boxes' where it has none)."""
    allb = np.concatenate([b for b in boxes if len(b)]) if any(len(b) for b in boxes) else np.zeros((0, 4))
    allc = np.concatenate([c for c in classes if len(c)]) if len(allb) else np.zeros(0, int)
    wh = np.stack([allb[:, 2] - allb[:, 0], allb[:, 3] - allb[:, 1]], axis=1) if len(allb) else np.ones((1, 2)) / 4
    glob = tuple(float(v) for v in np.median(wh, axis=0))
    return [tuple(float(v) for v in np.median(wh[allc == c], axis=0)) if (allc == c).any() else glob
            for c in range(nc)]  # fmt: skip


def candidate_sets(
    box: np.ndarray, typical: tuple[float, float], class_size: tuple[float, float] | None = None
) -> list[list[np.ndarray]]:
    """The member layouts of a group box (normalized xyxy), each a list of 2–6 boxes inside it: the geometric
    ones (tilings, uneven cuts, opposite corners), then members of the class's size (:func:`sized_sets`) — of its
    typical box in the image, and of ``class_size`` (its median over the dataset) where given."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    sets: list[list[np.ndarray]] = []
    for nx, ny in TILINGS:
        sets.append([np.array([x1 + i * w / nx, y1 + j * h / ny, x1 + (i + 1) * w / nx, y1 + (j + 1) * h / ny])
                     for j in range(ny) for i in range(nx)])  # fmt: skip
    for c in CUTS:
        sets.append([np.array([x1, y1, x1 + c * w, y2]), np.array([x1 + c * w, y1, x2, y2])])
        sets.append([np.array([x1, y1, x2, y1 + c * h]), np.array([x1, y1 + c * h, x2, y2])])
    sizes = {(a * w, b * h) for a in CORNER_SHARES for b in CORNER_SHARES if (a, b) != (1.0, 1.0)}
    sizes.add((min(typical[0], w), min(typical[1], h)))
    for mw, mh in sorted(sizes):
        if mw * mh >= 0.95 * w * h:
            continue
        sets.append([np.array([x1, y1, x1 + mw, y1 + mh]), np.array([x2 - mw, y2 - mh, x2, y2])])
        sets.append([np.array([x2 - mw, y1, x2, y1 + mh]), np.array([x1, y2 - mh, x1 + mw, y2])])
    for nx, ny in MORE_TILINGS:
        sets.append([np.array([x1 + i * w / nx, y1 + j * h / ny, x1 + (i + 1) * w / nx, y1 + (j + 1) * h / ny])
                     for j in range(ny) for i in range(nx)])  # fmt: skip
    for size in (typical,) if class_size is None else (typical, class_size):
        sets += sized_sets(box, size)
    return sets


def sized_sets(box: np.ndarray, size: tuple[float, float]) -> list[list[np.ndarray]]:
    """Layouts whose members are the class's size (``size`` × :data:`SIZE_SCALES`, at most the box): a row, a
    column or a 2×2 grid of them spread from side to side (:data:`GRIDS`; a single column spans the box's width),
    one in each corner, three of the four corners, or two adjacent corners.

    Why: the members of a group need not tile it — three cells in an L, two eggs in a row shorter than the box,
    five members — and the class's size says how big each is (what they add on planted groups: benchmarks/README.md,
    *Session 18 (…, branch `groups`): why flagged groups got no split, and a learnt pick over more layouts*).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    sets: list[list[np.ndarray]] = []
    for s in SIZE_SCALES:
        tw, th = min(size[0] * s, w), min(size[1] * s, h)
        for nx, ny in GRIDS:
            mw, mh = (w if nx == 1 else tw), (h if ny == 1 else th)
            xs = [x1 + i * (w - mw) / (nx - 1) for i in range(nx)] if nx > 1 else [x1]
            ys = [y1 + j * (h - mh) / (ny - 1) for j in range(ny)] if ny > 1 else [y1]
            sets.append([np.array([a, b, a + mw, b + mh]) for b in ys for a in xs])
        if tw * th >= 0.95 * w * h:
            continue
        corners = [np.array([x1, y1, x1 + tw, y1 + th]), np.array([x2 - tw, y1, x2, y1 + th]),
                   np.array([x2 - tw, y2 - th, x2, y2]), np.array([x1, y2 - th, x1 + tw, y2])]  # fmt: skip
        sets.append(corners)
        sets += [[c for i, c in enumerate(corners) if i != drop] for drop in range(4)]
        sets += [[corners[a], corners[b]] for a, b in ((0, 1), (1, 2), (2, 3), (3, 0))]
    # members at IoU ≥ MEMBER_IOU would both match one object (a member as wide as the box makes two corners one
    # box): such a set is not a split into that many objects
    return [m for m in sets if all(iou_one(tuple(m[i]), tuple(m[j])) < MEMBER_IOU
                                   for i in range(len(m)) for j in range(i + 1, len(m)))]  # fmt: skip


def slid_members(box: np.ndarray, size: tuple[float, float]) -> list[np.ndarray]:
    """Members of the class's size (``size`` × :data:`SIZE_SCALES`, at most the box) flush against each side of
    the group box, at :data:`SLIDE_POSITIONS` positions along it from corner to corner: the candidates the side
    cover sets are chosen from (:func:`side_cover_sets`). None at a size that is the box itself.

    Why: a group box encloses members *spread* over it (players on a pitch, heads in a crowd), each of the box's
    sides touched by one of them at any position along it, where the layouts of :func:`candidate_sets` put
    members in corners, rows or tilings only (benchmarks/README.md, Session 26, branch `groupsplit`)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    out: list[np.ndarray] = []
    for s in SIZE_SCALES:
        tw, th = min(size[0] * s, w), min(size[1] * s, h)
        if tw * th >= 0.95 * w * h:
            continue
        for i in range(SLIDE_POSITIONS):
            t = i / (SLIDE_POSITIONS - 1)
            ya, xa = y1 + t * (h - th), x1 + t * (w - tw)
            out += [np.array([x1, ya, x1 + tw, ya + th]), np.array([x2 - tw, ya, x2, ya + th]),
                    np.array([xa, y1, xa + tw, y1 + th]), np.array([xa, y2 - th, xa + tw, y2])]  # fmt: skip
    return out


def touched_sides(group: np.ndarray, member: np.ndarray, tol: float = 1e-6) -> tuple[bool, bool, bool, bool]:
    """Which sides of ``group`` (left, top, right, bottom) ``member`` lies flush against, leaving out a pair of
    opposite sides that it touches both of (it fills the box's height or width).

    Why: a member as tall as a wide, low group box touches its top and bottom wherever it slides, so counting those
    would let a cover set take members *between* the two at the ends (construction-ppe seed 0: two faces merged,
    a row of four proposed; benchmarks/README.md, Session 27, branch `groupslide`)."""
    left, top = bool(member[0] <= group[0] + tol), bool(member[1] <= group[1] + tol)
    right, bottom = bool(member[2] >= group[2] - tol), bool(member[3] >= group[3] - tol)
    return (left and not right, top and not bottom, right and not left, bottom and not top)


def side_cover_sets(group: np.ndarray, cands: np.ndarray, chances: np.ndarray) -> list[list[int]]:
    """Sets of slid members (indices into ``cands``, normalized xyxy, with the judge's ``chances`` that each is a
    real box) that together touch the group box's four sides, chosen greedily: the likeliest real candidate first,
    then the likeliest one flush against a side no chosen member touches yet and at IoU < :data:`MEMBER_IOU` with
    each chosen one, until every side is touched. Each prefix of two or more members is a set (a group of two
    members touching two sides each, or of three or four).

    Why: a group box is the enclosing box of its members, so each of its sides touches one of them; which
    position along a side is the judge's to say, as it is for every candidate."""
    cands = np.asarray(cands, float).reshape(-1, 4)
    sides = np.array([touched_sides(group, c) for c in cands], bool).reshape(-1, 4)
    covered = np.zeros(4, bool)
    chosen: list[int] = []
    for i in np.argsort(-np.asarray(chances, float), kind="stable"):
        if covered.all():
            break
        if not (sides[i] & ~covered).any():
            continue
        if any(iou_one(tuple(cands[i]), tuple(cands[j])) >= MEMBER_IOU for j in chosen):
            continue
        chosen.append(int(i))
        covered |= sides[i]
    return [chosen[:n] for n in range(2, len(chosen) + 1)]


def set_features(
    group: np.ndarray,
    members: list[np.ndarray],
    p_members: np.ndarray,
    p_group: float,
    typical: tuple[float, float],
    class_size: tuple[float, float],
) -> list[float]:
    """A candidate set described for the learnt pick (:data:`SET_FEATURES`): the judge's chances (its members'
    mean, least and most, and against the group box's own), how many members, their size and shape against the
    class's, how much they overlap and how much of the group box they cover.

    Why more than the mean chance: with 2–5 members and sizes from the class, the set whose members look most
    like real boxes on average is often a wrong one (two small boxes in a pile of four look real), and the judge's
    mean alone picked a right set for under half of food-ingredients' and bccd-blood-cells' own merges."""
    gw, gh = group[2] - group[0], group[3] - group[1]
    b = np.asarray(members, float).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    tw, th = typical
    cw, ch = class_size
    mean = float(np.mean(p_members))
    pairs = [iou_one(tuple(b[i]), tuple(b[j])) for i in range(len(b)) for j in range(i + 1, len(b))]
    return [mean, float(np.min(p_members)), float(np.max(p_members)), mean - p_group, p_group, float(len(b)),
            float(np.log(np.mean(w * h) / max(tw * th, 1e-9))), float(np.log(np.mean(w * h) / max(cw * ch, 1e-9))),
            float(np.log(np.median(w / np.maximum(h, 1e-9)) / max(tw / max(th, 1e-9), 1e-9))),
            max(pairs, default=0.0), float((w * h).sum() / max(gw * gh, 1e-9)),
            float(np.log(gw * gh / max(tw * th, 1e-9)))]  # fmt: skip


def matched(proposed: list, truth: list, iou: float = MEMBER_IOU) -> int:
    """How many of ``truth`` a one-to-one matching (best IoU first) pairs with a ``proposed`` box at ≥ ``iou``."""
    pairs = sorted(((iou_one(tuple(p), tuple(t)), i, j) for i, p in enumerate(proposed) for j, t in enumerate(truth)),
                   reverse=True)  # fmt: skip
    used_p: set[int] = set()
    used_t: set[int] = set()
    for v, i, j in pairs:
        if v < iou:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_t)


def is_right(proposed: list, truth: list) -> bool:
    """A split is right when at least half of the larger set, proposed or true, match one to one."""
    return matched(proposed, truth) >= 0.5 * max(len(proposed), len(truth))


def learnt_picks(
    tables: dict[int, tuple[np.ndarray, list]], calibration: list[int], labels: dict[int, np.ndarray], classifier
) -> dict[int, tuple[int, float]]:
    """Each searched group's pick: the candidate set a classifier of right against wrong sets, fitted on the
    calibration merges' sets (``tables[k]`` = (:func:`set_features` rows, sets); ``labels[k]`` = each set
    right), rates likeliest right, and that chance: {k: (set index, chance)}. A calibration merge's pick comes from
    the fit on the other :data:`PICK_FOLDS` − 1 folds, so the chances it yields are held out; the others' from
    the fit on all. No pick where a fit's sets are all right or all wrong."""

    def fit(ks: list[int]):
        y = np.concatenate([labels[k] for k in ks]) if ks else np.zeros(0)
        if len(np.unique(y)) < 2:
            return None
        return classifier().fit(np.concatenate([tables[k][0] for k in ks]), y)

    def best(model, k: int) -> tuple[int, float]:
        chance = model.predict_proba(tables[k][0])[:, 1]
        i = int(np.argmax(chance))
        return i, float(chance[i])

    from curate.runtime.env import fit_side_by_side

    fold = {k: n % PICK_FOLDS for n, k in enumerate(calibration)}
    # the folds' fits and the fit on all, side by side (independent; a fit is the same on one OpenMP thread or two)
    jobs = [lambda f=f: fit([k for k in calibration if fold[k] != f]) for f in range(PICK_FOLDS)]
    *models, model = fit_side_by_side([*jobs, lambda: fit(list(calibration))])
    out: dict[int, tuple[int, float]] = {}
    for f, held_out in enumerate(models):
        if held_out is not None:
            out.update({k: best(held_out, k) for k in calibration if fold[k] == f})
    if model is not None:
        out.update({k: best(model, k) for k in tables if k not in fold})
    return out
