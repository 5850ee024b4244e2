"""class_inconsistent: the box's crop looks like another class (a swapped label).

The dataset teaches its own classifier: appearance features of every crop (:mod:`curate.vision.crops`: colour,
texture, size), where the dataset's crops are ones a pretrained ImageNet backbone knows also the crop's embedding
(option ``embeddings``, ``auto`` by default: :mod:`curate.vision.embed`, its first principal components and the
classes of its nearest boxes in other images; :func:`embeddings_help`); where it does not, option ``own_crops``
(``auto`` by default) the class probabilities of the same body's last blocks fine-tuned on the dataset's own crops,
out of fold by image (:mod:`curate.vision.owncrops`); plus image context — which other classes the image holds
(leave-one-out over the box itself) and how much the crop resembles the image's other boxes of each class (a swapped
box usually sits among correctly labelled siblings of its true class). Extremely randomized trees give out-of-fold
probabilities (K folds grouped by image, so no box is scored by a model that saw it), and their probability of the
box's own label (its self-confidence) ranks the boxes. Where the trees name few of the labels
(:data:`RESTACK_BELOW_ACCURACY`: classes of a handful of small boxes each), the self-confidence is near 0 for every
box of a class they cannot learn, right or swapped; a second stage re-reads their probabilities
(:func:`restacked_probs`): a right box of such a class spreads its probability as the class's other boxes do, a
swapped one as its true class's boxes do. The score is then the mean of the two views' calibrated probabilities.
There the trees are also grown 8 times larger (:func:`more_trees`): a share of 200 votes was too coarse a signal
where a label gets a handful of them.

The score is the probability that the label is a real swap (:func:`swap_probability`), calibrated per dataset on
synthetic swaps: a box's features never include its own label, so the trees' out-of-fold probability of any
other class is exactly the self-confidence the box would have if it had been swapped to that class. Compared
with the self-confidence of the labels as they are (a mixture of right labels and an assumed
:data:`defaults.SWAP_ERROR_PRIOR` of swaps), that gives the probability at the same prior as the box model's
kinds, so the scores of both rank together in the worst-first list. A dataset the trees cannot learn (31
traffic-sign classes of ~10 boxes each) gets scores near the prior: a cap on the share flagged (its least
typical 5 % of boxes at 0.5–1.0) put right boxes there above every planted error of every kind. Boxes of a class
too rare to learn are judged apart, by how much they look like a common class (:func:`rare_swap_probability`).

When every box of a class in one image is flagged, the score is discounted below the threshold
(:func:`consistent_groups`): the annotator labelled them alike, so the model more likely meets a new look of
the class (a shelf of one product) than a swapped label. On food-ingredients (3 seeds), with the logistic
regression this check used before the trees, that raised the planted-swap AP from 0.74 to 0.85 and cut the
check's false flags from 1.26 to 0.78 per 100 clean boxes.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.audit.shared import CropEmbeddings, CropFeatures
from curate.core import defaults
from curate.core.findings import Finding
from curate.learn.isotonic import error_probability
from curate.runtime.env import workers

NAME = "class_inconsistent"
FOLDS = 5  # out-of-fold K (grouped by image)
MIN_CLASS_INSTANCES = 5  # a class with fewer boxes is too rare to learn (rare_swap_probability judges them)
MIN_CLASS_IMAGES = 3  # a class seen in fewer images can't be judged out-of-fold by image (its only image is held out)
# boxes labelled with rare classes are judged by how much they look like a common class (rare_swap_probability) only
# where at least this many of them can be compared with the synthetic swaps (fewer: each stays "too rare to judge")
MIN_RARE_BOXES = 3
FOREST_TREES = 200  # extra trees per fold (100: swapped AP −0.03 on food; 300: +0.01 for 1.5× the time)
FOREST_CHUNK = 25  # trees grown (and held in memory) at a time
# where the trees learn little (the second stage's gate, RESTACK_BELOW_ACCURACY), this many trees per fold in all
# (more_trees): the 200 trees' own randomness was a large share of the score there (benchmarks/README.md, session 23)
FOREST_TREES_UNLEARNT = 1600
# ... fewer where the boxes are many: the trees grown past FOREST_TREES times the boxes they are grown on stay under
# this (1,600 trees up to 2,000 boxes: traffic-signs-ro 491, construction-ppe 1,457; 200 from 16,000 boxes), so a
# large dataset the trees learn little of pays at most about what the 200 trees cost on 16,000 boxes
UNLEARNT_TREE_BOXES = 1600 * 2000
# a step of the calibration holds boxes of different self-confidence: this much of the raw score breaks the tie
RAW_TIE_BREAK = 1e-3
CONSISTENT_FACTOR = 0.19  # score factor when every box of the class in the image is flagged alike (< 0.3 after)
# option `embeddings` (--config class_inconsistent: {embeddings: true | false | auto}): the pretrained crop
# embeddings (curate.vision.embed) join the trees' features as these two blocks; `auto` adds them where the
# backbone knows the dataset's crops (embeddings_help). Always on they raised swapped AP on food, epicureai and bccd
# but lowered traffic-signs-ro's and construction-ppe's (benchmarks/README.md, issue #22)
EMBEDDINGS_DEFAULT: bool | str = "auto"
EMBEDDINGS_MODES = (True, False, "auto")
EMBED_COMPONENTS = 32  # their first principal components
KNN_NEIGHBOURS = 10  # and the class shares among each box's most similar boxes of other images
# `auto`: the embeddings are used where their nearest neighbours name at least this share of boxes' classes
# (pool, seed 0: traffic-signs-ro 0.42, construction-ppe 0.59 | football 0.84, food 0.85, epicureai 0.93, bccd 0.96;
# any level in between makes the same choices)
EMBED_MIN_KNN_ACCURACY = 0.75
# where the trees name the label of fewer than this share of the judged boxes (out of fold), their probabilities are
# re-read by a second stage (restacked_probs). Pool, seeds 0-2: traffic-signs-ro 0.53-0.57, construction-ppe 0.71 |
# football 0.88, food 0.91-0.92, epicureai 0.94, bccd 0.96; any level in between makes the same choices
RESTACK_BELOW_ACCURACY = 0.8
RESTACK_C = 0.1  # the second stage's inverse regularisation (0.03 / 0.3: within noise on traffic / construction)
RESTACK_FLOOR = 1e-3  # added to the trees' probabilities before their logarithm (a tree's vote is 1/200)
# above this many boxes the embeddings are skipped (hand-made features only): ~7 s per 1,000 crops on 2 cores,
# and 5 KB a box held (issue #25's 100,000 images hold ~250,000 boxes: 30 min and 1.3 GB)
EMBED_MAX_BOXES = 20_000
# option `own_crops` (--config class_inconsistent: {own_crops: true | false | auto}): the out-of-fold class
# probabilities of a crop classifier fine-tuned on the dataset's own crops (curate.vision.owncrops) join the trees'
# features; `auto` adds them where the pretrained embeddings do not (embeddings_help is false: the backbone does not
# know the crops), the datasets the trees learn least
OWN_CROPS_DEFAULT: bool | str = "auto"
OWN_CROPS_MODES = (True, False, "auto")


def embedding_components(E: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """The first ``n`` principal components of the (L2-normalised) embeddings: 1,280 columns would drown the
    hand-made ones in the trees' random feature draws (``max_features="sqrt"``)."""
    from sklearn.decomposition import PCA

    n = min(n, E.shape[1], max(1, len(E) - 1))
    return PCA(n_components=n, svd_solver="randomized", random_state=seed).fit_transform(E).astype(np.float32)


def knn_votes(E: np.ndarray, y: np.ndarray, groups: np.ndarray, num_classes: int, k: int) -> np.ndarray:
    """(n, num_classes) share of each class among the ``k`` most cosine-similar boxes of OTHER images.

    Why other images: the same rule as the trees' folds (grouped by image), so a box's own copy or its
    siblings never vote for its label. Why as features and not averaged into the trees' probabilities: the
    trees learn where the vote is worth trusting (a class whose look the backbone knows) and where not."""
    out = np.zeros((len(y), num_classes), np.float32)
    k = min(k, len(y) - 1)
    if k < 1:
        return out
    rows = max(1, 2**22 // len(y))  # a block of similarities holds at most 4 M floats (16 MB)
    for start in range(0, len(y), rows):
        sims = E[start : start + rows] @ E.T
        sims[groups[start : start + rows, None] == groups[None, :]] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        ok = np.isfinite(np.take_along_axis(sims, top, axis=1))
        for c in range(num_classes):
            out[start : start + rows, c] = ((y[top] == c) & ok).sum(1)
    return out / np.maximum(out.sum(1, keepdims=True), 1)


def embedding_votes(
    ctx: AuditContext, y: np.ndarray, groups: np.ndarray, num_classes: int, *, required: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """The judged boxes' crop embeddings and their :func:`knn_votes` (what ``auto`` decides by, and one of the two
    blocks of features; the other, :func:`embedding_components`, is made only where they are used).

    Without the backbone's weights: a one-line error where the user asked for them (``required``), else None
    (the hand-made features alone, as before the option existed)."""
    from curate.vision.embed import MissingWeights

    try:
        per_image = ctx.use(CropEmbeddings).get(ctx)
    except MissingWeights:
        if required:
            raise
        return None
    E = np.vstack([e for e, record in zip(per_image, ctx.dataset.images) if record.labels])
    return E, knn_votes(E, y, groups, num_classes, KNN_NEIGHBOURS)


def embeddings_wanted(ctx: AuditContext) -> bool:
    """Whether this run looks at the crop embeddings at all: not ``--fast`` (the check is skipped), option
    ``embeddings`` not ``false``, and at most :data:`EMBED_MAX_BOXES` boxes (``auto`` then decides by
    :func:`embeddings_help`). Where this holds the runner starts them in a child process before the first check
    (:class:`~curate.audit.shared.CropEmbeddings`)."""
    return (
        not ctx.fast
        and ctx.param(NAME, "embeddings", EMBEDDINGS_DEFAULT) is not False
        and ctx.dataset.num_boxes <= EMBED_MAX_BOXES
    )


def backbone_knows(ctx: AuditContext) -> bool | None:
    """:func:`embeddings_help` of this dataset's boxes, as :func:`run` decides it (the same boxes judged, the same
    neighbours); None where it is not looked at: one class (nothing to name), ``--fast``, option ``embeddings``
    off, more than :data:`EMBED_MAX_BOXES` boxes, no backbone weights.

    For the box model's own-crop columns (:mod:`curate.audit.boxmodel.owncrop_features`), which run before this
    check: it starts the embeddings' child where the runner did not (an audit without this check), so they are
    made once, in a child, and read again here by :func:`run`."""
    ds = ctx.dataset
    y = np.array([lb.class_id for _, lb in ds.boxes()], int)
    if len(np.unique(y)) < 2 or not embeddings_wanted(ctx):
        return None
    num_classes = max(len(ds.names), int(y.max()) + 1)
    groups = np.array([gi for gi, record in enumerate(ds.images) for _ in record.labels])
    rare = _class_counts(ds, y, num_classes)[2][y]
    ctx.use(CropEmbeddings).start(ctx)
    embedded = embedding_votes(ctx, y, groups, num_classes, required=False)
    return None if embedded is None else embeddings_help(embedded[1], y, ~rare)


def own_crop_probs(ctx: AuditContext, y: np.ndarray, groups: np.ndarray, num_classes: int) -> np.ndarray:
    """(n, num_classes) out-of-fold class probabilities of the judged boxes from a crop classifier trained on the
    dataset's own crops (:func:`curate.vision.owncrops.out_of_fold_probs`), in a child process where one can start
    (torch's memory is given back when it ends, as :class:`~curate.audit.shared.CropEmbeddings`), else here.

    Why as features and not instead of the trees: as the kNN votes, the trees learn which classes its probabilities
    name well. They hold no label of the box (its image was in none of the network's training folds), so the
    synthetic swaps of :func:`swap_probability` stay exact. Cached on disk (:func:`curate.vision.owncrops.probs_key`):
    a re-audit of unchanged data does not train again; any label edit does."""
    from curate.io import cache
    from curate.vision import owncrops

    items = [(r.path, np.array([lb.xyxy for lb in r.labels], np.float64)) for r in ctx.dataset.images if r.labels]
    key = owncrops.probs_key(items, y, groups, num_classes, seed=ctx.seed)
    probs = cache.load_array("owncrops", key)
    if probs is None or probs.shape != (len(y), num_classes):
        probs = _trained_own_crop_probs(items, y, groups, num_classes, seed=ctx.seed)
        cache.save_array("owncrops", key, probs)
    return probs


def _trained_own_crop_probs(
    items: list, y: np.ndarray, groups: np.ndarray, num_classes: int, *, seed: int
) -> np.ndarray:
    """:func:`curate.vision.owncrops.out_of_fold_probs` as float32, in a child process where one can start."""
    from curate.runtime import worker
    from curate.vision import owncrops

    func = f"{owncrops.__name__}:out_of_fold_probs"
    job = worker.try_call(worker.try_spawn(owncrops.__name__), func, items, y, groups, num_classes, seed=seed)
    if job is not None:
        try:
            return job.result().astype(np.float32)
        except worker.WorkerError:
            import os

            if os.environ.get("CURATE_DEBUG"):
                raise
    return owncrops.out_of_fold_probs(items, y, groups, num_classes, seed=seed).astype(np.float32)


def knn_accuracy(votes: np.ndarray, y: np.ndarray, judged: np.ndarray) -> float:
    """The share of judged boxes whose label is the class most voted among their nearest boxes of other images
    (:func:`knn_votes`): how often the pretrained backbone alone names a box's class, leaving its image out."""
    if not judged.any():
        return 0.0
    return float((votes[judged].argmax(axis=1) == y[judged]).mean())


def embeddings_help(votes: np.ndarray, y: np.ndarray, judged: np.ndarray) -> bool:
    """Whether this dataset's crops are ones the pretrained backbone knows: its leave-image-out nearest neighbours
    name the class of at least :data:`EMBED_MIN_KNN_ACCURACY` of the judged boxes (:func:`knn_accuracy`).

    Why decided per dataset: the backbone knows some looks and not others. Where it does (food, cells, players:
    0.84-0.96) its two blocks raised the swapped AP or left it level; on ~21 px traffic signs (0.42) and on
    construction-ppe (0.59) they lowered it, and the trees did not learn to ignore them. Why this and not which
    feature set separates the check's own synthetic swaps better (fitting both): that choice went the wrong way on
    the two small datasets, cost a second fit, and picked the hand-made features on seeds where the embeddings
    helped (benchmarks/README.md, issue #22, session 18)."""
    return knn_accuracy(votes, y, judged) >= EMBED_MIN_KNN_ACCURACY


def context_features(appearance: np.ndarray, classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Per box: other classes present in its image (leave-one-out) and max cosine similarity to them.

    ``appearance`` is one image's (n, D) standardized features, ``classes`` their labels.
    """
    n = len(classes)
    present = np.zeros((n, num_classes), np.float32)
    sim = np.zeros((n, num_classes), np.float32)
    if n < 2:
        return np.hstack([present, sim])
    unit = appearance / np.maximum(np.linalg.norm(appearance, axis=1, keepdims=True), 1e-6)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    for k in np.unique(classes):
        cols = classes == k
        present[:, k] = cols.sum() - (classes == k)  # count of OTHER boxes of class k
        best = cos[:, cols].max(axis=1)
        sim[:, k] = np.where(np.isfinite(best), (best + 1) / 2, 0.0)
    present = np.minimum(present, 3) / 3
    return np.hstack([present, sim])


def out_of_fold_probs(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, num_classes: int, *, seed: int, chunks: range | None = None
) -> np.ndarray:
    """(n, num_classes) probabilities, each box predicted by a forest trained on other images (the tree chunks
    ``chunks`` of :func:`forest_probs`, its FOREST_TREES by default).

    One fold after another, each fold's tree chunks side by side (:func:`forest_probs`' ``pool``): the folds side
    by side, one thread each, left a core idle while the last of the five folds grew (on two cores), and held
    two folds' training rows at once."""
    from sklearn.model_selection import GroupKFold

    probs = np.full((len(y), num_classes), 1.0 / num_classes)
    folds = min(FOLDS, len(np.unique(groups)))
    if folds < 2:
        return probs
    # the trees are grown without the GIL (and use no BLAS): a thread per core
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
            if len(np.unique(y[train])) < 2:
                continue
            probs[test] = forest_probs(X[train], y[train], X[test], num_classes, seed=seed, pool=pool, chunks=chunks)
    return probs / probs.sum(axis=1, keepdims=True)


def forest_probs(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    num_classes: int,
    *,
    seed: int,
    pool: Executor | None = None,
    chunks: range | None = None,
) -> np.ndarray:
    """Class probabilities of ``X_test`` from extremely randomized trees fitted on (X, y): FOREST_TREES
    trees grown FOREST_CHUNK at a time and their votes summed, so only one chunk is held in memory (one a thread
    with ``pool``: its threads grow the chunks side by side, and the votes are summed in chunk order all the same,
    so the probabilities are the same to the last bit). Chunk ``c`` is drawn with random state ``seed * 1000 + c``
    whatever else is grown, so ``chunks`` (``range(FOREST_TREES // FOREST_CHUNK)`` by default) picks trees of one
    larger forest: two disjoint ranges' probabilities, weighted by their lengths, are the forest of both.

    Why trees: the classes of a food dataset differ by combinations (white *and* grainy *and* in a
    bag), which a linear model of these features cannot draw. Out of fold on food-ingredients with 3 %
    planted swaps (seeds 0, 1), before the consistent-group discount: logistic regression AP 0.75 / 0.77,
    1.37 / 1.11 false flags per 100; 200 extra trees 0.97 / 0.96, 0.09 / 0.23, in the same ~4 s. Why
    chunks: a fully grown tree stores a value per class in every node; 200 of them took 135 MB on food
    (4,761 boxes, 36 classes), a chunk of 25 about 17 MB, and both grow with the boxes and the classes.
    """
    from sklearn.ensemble import ExtraTreesClassifier

    def chunk_votes(chunk: int) -> tuple[np.ndarray, np.ndarray]:
        forest = ExtraTreesClassifier(
            n_estimators=FOREST_CHUNK, max_features="sqrt", n_jobs=1, random_state=seed * 1000 + chunk
        )
        forest.fit(X, y)
        return forest.classes_, forest.predict_proba(X_test)

    chunks = range(FOREST_TREES // FOREST_CHUNK) if chunks is None else chunks
    votes = np.zeros((len(X_test), num_classes))
    for classes, p in (pool.map if pool is not None else map)(chunk_votes, chunks):
        votes[:, classes] += p
    return votes / len(chunks)


def more_trees(
    first: np.ndarray, X: np.ndarray, y: np.ndarray, groups: np.ndarray, num_classes: int, *, seed: int
) -> np.ndarray:
    """:func:`out_of_fold_probs` of up to FOREST_TREES_UNLEARNT trees per fold, given ``first``, those of its first
    FOREST_TREES (the same folds and random states: the trees already grown are not grown again).

    Why, and only where the trees learn little (:data:`RESTACK_BELOW_ACCURACY`): a box's probability of a class is a
    share of votes, in steps of 1 / FOREST_TREES. Where the trees learn the classes, a right box gets most of its
    label's votes and a swapped one almost none, and a few votes more or less move neither. Where they learn little,
    right boxes of the classes they cannot learn and the swaps both get a few votes of their label, and which few is
    the trees' draw: on traffic-signs-ro (seed 0) the check alone ranked the planted swaps at AP 0.36-0.54 over eight
    random states of the same data. The mean of eight runs' probabilities (1,600 trees) raised it there and on
    construction-ppe; on food-ingredients and epicureai it raised the check alone too but lowered the merged list
    (benchmarks/README.md, session 23). On the small datasets the gate opens on, the extra trees cost seconds; on
    many boxes fewer are grown (:data:`UNLEARNT_TREE_BOXES`), none from 16,000."""
    have = FOREST_TREES // FOREST_CHUNK
    want = min(FOREST_TREES_UNLEARNT, UNLEARNT_TREE_BOXES // max(len(y), 1)) // FOREST_CHUNK
    if want <= have:
        return first
    rest = out_of_fold_probs(X, y, groups, num_classes, seed=seed, chunks=range(have, want))
    return (have * first + (want - have) * rest) / want


def trees_accuracy(probs: np.ndarray, y: np.ndarray, judged: np.ndarray) -> float:
    """The share of judged boxes whose label is the trees' most probable class, out of fold: how much they learnt."""
    if not judged.any():
        return 0.0
    return float((probs[judged].argmax(axis=1) == y[judged]).mean())


def restacked_probs(probs: np.ndarray, y: np.ndarray, groups: np.ndarray, num_classes: int) -> np.ndarray:
    """(n, num_classes) class probabilities read off the trees' out-of-fold probabilities by a second stage: a
    multinomial logistic regression on their (standardised) logarithms, out of fold by image as the trees are.

    Why: where the trees cannot learn a class (a speed limit of 5 boxes among 31 classes), every box of it gets
    almost none of its own label's probability, right or swapped, so the self-confidence cannot tell a swap into it
    from its right boxes. But the right boxes of such a class spread their probability alike (a ``Limita 60`` looks
    like ``Limita 30`` at 0.35 and ``Limita 50`` at 0.3), while a box swapped into it keeps its true class's pattern
    (a ``Limita 50`` relabelled as a warning triangle looks like ``Limita 50``). The second stage learns each class's
    pattern, so its probability of the label separates them. Its input holds no label of the box (the trees' are out
    of fold) and it is fitted without the box's image, so the synthetic swaps of :func:`swap_probability` stay exact.
    Used only where the trees learnt little (:data:`RESTACK_BELOW_ACCURACY`): where they learnt the classes it
    lowered the planted swaps' AP (food-ingredients 0.970 -> 0.955, seeds 0-2; benchmarks/README.md, session 22).
    Averaged with the trees' own calibrated probability, not instead of it: traffic-signs-ro learns some classes
    and not others (merged swapped, seeds 0-2: 0.261 main, 0.273 instead, 0.305 averaged).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    X = np.log(probs + RESTACK_FLOOR)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-6)
    out = probs.copy()
    folds = min(FOLDS, len(np.unique(groups)))
    if folds < 2:
        return out
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        if len(np.unique(y[train])) < 2:
            continue
        with warnings.catch_warnings():  # a loose tolerance is enough for a ranking; its warning would reach the user
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression(C=RESTACK_C, max_iter=300, tol=1e-3).fit(X[train], y[train])
        out[test] = 0.0
        out[np.ix_(test, model.classes_)] = model.predict_proba(X[test])
    return out / out.sum(axis=1, keepdims=True)


def swap_probability(probs: np.ndarray, y: np.ndarray, judged: np.ndarray, prior: float) -> np.ndarray:
    """P(the label of each box is a swap), calibrated on synthetic swaps of the same boxes at ``prior``.

    ``probs``: out-of-fold class probabilities; ``y``: the labels; ``judged``: boxes of classes common enough to
    judge (the others score 0). A synthetic swap of box ``i`` to class ``c`` has self-confidence
    ``probs[i, c]`` (the box's features hold no label of its own); each judged box is swapped to every other
    judged class, weighing 1 in all, and :func:`curate.learn.isotonic.error_probability` compares them with the
    labels as they are (a mixture of right ones and ``prior`` swaps). (Odds ``r × prior / (1 − prior)``, which
    treats the labels as all right, read 0.35–0.5 where 14 of 16 construction-ppe boxes were planted swaps.)
    Decreasing in the self-confidence; :data:`RAW_TIE_BREAK` orders boxes within a step.
    """
    n = len(y)
    out = np.zeros(n)
    classes = np.unique(y[judged])
    if len(classes) < 2 or not judged.any():
        return out
    own = probs[np.arange(n), y]
    rows = np.flatnonzero(judged)
    other = probs[np.ix_(rows, classes)]
    is_other = classes[None, :] != y[rows, None]
    weight = np.broadcast_to(1.0 / is_other.sum(axis=1, keepdims=True), other.shape)[is_other]
    p = error_probability(own[rows], other[is_other], prior, synthetic_weight=weight, increasing=False)
    out[rows] = (1.0 - RAW_TIE_BREAK) * p + RAW_TIE_BREAK * (1.0 - own[rows])
    return out


def rare_swap_probability(
    probs: np.ndarray, y: np.ndarray, rare: np.ndarray, prior: float
) -> tuple[np.ndarray, np.ndarray]:
    """P(the label of each box of a rare class is a swap), and which rare boxes were judged.

    Why not :func:`swap_probability`: the trees hardly learn a class from a few boxes, so a right box of a rare class
    gets as little probability of its own label as a swapped one. What tells them apart is the common classes: a
    box of common class C relabelled as rare class R still looks like C (its features hold no label of its own, so
    the trees give C its usual probability), while a right R box looks like none of them. The score is the
    probability of the box's most likely common class, and the synthetic swaps are free again: every box of a
    common class, relabelled to each rare class, would score exactly its own best common probability. Each such
    pair weighs 1 / (classes − 1), the share of a uniformly swapped label that lands in one class (of the classes
    that have boxes), so the rare labels' calibration holds as many swaps as the rare classes would receive at
    ``prior`` (:func:`curate.learn.isotonic.error_probability`, compared with the rare labels as they are).

    Left unjudged (score 0): every rare box where fewer than :data:`MIN_RARE_BOXES` exist or no common class does,
    and a rare class all of whose boxes (two or more) look common, at ≥ 0.5: a swap is a box unlike its class's
    others, as in :func:`consistent_groups`; when the annotator gives the class to common-looking objects every time,
    it is a class the features cannot tell from a common one (a speed limit of another number), not a set of swaps.
    """
    n = len(y)
    out = np.zeros(n)
    judged = np.zeros(n, bool)
    common = np.unique(y[~rare])
    if len(common) == 0 or rare.sum() < MIN_RARE_BOXES:
        return out, judged
    present = len(np.unique(y))
    best = probs[:, common].max(axis=1)
    rows = np.flatnonzero(rare)
    synthetic = best[~rare]
    weight = np.full(len(synthetic), (present - len(common)) / (present - 1))
    p = error_probability(best[rows], synthetic, prior, synthetic_weight=weight, increasing=True)
    out[rows] = (1.0 - RAW_TIE_BREAK) * p + RAW_TIE_BREAK * best[rows]
    judged[rows] = True
    for c in np.unique(y[rows]):
        members = rows[y[rows] == c]
        if len(members) >= 2 and np.all(out[members] >= 0.5):
            out[members], judged[members] = 0.0, False
    return out, judged


def consistent_groups(boxes: list, scores: np.ndarray, rare: np.ndarray) -> dict[int, int]:
    """Boxes whose image holds ≥ 2 boxes of their class, all of them scored ≥ 0.5 (well above the threshold).

    Why: a swapped label is one box that differs from how the annotator labelled its siblings; when every
    box of a class in an image "looks like" another class (a shelf of one pasta brand, seen as chickpeas),
    the labelling is consistent and the model has just not seen this look of the class in the
    other folds. On the unmodified food-ingredients all top-24 flags were such shelves. Returns
    box index → size of its group.
    """
    groups: dict[tuple[str, int], list[int]] = {}
    for i, (record, lb) in enumerate(boxes):
        groups.setdefault((record.rel, lb.class_id), []).append(i)
    out: dict[int, int] = {}
    for (_, cls), idx in groups.items():
        if len(idx) < 2 or rare[idx[0]]:
            continue
        if all(scores[j] >= 0.5 for j in idx):
            out.update({j: len(idx) for j in idx})
    return out


def _class_counts(ds, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: its boxes (``y``: every box's class), the images holding one, and whether it is too rare to
    learn (fewer than :data:`MIN_CLASS_INSTANCES` boxes or :data:`MIN_CLASS_IMAGES` images): what :func:`run` and
    :func:`backbone_knows` judge the same way."""
    counts = np.bincount(y, minlength=num_classes)
    images_of = np.zeros(num_classes, int)
    for record in ds.images:
        for c in {lb.class_id for lb in record.labels}:
            images_of[c] += 1
    return counts, images_of, (counts < MIN_CLASS_INSTANCES) | (images_of < MIN_CLASS_IMAGES)


def skipped(ctx: AuditContext) -> str | None:
    """Crop features: not in ``--fast``."""
    return "--fast" if ctx.fast else None


def run(ctx: AuditContext) -> list[Finding]:
    ds = ctx.dataset
    boxes = [(r, lb) for r, lb in ds.boxes()]
    if not boxes:
        return []
    y = np.array([lb.class_id for _, lb in boxes])
    num_classes = max(len(ds.names), int(y.max()) + 1)
    counts = np.bincount(y, minlength=num_classes)
    if (counts > 0).sum() < 2:
        return [
            Finding(r.split, r.rel, NAME, 0.0, "single class: nothing to swap with", line=lb.line) for r, lb in boxes
        ]

    per_image = ctx.use(CropFeatures).get(ctx)
    A = np.vstack([f for f in per_image if len(f)]).astype(np.float32)
    mu, sd = A.mean(0), A.std(0) + 1e-6
    ctx_rows, groups = [], []
    for gi, (record, feats) in enumerate(zip(ds.images, per_image)):
        if not record.labels:
            continue
        cls = np.array([lb.class_id for lb in record.labels])
        ctx_rows.append(context_features((feats - mu) / sd, cls, num_classes))
        groups += [gi] * len(cls)
    X = np.hstack([A, np.vstack(ctx_rows)])
    groups = np.array(groups)
    counts, images_of, rare_class = _class_counts(ds, y, num_classes)
    rare = rare_class[y]

    mode = ctx.param(NAME, "embeddings", EMBEDDINGS_DEFAULT)
    own = ctx.param(NAME, "own_crops", OWN_CROPS_DEFAULT)
    known = None  # whether the pretrained backbone knows the crops (embeddings_help), where that was looked at
    if embeddings_wanted(ctx):
        embedded = embedding_votes(ctx, y, groups, num_classes, required=mode is True)
        if embedded is not None:
            known = embeddings_help(embedded[1], y, ~rare)
        if embedded is not None and (mode is True or known):
            E, votes = embedded
            X = np.hstack([X, embedding_components(E, EMBED_COMPONENTS, seed=ctx.seed), votes])
    if own is True or (own == "auto" and known is False):
        X = np.hstack([X, own_crop_probs(ctx, y, groups, num_classes)])
    trees = out_of_fold_probs(X, y, groups, num_classes, seed=ctx.seed)
    unlearnt = trees_accuracy(trees, y, ~rare) < RESTACK_BELOW_ACCURACY
    if unlearnt:
        trees = more_trees(trees, X, y, groups, num_classes, seed=ctx.seed)
    probs = trees
    scores = swap_probability(trees, y, ~rare, defaults.SWAP_ERROR_PRIOR)
    if unlearnt:
        # the two views' calibrated probabilities averaged: the trees' own is the better one for the classes they
        # learnt, the second stage's for those they did not, and a dataset holds both
        probs = restacked_probs(trees, y, groups, num_classes)
        scores = (scores + swap_probability(probs, y, ~rare, defaults.SWAP_ERROR_PRIOR)) / 2
    # a rare class is judged by the common classes' look, which the trees' own probabilities give
    rare_scores, rare_judged = rare_swap_probability(trees, y, rare, defaults.SWAP_ERROR_PRIOR)
    scores[rare_judged] = rare_scores[rare_judged]
    probs = np.where(rare_judged[:, None], trees, probs)
    unjudged = rare & ~rare_judged
    consistent = consistent_groups(boxes, scores, unjudged)
    out = []
    for i, (record, lb) in enumerate(boxes):
        label = ds.class_name(lb.class_id)
        p = probs[i].copy()
        p[lb.class_id] = -1
        if rare_judged[i]:  # a swap into a rare class comes from a common one
            p[rare_class] = -1
        k = int(p.argmax())
        score = 0.0 if unjudged[i] else float(scores[i])
        if unjudged[i]:
            msg = (
                f"class '{label}' has {counts[lb.class_id]} boxes in {images_of[lb.class_id]} image(s) "
                f"(< {MIN_CLASS_INSTANCES} boxes or < {MIN_CLASS_IMAGES} images): too rare to judge"
            )
        else:
            msg = (
                f"looks like '{ds.class_name(k)}' (p={probs[i, k]:.2f}), "
                f"labelled '{label}' (p={probs[i, lb.class_id]:.2f})"
            )
            if rare[i]:
                msg += (
                    f", a rare class ({counts[lb.class_id]} boxes in {images_of[lb.class_id]} image(s)): "
                    "judged by how much it looks like a common class"
                )
        if i in consistent:
            score *= CONSISTENT_FACTOR
            msg += (
                f"; but all {consistent[i]} '{label}' boxes of this image look foreign alike: the annotator was "
                "consistent, so more likely a look of the class the model has not learnt than a swapped label"
            )
        data = {
            "suggested": ds.class_name(k),
            "p_label": round(float(probs[i, lb.class_id]), 4),
            "p_suggested": round(float(probs[i, k]), 4),
        }
        out.append(Finding(record.split, record.rel, NAME, score, msg, line=lb.line, data=data))
    return out


class ClassInconsistent(Check):
    names = (NAME,)
    description = "the box's crop looks like another class (a swapped label)"
    kind = "box"
    order = 110
    display = {
        "class_inconsistent": Display(70, "#0d9488", calibrated=True),
    }
    options = {"embeddings": EMBEDDINGS_DEFAULT, "own_crops": OWN_CROPS_DEFAULT}
    choices = {"embeddings": EMBEDDINGS_MODES, "own_crops": OWN_CROPS_MODES}
    needs = (CropFeatures, CropEmbeddings)

    def skipped(self, ctx: AuditContext) -> str | None:
        return skipped(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
