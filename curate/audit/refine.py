"""Geometry proposals: the tightened box for a loose finding, the box moved back onto its object for a shifted one.

Why a search scored by a learnt judge: moving each side onto the box model's per-side object extent made planted
loose boxes worse (median IoU with the original 0.10, against 0.31 left alone, on epicureai): in a cluttered scene
no single pixel measure says where one object ends; and a regressor of each side's move, learnt from the box
model's corrupted boxes, reached a median IoU of only 0.48 on shifted boxes. What the dataset does teach well
is whether a box looks like one of its real boxes: the box model tells its own corrupted boxes from real ones
(:mod:`curate.audit.boxmodel`). So each flagged box gets a small grid of candidates — shrunk about its centre
(loose), moved along one axis or both (shifted) — every candidate is described with the box model's features
(geometry against the class and the image's other boxes, edge bands, the class's prototypes and nearest boxes),
and a classifier of real boxes against corrupted ones picks the candidate most like a real box. The classifier
is cross-fitted by image: a flagged box is judged by a model that never saw its image.

Whether the pick is right (IoU ≥ :data:`RIGHT_IOU` with the box before corruption) is measured the same way:
:data:`CALIBRATION_BOXES` of the box model's corrupted boxes of that kind are searched like flagged ones, and an
logistic fit of right/wrong on how much the pick beat the box itself gives ``p_right``. No box is proposed below
:data:`MIN_P_RIGHT`, nor where no candidate beats the box — a wrong box accepted in batch is worse than none.
The proposal's confidence is ``p_right`` times the finding's score (the chance the box is loose or shifted at
all: refining a right box makes it wrong). The geometric loose candidates keep the box's centre, so a loose box
enlarged mostly on one side (half the calibration boxes) has none near its object; one or two more candidates come
from the image itself: the tight box of the object GrabCut finds inside the box (:mod:`curate.audit.evidence`).
Such a pick is right at its own rate (well on plain backgrounds, seldom in a pile of like objects), so the fit of
``p_right`` takes, beside the margin, whether the pick came from the image. A loose box's candidate is then
picked by a second classifier, of right against wrong candidates, learnt on the calibration boxes with its own
held-out ``p_right`` (:mod:`curate.audit.loose`): the judge's favourite is a part of the object (a cell, a player)
or a little too small too often; it is kept for a dataset too small to learn that pick.

The corrupted boxes are the box model's own (same seeds, same draws), so their pixel features come from the
audit's feature cache; only the candidates are described anew (about 1 ms each).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from curate.core import defaults
from curate.core.dataset import Dataset
from curate.core.folds import image_folds
from curate.core.overlap import iou_one
from curate.vision.hashing import Pair

log = logging.getLogger(__name__)

#: The finding whose box is refined, and the box model's corruption kind that teaches it.
KIND_OF_CHECK = {"background_heavy": "loose", "shifted": "shifted"}
#: The finding whose box is split into its members (:mod:`curate.audit.members`).
GROUP_CHECK = "grouped"
#: A refined box this close to the box before corruption is right (issue #23's target: median IoU ≥ 0.75).
RIGHT_IOU = 0.75
#: No proposal where the held-out chance of a right box is below this.
MIN_P_RIGHT = 0.5
FOLDS = 3
#: The box model's members whose corruptions teach the judge (3: all of them, each drawn with its own seed).
MEMBERS = 3
MIN_ROWS = 20  # boxes a fold's judge needs, and calibration boxes a search needs
#: Corrupted loose and shifted boxes searched like flagged ones, to learn how often the search is right (the member
#: search has its own count: :data:`curate.audit.members.CALIBRATION_MERGES`).
CALIBRATION_BOXES = 150
#: Loose boxes searched for calibration (at least :data:`CALIBRATION_BOXES`): the learnt pick's classifier learns
#: from their candidates (~38 a box), and on bccd-blood-cells 150 boxes left it right for 57 % of what it proposed.
LOOSE_CALIBRATION_BOXES = 400
#: Real and corrupted boxes the judge learns from, at most (plus the searched boxes' own images): above it, a seeded
#: sample of images. The search describes these rows a second time (the box model's pixel features, from the cache),
#: so without a bound a large dataset pays a second box-model pass in time and memory. 60,000 is above every pool
#: dataset (football-players: 48,983 rows), whose proposals are therefore those measured.
MAX_ROWS = 60_000
#: Loose and shifted findings searched, at most: the highest-scored first (football-players flags ~220).
MAX_SEARCHED = 600
#: Loose candidates: the box shrunk about its centre by these factors per axis.
SHRINKS = (1.25, 1.5, 1.75, 2.0, 2.3, 2.6)


@dataclass(frozen=True)
class Refined:
    """A flagged box's proposed replacement (normalized x1, y1, x2, y2) and its held-out chance of being right."""

    xyxy: tuple[float, float, float, float]
    p_right: float


def _classifier(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0,
        early_stopping=False, random_state=seed,
    )  # fmt: skip


def _candidates(box: np.ndarray, kind: str) -> list[np.ndarray]:
    """Candidate boxes for a flagged one. Shifted: the box moved along one axis or both, over the range
    annotation slips cover (a fifth to seven tenths of its size). Loose: the box shrunk about its centre, by
    1.25–2.6 per axis."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    out = []
    if kind == "shifted":
        one = [f * sign for f in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7) for sign in (-1, 1)]
        both = [f * sign for f in (0.3, 0.45, 0.6) for sign in (-1, 1)]
        for dx, dy in [(d, 0.0) for d in one] + [(0.0, d) for d in one] + [(a, b) for a in both for b in both]:
            moved = np.clip(box + np.array([dx * w, dy * h, dx * w, dy * h]), 0.0, 1.0)
            if (moved[2] - moved[0]) * (moved[3] - moved[1]) >= 0.5 * w * h:
                out.append(moved)
    else:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for sx in SHRINKS:
            for sy in SHRINKS:
                out.append(np.array([cx - w / sx / 2, cy - h / sy / 2, cx + w / sx / 2, cy + h / sy / 2]))
    return out


def refine(
    dataset: Dataset,
    flagged: list[tuple[str, int, str]],
    *,
    seed: int = defaults.SEED,
    same_scene: Callable[[], list[Pair]] | None = None,
) -> dict:
    """Refined boxes for ``flagged`` = (image rel, line, check) of loose (``background_heavy``) and ``shifted``
    findings: {(rel, line, check): :class:`Refined`}, and member boxes for ``grouped`` ones:
    {(rel, line, "grouped"): :class:`curate.audit.members.Members`}, only where ``p_right`` ≥ :data:`MIN_P_RIGHT`.

    Kept apart from the findings because it costs a second description of the box model's boxes (pixels from
    the cache) and small cross-fits; it runs only when a loose, shifted or grouped box was flagged.
    ``same_scene`` gives the audit's near-duplicate pairs at SAME_SCENE_SIMILARITY for the neighbour features'
    scenes (called only when the search runs: an audit that flagged no such box searches no pairs for it); without
    it they are searched from the signature cache.
    """
    from curate.audit.boxmodel.corruptions import Query, _queries
    from curate.audit.boxmodel.features import _features
    from curate.runtime.env import no_all_nan_columns

    wanted = [(rel, line, check) for rel, line, check in flagged if check in KIND_OF_CHECK or check == GROUP_CHECK]
    if not wanted or not dataset.num_boxes:
        return {}
    # the box model's members draw exactly these corruptions (seed + 101 × member): their pixel features are cached
    qs, boxes, classes = _queries(
        dataset, np.random.default_rng(seed), with_corruptions=True, share=defaults.BOXMODEL_CORRUPT_SHARE
    )
    n_real = sum(q.line is not None for q in qs)
    for m in range(1, MEMBERS):
        more = _queries(dataset, np.random.default_rng(seed + 101 * m), with_corruptions=True,
                        share=defaults.BOXMODEL_CORRUPT_SHARE)[0]  # fmt: skip
        qs += more[n_real:]
    index = {r.rel: i for i, r in enumerate(dataset.images)}
    qs = within_row_budget(qs, {index[rel] for rel, _, _ in wanted if rel in index}, seed)
    row_of = {(q.image, dataset.images[q.image].labels[q.line].line): k for k, q in enumerate(qs) if q.line is not None}
    targets = {(rel, line, check): row_of.get((index.get(rel), line)) for rel, line, check in wanted}
    targets = {key: k for key, k in targets.items() if k is not None}
    # every candidate of each flagged box, and of a sample of corrupted boxes of its kind (calibration)
    candidates: dict[str, dict[int, list[int]]] = {}
    from_image: set[int] = set()  # the rows of candidates taken from the image (curate.audit.evidence)
    for kind in ("loose", "shifted"):
        searched = sorted({k for (_, _, check), k in targets.items() if KIND_OF_CHECK.get(check) == kind})
        if not searched:
            continue
        searched += _calibration_sample(qs, kind, seed)
        found = _from_pixels(dataset, qs, searched) if kind == "loose" else {}
        for k in searched:
            q, mine = qs[k], [k]
            geometric = _candidates(np.asarray(q.xyxy, float), kind)
            for n, box in enumerate(geometric + found.get(k, [])):
                if n >= len(geometric):
                    from_image.add(len(qs))
                mine.append(len(qs))
                qs.append(Query(q.image, box, q.cls, "candidate", q.exclude))
            candidates.setdefault(kind, {})[k] = mine
    groups = _member_candidates(qs, boxes, classes, len(dataset.names), targets, seed)
    pairs = same_scene() if same_scene is not None else None
    X, _ = _features(dataset, qs, boxes, classes, pixels=True, masks=None, progress=False, same_scene=pairs)
    X = no_all_nan_columns(X)  # float32: scikit-learn converts each fit's rows to float64 exactly, not all rows
    fold_of_image = image_folds(len(dataset.images), FOLDS, seed)
    fold_of_row = fold_of_image[np.array([q.image for q in qs], int)]
    out: dict = {}
    for kind, mine in candidates.items():
        out.update(_search(kind, qs, boxes, classes, X, fold_of_row, targets, mine, from_image, seed))
    if groups:
        out.update(_search_members(qs, boxes, X, fold_of_row, targets, groups, seed))
    return {key: r for key, r in out.items() if r.p_right >= MIN_P_RIGHT}


def _calibration_sample(qs: list, kind: str, seed: int) -> list[int]:
    """The box model's corrupted boxes of ``kind`` searched like flagged ones, to learn how often the search is
    right: :data:`CALIBRATION_BOXES` of them, and for loose boxes up to :data:`LOOSE_CALIBRATION_BOXES` (the same
    first draw, the rest drawn after it, so the first :data:`CALIBRATION_BOXES` do not depend on how many more)."""
    pool = [k for k, q in enumerate(qs) if q.kind == kind]
    rng = np.random.default_rng(seed + 7)
    first = rng.choice(pool, min(CALIBRATION_BOXES, len(pool)), replace=False).tolist()
    more = LOOSE_CALIBRATION_BOXES - len(first) if kind == "loose" else 0
    rest = sorted(set(pool) - set(first))
    extra = rng.choice(rest, min(more, len(rest)), replace=False).tolist() if more > 0 and rest else []
    return sorted(first) + sorted(extra)


def _from_pixels(dataset: Dataset, qs: list, rows: list[int]) -> dict[int, list]:
    """Row → candidates from what GrabCut finds inside that row's box (:func:`curate.audit.evidence.object_boxes`),
    from the image rather than from the box's geometry. Each image decoded once."""
    from concurrent.futures import ThreadPoolExecutor

    from curate.audit.evidence import MAX_SIDE, object_boxes
    from curate.runtime.env import workers
    from curate.vision.foreground import read_image

    by_image: dict[int, list[int]] = {}
    for k in rows:
        by_image.setdefault(qs[k].image, []).append(k)

    def one_image(i: int) -> dict[int, list]:
        bgr = read_image(dataset.images[i].path, max_side=MAX_SIDE)
        return {} if bgr is None else {k: object_boxes(bgr, np.asarray(qs[k].xyxy, float)) for k in by_image[i]}

    # images on every core: OpenCV's decode and GrabCut release the GIL, and GrabCut seeds its own thread's RNG
    out: dict[int, list] = {}
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        for found in pool.map(one_image, by_image):
            out.update(found)
    return out


def _member_candidates(qs, boxes, classes, nc: int, targets: dict, seed: int) -> dict[int, tuple]:
    """Row of each searched group box (the flagged ones, and a sample of the box model's merges for
    calibration) → (its candidate member sets, as lists of the rows (appended to ``qs``) of their boxes; the class's
    typical size in the image; its median size over the dataset; the rows of its members slid along its sides,
    :func:`members.slid_members`, whose sets :func:`_member_tables` chooses). A candidate's context leaves out what
    its group box replaces (the box itself, or a merge's members)."""
    from curate.audit import members
    from curate.audit.boxmodel.corruptions import Query

    searched = sorted({k for (_, _, check), k in targets.items() if check == GROUP_CHECK})
    if not searched:
        return {}
    pool = [k for k, q in enumerate(qs) if q.kind == "grouped"]
    searched += members.calibration_sample(pool, members.CALIBRATION_MERGES, seed)
    sizes = members.class_sizes(boxes, classes, nc)
    out: dict[int, tuple[list[list[int]], tuple, tuple, list[int]]] = {}
    for k in searched:
        q = qs[k]
        typical = members.typical_size(boxes[q.image], classes[q.image], q.exclude, q.cls, sizes[q.cls])
        row_of: dict[tuple, int] = {}
        sets = []
        for layout in members.candidate_sets(np.asarray(q.xyxy, float), typical, sizes[q.cls]):
            rows = []
            for box in layout:
                key = tuple(np.round(box, 6))
                if key not in row_of:
                    row_of[key] = len(qs)
                    qs.append(Query(q.image, np.clip(box, 0.0, 1.0), q.cls, "candidate", q.exclude))
                rows.append(row_of[key])
            sets.append(rows)
        slid = []  # members slid along the sides: their sets are chosen once the judge has scored them
        for box in members.slid_members(np.asarray(q.xyxy, float), typical):
            key = tuple(np.round(box, 6))
            if key not in row_of:
                row_of[key] = len(qs)
                qs.append(Query(q.image, np.clip(box, 0.0, 1.0), q.cls, "candidate", q.exclude))
            slid.append(row_of[key])
        out[k] = (sets, typical, sizes[q.cls], sorted(set(slid)))
    return out


def _judges(qs, X, fold_of_row, wrong: tuple[str, ...], seed: int) -> dict:
    """Fold → a classifier of real boxes against the corrupted ones of the ``wrong`` kinds, fitted on the other
    folds' images."""
    from curate.runtime.env import fit_side_by_side, fits_at_once, no_all_nan_columns

    rows = np.array([k for k, q in enumerate(qs) if q.kind in wrong or q.kind == "ok" and q.line is not None], int)
    y = np.array([qs[k].kind == "ok" for k in rows])
    fold = fold_of_row[rows]
    folds = [f for f in range(FOLDS) if len(np.unique(y[fold != f])) == 2 and (fold != f).sum() >= MIN_ROWS]
    # a feature NaN in every row of one fold's training images (none of them has the boxes it needs) is
    # NaN in all that fit's rows, though not in X's: scikit-learn 1.9 raises on it (no_all_nan_columns)
    fits = [
        lambda f=f: _classifier(seed + 10 * f).fit(no_all_nan_columns(X[rows[fold != f]]), y[fold != f]) for f in folds
    ]
    # each fit holds its rows as float32 and float64 copies: fewer at once on a large dataset, the same judges
    most_rows = max(((fold != f).sum() for f in folds), default=0)
    return dict(zip(folds, fit_side_by_side(fits, at_once=fits_at_once(len(fits), 12 * X.shape[1] * most_rows))))


def _chances(judges: dict, X: np.ndarray, fold_of_row: np.ndarray, rows: dict[int, list[int]]) -> dict[int, np.ndarray]:
    """Searched row ``k`` → the judge of its fold's P(real box) of each of ``rows[k]`` (none where its fold has no
    judge): one prediction per fold for all its rows, not one per searched box (a prediction's cost is mostly per
    call; each row's value is the same either way)."""
    by_fold: dict[int, list[int]] = {}
    for k in rows:
        if int(fold_of_row[k]) in judges:
            by_fold.setdefault(int(fold_of_row[k]), []).append(k)
    found = {}
    for f, ks in by_fold.items():
        p = judges[f].predict_proba(X[np.concatenate([rows[k] for k in ks])])[:, 1]
        found.update(zip(ks, np.split(p, np.cumsum([len(rows[k]) for k in ks])[:-1])))
    return {k: found[k] for k in rows if k in found}  # in the order of ``rows`` (the calibration's folds follow it)


def _search_members(qs, boxes, X, fold_of_row, targets, groups, seed) -> dict:
    """Of each group box's candidate member sets, the one likeliest right: each member judged by a classifier of
    real against corrupted boxes (every kind: a member around two objects looks grouped, one cutting an object
    shifted), each set described by its members' chances, count, size and overlap (:func:`members.set_features`),
    and the sets scored by a classifier of right against wrong sets learnt on the box model's merges (members
    known; :func:`members.learnt_picks`). None where the pick's members look less like real boxes than the group
    box itself (a right box flagged by mistake); ``p_right`` a logistic fit, on the merges' held-out picks, of right
    on the pick's score.

    Why a learnt pick and not the members' mean chance: on the seed-0 planted groups the mean picked a wrong set
    for 10 of 49 food-ingredients and 13 of 65 bccd-blood-cells groups, and a right one held too little margin over
    the group box for ``p_right`` to reach 0.5 for 8 and 11 more (benchmarks/README.md, Session 18, branch `groups`)."""
    from curate.audit.members import SET_FEATURES, Members

    tables = _member_tables(qs, X, fold_of_row, groups, seed)
    picks = _member_picks(qs, boxes, tables, targets, seed)
    margin = SET_FEATURES.index("margin")  # the members' mean chance minus the group box's
    return {key: Members(tuple(tuple(float(v) for v in m) for m in tables[targets[key]][1][i]), p)
            for key, (i, p) in picks.items() if tables[targets[key]][0][i, margin] > 0}  # fmt: skip


def _member_tables(qs, X, fold_of_row, groups, seed) -> dict[int, tuple[np.ndarray, list]]:
    """Row of each searched group box → (its candidate sets described by :func:`members.set_features`, the sets'
    member boxes): each member's chance of being a real box from the judge of its fold (real against loose, shifted
    and grouped boxes); the layouts' sets, then the side cover sets of its slid members
    (:func:`members.side_cover_sets`). Groups in a fold without a judge are left out."""
    from curate.audit.members import set_features, side_cover_sets

    judges = _judges(qs, X, fold_of_row, ("loose", "shifted", "grouped"), seed)
    spans = {}  # a group's candidates are adjacent rows: its box's row, then lo..hi
    for k, (sets, _, _, slid) in groups.items():
        lo, hi = min(min(s) for s in [*sets, slid] if s), max(max(s) for s in [*sets, slid] if s) + 1
        spans[k] = (lo, [k, *range(lo, hi)])
    chances = _chances(judges, X, fold_of_row, {k: rows for k, (_, rows) in spans.items()})
    tables = {}
    for k, (sets, typical, class_size, slid) in groups.items():
        if k not in chances:
            continue
        lo, p_ok = spans[k][0], chances[k]
        group = np.asarray(qs[k].xyxy, float)
        # the side cover sets of the slid members, by the judge's chances; none that repeats a layout
        known = {frozenset(s) for s in sets}
        cover = [[slid[i] for i in c] for c in side_cover_sets(
            group, np.array([qs[r].xyxy for r in slid], float), p_ok[[r - lo + 1 for r in slid]])]  # fmt: skip
        sets = sets + [c for c in cover if frozenset(c) not in known]
        members = [[np.asarray(qs[r].xyxy, float) for r in s] for s in sets]
        rows = [set_features(group, m, p_ok[[r - lo + 1 for r in s]], float(p_ok[0]), typical, class_size)
                for m, s in zip(members, sets)]  # fmt: skip
        tables[k] = (np.array(rows, float), members)
    return tables


def _member_picks(qs, boxes, tables, targets, seed) -> dict[tuple, tuple[int, float]]:
    """Each flagged group's (key in ``targets``) learnt pick among its sets in ``tables`` and the pick's
    ``p_right``: {key: (set index, p_right)}; empty where too few calibration merges got a pick."""
    from curate.audit.members import is_right, learnt_picks
    from curate.learn.boosting import platt

    cal = [k for k in tables if qs[k].kind == "grouped"]
    if len(cal) < MIN_ROWS:
        return {}
    truth = {k: list(boxes[qs[k].image][list(qs[k].exclude)]) for k in cal}
    labels = {k: np.array([is_right(m, truth[k]) for m in tables[k][1]], int) for k in cal}
    picks = learnt_picks(tables, cal, labels, lambda: _classifier(seed))
    cal = [k for k in cal if k in picks]
    if len(cal) < MIN_ROWS:
        return {}
    right = np.array([is_right(tables[k][1][picks[k][0]], truth[k]) for k in cal], float)
    a, b = platt(np.array([picks[k][1] for k in cal]), right)
    log.info("refine grouped: calibration %.0f %% right (%d merges)", 100 * right.mean(), len(cal))
    return {key: (picks[k][0], float(1.0 / (1.0 + np.exp(-(a * picks[k][1] + b)))))
            for key, k in targets.items() if key[2] == GROUP_CHECK and k in picks}  # fmt: skip


def within_row_budget(qs: list, keep_images: set[int], seed: int) -> list:
    """``qs`` as they are up to :data:`MAX_ROWS`; above it, the rows of ``keep_images`` (the searched boxes') and of
    a seeded sample of the other images, added in a random order until the rows reach the budget."""
    if len(qs) <= MAX_ROWS:
        return qs
    per_image = Counter(q.image for q in qs)
    chosen = set(keep_images)
    total = sum(per_image[i] for i in chosen)
    for i in np.random.default_rng(seed + 11).permutation(sorted(per_image)):
        if total >= MAX_ROWS:
            break
        if int(i) not in chosen:
            chosen.add(int(i))
            total += per_image[int(i)]
    return [q for q in qs if q.image in chosen]


def _original(qs: list, boxes: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    return np.array([boxes[qs[k].image][qs[k].exclude[0]] for k in rows], float)


def _search(kind, qs, boxes, classes, X, fold_of_row, targets, candidates, from_image, seed) -> dict:
    """Of the box and its candidates, the one likeliest right, and ``p_right``: its held-out chance of being right,
    learnt from corrupted boxes of ``kind`` searched the same way. Shifted: the candidate a classifier of real
    against corrupted boxes finds most like a real box, ``p_right`` from how much it beat the box itself. Loose:
    the candidate a classifier of right against wrong candidates rates best (:mod:`curate.audit.loose`), with its
    own held-out ``p_right``; the judge's favourite only where no such classifier could be learnt (too few
    calibration boxes). The judge answers "does it look real?", and a part of the object, or a box a little too
    small, looks real too: where both picks would be proposed, the judge's is right less often on every pool
    dataset and seed measured (benchmarks/README.md, Session 20, branch `props3`). A pick is proposed only at its
    held-out chance ≥ :data:`MIN_P_RIGHT`."""

    # a shrunk candidate that cuts the object looks like a shifted box (the object goes on past an edge)
    judges = _judges(qs, X, fold_of_row, ("loose", "shifted") if kind == "loose" else ("shifted",), seed)
    chances = _chances(judges, X, fold_of_row, candidates)
    cal = [k for k in chances if qs[k].kind == kind]
    if len(cal) < MIN_ROWS:
        return {}
    chosen = _margin_picks(qs, boxes, candidates, chances, from_image, cal, kind)
    if kind == "loose":
        chosen = _loose_choice(chosen, _loose_picks(qs, boxes, classes, candidates, chances, from_image, cal, seed))
    out = {}
    for key, k in targets.items():
        if KIND_OF_CHECK.get(key[2]) != kind or k not in chosen or chosen[k][0] == 0:
            continue
        i, p = chosen[k]
        out[key] = Refined(tuple(float(v) for v in qs[candidates[k][i]].xyxy), p)
    return out


def _margin_picks(qs, boxes, candidates, chances, from_image, cal, kind) -> dict[int, tuple[int, float]]:
    """Each searched box's pick (its candidate index, 0 the box itself) by the judge's chance, and ``p_right`` from
    how much the pick beat the box and whether it came from the image (the object GrabCut found) rather than from
    the box's geometry: the two are right at different rates on a dataset's corrupted boxes."""
    picks = {}
    for k, p_ok in chances.items():
        best = int(np.argmax(p_ok))
        picks[k] = (best, [float(p_ok[best] - p_ok[0]), float(candidates[k][best] in from_image)])
    orig = _original(qs, boxes, np.array(cal))
    ious = np.array([iou_one(tuple(qs[candidates[k][picks[k][0]]].xyxy), tuple(o)) for k, o in zip(cal, orig)])
    right = (ious >= RIGHT_IOU).astype(float)
    log.info("refine %s: calibration median IoU %.2f, %.0f %% right (%d boxes)", kind, np.median(ious),
             100 * right.mean(), len(cal))  # fmt: skip
    p_right = _calibration(np.array([picks[k][1] for k in cal]), right)
    return {k: (best, float(p_right(np.array([f]))[0])) for k, (best, f) in picks.items()}


def _loose_choice(favourite: dict, learnt: dict) -> dict[int, tuple[int, float]]:
    """Each loose box's pick and ``p_right``: the learnt pick's wherever one was learnt, even where the judge's
    favourite would pass too (it is a part of the object or a little too small more often); the favourite's where
    none was (too few calibration boxes: :func:`curate.audit.loose.learnt_picks` returns none)."""
    return {**favourite, **learnt}


def _loose_picks(qs, boxes, classes, candidates, chances, from_image, cal, seed) -> dict[int, tuple[int, float]]:
    """Each searched loose box's pick and ``p_right`` by :func:`curate.audit.loose.learnt_picks`, its candidates
    described against their scene (:func:`curate.audit.loose.describe`: the image's boxes and their ``classes``)."""
    from curate.audit.loose import describe, learnt_picks
    from curate.audit.members import class_sizes

    sizes = class_sizes(boxes, classes, max(q.cls for q in qs) + 1)
    tables, right = {}, {}
    for k, p_ok in chances.items():
        q, mine = qs[k], candidates[k]
        cands = np.array([qs[r].xyxy for r in mine], float)
        tables[k] = describe(cands, p_ok, np.array([r in from_image for r in mine]), boxes[q.image],
                             classes[q.image], q.exclude, q.cls, sizes[q.cls])  # fmt: skip
    orig = _original(qs, boxes, np.array(cal))
    for k, o in zip(cal, orig):
        right[k] = np.array([iou_one(tuple(qs[r].xyxy), tuple(o)) >= RIGHT_IOU for r in candidates[k]], int)
    return learnt_picks(tables, cal, right, lambda: _classifier(seed), MIN_ROWS)


def _calibration(features: np.ndarray, right: np.ndarray):
    """``p_right`` as a function of a pick's features (how much it beat the box, whether it came from the image): a
    logistic fit on the calibration boxes (an isotonic one on 150 boxes put steps of 1.0 in its tail). Where no
    calibration pick came from the image (every shifted search), the margin's one-feature fit as before; where some
    did but every pick was wrong, or every one right, that share."""
    from curate.learn.boosting import platt

    if features[:, 1].min() == features[:, 1].max():
        a, b = platt(features[:, 0], right)
        return lambda x: 1.0 / (1.0 + np.exp(-(a * np.asarray(x, float)[:, 0] + b)))
    if right.min() == right.max():
        return lambda x: np.full(len(x), float(right.mean()))
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1.0).fit(features, right)  # the same objective as platt's, on two features
    return lambda x: fit.predict_proba(np.asarray(x, float))[:, 1]
