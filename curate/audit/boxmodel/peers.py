"""Features that compare a box with other boxes of its class: its siblings in the same image (a shifted box
straddles two objects of a pile), the class prototype (a box round two objects has halves that each look
more like one object than the whole does), and the nearest boxes of the class in other scenes, real and
synthetic (:func:`scenes` keeps near-duplicate images from matching each other).

All read the box interior of the :mod:`.pixels` context patches (:func:`box_descriptor`, :func:`shape_grids`).
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from curate.audit.boxmodel.corruptions import KINDS, Query
from curate.audit.boxmodel.pixels import B, M, P, _wmean
from curate.core.dataset import Dataset
from curate.runtime.env import workers
from curate.vision.hashing import Pair

SIB_STATS = 7  # descriptor: mean and sd of L, a, b, mean gradient ...
SIB_GRID = 16  # ... and a 4×4 grid of L over the box (zero mean, unit sd)
SIB_NAMES = ("s_n", "s_stat_min", "s_stat_rel", "s_grid_min", "s_grid_rel", "s_both_rel")
SIB_MAX = (
    256  # a box's siblings are at most this many boxes of its class in its image (a fixed sample of a bigger pile)
)
SIB_CHUNK = 256  # query rows whose sibling distances are computed at once (256 × SIB_MAX × 16 numbers: 8 MB)
PROTO_CELLS = 5  # shape grids for the class prototype: 5×5 cells over the box, each half and each quarter of it
PROTO_REGIONS = ("whole", "left", "right", "top", "bottom", "tl", "tr", "bl", "br")
PROTO_CHANNELS = {"L": "", "grad": "_g"}  # channel → suffix of its feature names
PROTO_WIDTH = len(PROTO_CHANNELS) * len(PROTO_REGIONS) * PROTO_CELLS * PROTO_CELLS
PROTO_STEMS = ("c_whole", "c_whole_rel", "c_lr", "c_tb", "c_halves", "c_quads", "c_quads_rel")
PROTO_NAMES = tuple(f"{stem}{suffix}" for suffix in PROTO_CHANNELS.values() for stem in PROTO_STEMS)
NEIGHBOUR_K = 5  # nearest boxes of the class (other scenes) a box's grids are compared with
NEIGHBOUR_CELLS = 4_000_000  # distances computed at once (float64: 32 MB)
NEIGHBOUR_MAX_REFS = 3000  # neighbours are sought among at most this many boxes of a class (per kind) ...
#: ... and among at most NEIGHBOUR_BIG_REFS where more than NEIGHBOUR_FULL_ROWS boxes are described at once: the
#: cost is rows × references, a sixth of the ×16 audit's time (issue #25). 120,000 is above every pool dataset
#: (football-players: 48,983 rows, at most 102,983 in the resize search: ≤ 900 searched boxes × ≤ 60 candidates)
#: and a resize search of ~MAX_ROWS rows (≤ 60,000 + 54,000); ×16 food-ingredients' box model describes 130,176.
NEIGHBOUR_FULL_ROWS = 120_000
NEIGHBOUR_BIG_REFS = 1000
NEIGHBOUR_STEMS = ("n_whole", "n_whole_rel", "n_halves", "n_halves_rel", "n_quads")
NEIGHBOUR_NAMES = tuple(f"{stem}{suffix}" for suffix in PROTO_CHANNELS.values() for stem in NEIGHBOUR_STEMS) + tuple(
    f"n_{kind}{rel}{suffix}" for suffix in PROTO_CHANNELS.values() for kind in KINDS for rel in ("", "_rel")
)


def shape_grids(patches: np.ndarray) -> np.ndarray:
    """N×PROTO_WIDTH: 5×5 grids (zero mean, unit sd) of L and of the gradient over the box, and over each of
    its halves and quarters stretched to the same grid. Two objects side by side in one box give two halves
    that each look like one whole object of the class, where the whole box does not; a 2×2 group, four
    quarters (see :func:`prototype_features`).

    Every grid is a sum of 2×2-pixel cells of the 20×20 box (a 10×10 cell map computed once): the whole box
    sums 2×2 cells per grid cell, a half 2×1 or 1×2, a quarter takes its 5×5 cells as they are.
    """
    n = len(patches)
    inner = patches[:, M : P - M, M : P - M]
    h = PROTO_CELLS  # cells of 2 px in half the box: B = 20 px = 10 cells, so a half pools to 5 × 5 as it is
    w = inner[..., 4]
    wc = w.reshape(n, 2 * h, 2, 2 * h, 2).sum(axis=(2, 4))  # N×10×10 valid weight per 2×2 cell

    def cells(v: np.ndarray) -> np.ndarray:
        return (v * w).reshape(n, 2 * h, 2, 2 * h, 2).sum(axis=(2, 4))

    def pool(m: np.ndarray, ry: int, rx: int) -> np.ndarray:  # sum ry×rx blocks of cells → 5×5
        k = PROTO_CELLS
        return m.reshape(n, k, ry, k, rx).sum(axis=(2, 4)).reshape(n, k * k)

    a, b = slice(0, h), slice(h, 2 * h)
    regions = {  # name → (rows, cols) of the 10×10 cell map, and the block it pools to a 5×5 grid
        "whole": ((slice(None), slice(None)), (2, 2)),
        "left": ((slice(None), a), (2, 1)),
        "right": ((slice(None), b), (2, 1)),
        "top": ((a, slice(None)), (1, 2)),
        "bottom": ((b, slice(None)), (1, 2)),
        "tl": ((a, a), (1, 1)),
        "tr": ((a, b), (1, 1)),
        "bl": ((b, a), (1, 1)),
        "br": ((b, b), (1, 1)),
    }
    sums, weights = [], []
    for ch in PROTO_CHANNELS:
        m = cells(inner[..., 0 if ch == "L" else 3])
        for name in PROTO_REGIONS:
            (rs, cs), (ry, rx) = regions[name]
            sums.append(pool(m[:, rs, cs], ry, rx))
            weights.append(pool(wc[:, rs, cs], ry, rx))
    s, wt = np.stack(sums, axis=1), np.stack(weights, axis=1)  # N×grids×25
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a patch outside the image: an all-NaN grid, kept NaN
        g = np.where(wt > 0, s / np.maximum(wt, 1e-9), np.nan)
        g = (g - np.nanmean(g, axis=2, keepdims=True)) / (np.nanstd(g, axis=2, keepdims=True) + 0.02)
    return g.reshape(n, -1).astype(np.float32)


def _grid_parts(grids: np.ndarray, channel: int) -> dict[str, np.ndarray]:
    """One channel's 5×5 grids of :func:`shape_grids` output, per region (whole, halves, quarters), float64."""
    k = PROTO_CELLS * PROTO_CELLS
    base = channel * len(PROTO_REGIONS) * k
    return {
        name: grids[:, base + i * k : base + (i + 1) * k].astype(np.float64) for i, name in enumerate(PROTO_REGIONS)
    }


def prototype_features(grids: np.ndarray, qs: list[Query], min_boxes: int = 5) -> np.ndarray:
    """Per channel: how far a box's whole-box grid is from its class's mean grid (the prototype, over the
    real boxes; raw and over the class's median), and how far its halves and quarters are, relative to the
    whole (:data:`PROTO_STEMS`). NaN for classes with fewer than ``min_boxes`` real boxes.

    The prototype is an unsupervised class mean (no label beyond the class), like the siblings' descriptors.
    """
    out = np.full((len(qs), len(PROTO_NAMES)), np.nan, np.float32)
    cls = np.array([q.cls for q in qs], int)
    real = np.array([q.kind == "ok" and q.line is not None for q in qs], bool)
    per = len(PROTO_STEMS)
    for j in range(len(PROTO_CHANNELS)):
        for c in np.unique(cls):
            rows = np.flatnonzero(cls == c)
            parts = _grid_parts(grids[rows], j)  # one class's rows: in float64 for every row, they grew with the boxes
            is_ref = real[rows] & ~np.isnan(parts["whole"]).any(axis=1)  # the class's real, decodable boxes
            if is_ref.sum() < min_boxes:
                continue
            proto = parts["whole"][is_ref].mean(axis=0)
            d = {name: np.sqrt(np.mean((g - proto) ** 2, axis=1)) for name, g in parts.items()}
            typical = float(np.median(d["whole"][is_ref])) + 1e-3
            lr, tb = (d["left"] + d["right"]) / 2, (d["top"] + d["bottom"]) / 2
            quads = (d["tl"] + d["tr"] + d["bl"] + d["br"]) / 4
            o = j * per
            out[rows, o + 0] = d["whole"]
            out[rows, o + 1] = d["whole"] / typical
            out[rows, o + 2] = lr - d["whole"]
            out[rows, o + 3] = tb - d["whole"]
            out[rows, o + 4] = np.fmin(lr, tb) / typical
            out[rows, o + 5] = quads - d["whole"]
            out[rows, o + 6] = quads / typical
    return out


def _at_most(idx: np.ndarray, salt: int, most: int) -> np.ndarray:
    """``idx``, or a fixed random ``most`` of them: a class's neighbours come from a sample when it is
    big (the cost is rows × references per class; food-ingredients' largest class is far below the cap)."""
    if len(idx) <= most:
        return idx
    return np.sort(np.random.default_rng(salt).choice(idx, most, replace=False))


def _nearest(g: np.ndarray, ref: np.ndarray, g_scene: np.ndarray, ref_scene: np.ndarray) -> np.ndarray:
    """RMS distance of each row of ``g`` to its NEIGHBOUR_K nearest rows of ``ref`` (mean of their squared
    distances) from another scene: over fewer when fewer are allowed, NaN when none is.

    In blocks of rows, so the distance matrix stays near NEIGHBOUR_CELLS numbers: a one-class dataset of
    20,000 boxes would otherwise need a 40,000 × 20,000 matrix (6 GB). The block's arithmetic is done in place
    (the same operations in the same order, so the same numbers): a new 32 MB array per operation cost five times
    the arithmetic itself in page faults (issue #25)."""
    out = np.full(len(g), np.nan)
    r2 = (ref * ref).sum(axis=1)
    kk = min(NEIGHBOUR_K, len(ref))
    step = max(1, NEIGHBOUR_CELLS // max(len(ref), 1))
    bad_ref = ~np.isfinite(ref).all(axis=1)  # a distance to a row with a NaN is NaN: never a neighbour
    by_scene = np.argsort(ref_scene, kind="stable")
    scene_sorted = ref_scene[by_scene]
    for a in range(0, len(g), step):
        gg = g[a : a + step]
        d2 = np.add((gg * gg).sum(axis=1)[:, None], r2[None, :])
        cross = gg @ ref.T
        cross *= 2.0
        d2 -= cross
        del cross
        np.maximum(d2, 0.0, out=d2)
        d2 /= g.shape[1]
        d2[~np.isfinite(gg).all(axis=1)] = np.inf
        d2[:, bad_ref] = np.inf
        d2[_same_scene(g_scene[a : a + step], scene_sorted, by_scene)] = np.inf
        d2 = np.partition(d2, kk - 1, axis=1)[:, :kk]
        ok = np.isfinite(d2)
        n = ok.sum(axis=1)
        out[a : a + step] = np.where(n > 0, np.sqrt(np.where(ok, d2, 0.0).sum(axis=1) / np.maximum(n, 1)), np.nan)
    return out


def _same_scene(scene: np.ndarray, ref_sorted: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every pair of a row of ``scene`` and a reference of the same scene (``ref_sorted`` the
    references' scenes sorted, ``order`` their columns in that order): the few pairs, not a rows × references
    comparison (a full pass over the distance matrix)."""
    lo = np.searchsorted(ref_sorted, scene, "left")
    count = np.searchsorted(ref_sorted, scene, "right") - lo
    rows = np.repeat(np.arange(len(scene)), count)
    at = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
    return rows, order[at]


def neighbour_features(
    grids: np.ndarray, qs: list[Query], min_boxes: int = 5, scene: np.ndarray | None = None
) -> np.ndarray:
    """Per channel: how far a box's grids are from the NEIGHBOUR_K nearest boxes of its class in other scenes.

    - real boxes (:data:`NEIGHBOUR_STEMS`): its whole-box grid, and its halves and quarters, against their
      whole-box grids. The class mean (:func:`prototype_features`) blurs a class that looks several ways
      (white and brown eggs, a whole pepper and a cut one); the nearest real boxes don't;
    - the synthetic boxes of each kind (``n_<kind>``, and minus the real-box distance): a planted group of
      two eggs looks like the two-egg merges the model made in other images.

    ``scene`` maps an image to its scene (near-duplicate images share one, :func:`scenes`): a box's own scene
    never supplies its neighbours, or a synthetic group would match its own members and a re-exported
    photo its twin. Only class labels are used, like the prototype: no box's own error label.
    """
    out = np.full((len(qs), len(NEIGHBOUR_NAMES)), np.nan, np.float32)
    cls = np.array([q.cls for q in qs], int)
    img = np.array([q.image for q in qs], int)
    img = scene[img] if scene is not None else img
    kinds = np.array([q.kind for q in qs])
    real = (kinds == "ok") & np.array([q.line is not None for q in qs], bool)
    per, per_kind = len(NEIGHBOUR_STEMS), 2 * len(KINDS)
    most = NEIGHBOUR_MAX_REFS if len(qs) <= NEIGHBOUR_FULL_ROWS else min(NEIGHBOUR_MAX_REFS, NEIGHBOUR_BIG_REFS)

    def one_class(j: int, c: int) -> None:
        """The columns of channel ``j`` for the rows of class ``c`` (no other job writes them)."""
        rows = np.flatnonzero(cls == c)
        parts = _grid_parts(grids[rows], j)  # one class's rows (as in prototype_features), at positions in rows
        whole = parts["whole"]
        valid = ~np.isnan(whole).any(axis=1)
        ref = _at_most(rows[real[rows] & valid], c, most)
        if len(ref) < min_boxes:
            return
        d = {
            name: _nearest(parts[name], whole[np.searchsorted(rows, ref)], img[rows], img[ref])
            for name in PROTO_REGIONS
        }
        is_ref = real[rows] & np.isfinite(d["whole"])
        typical = float(np.median(d["whole"][is_ref])) + 1e-3 if is_ref.any() else 1.0
        halves = np.fmin((d["left"] + d["right"]) / 2, (d["top"] + d["bottom"]) / 2)
        quads = (d["tl"] + d["tr"] + d["bl"] + d["br"]) / 4
        o = j * per
        out[rows, o + 0] = d["whole"]
        out[rows, o + 1] = d["whole"] / typical
        out[rows, o + 2] = halves - d["whole"]
        out[rows, o + 3] = halves / typical
        out[rows, o + 4] = quads - d["whole"]
        for n_kind, kind in enumerate(KINDS):
            syn = _at_most(rows[(kinds[rows] == kind) & valid], c, most)
            if len(syn) < min_boxes:
                continue
            dk = _nearest(whole, whole[np.searchsorted(rows, syn)], img[rows], img[syn])
            o = len(PROTO_CHANNELS) * per + j * per_kind + 2 * n_kind
            out[rows, o] = dk
            out[rows, o + 1] = dk - d["whole"]

    # (channel, class) jobs on every core: each is independent (its own rows' columns, its own seeded sample), and
    # most of a job is numpy's partition, sums and comparisons on one core; one after another left a core idle
    jobs = [(j, int(c)) for j in range(len(PROTO_CHANNELS)) for c in np.unique(cls)]
    jobs.sort(key=lambda jc: -int((cls == jc[1]).sum()))  # the largest classes first: the pool ends together
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        for done in [pool.submit(one_class, j, c) for j, c in jobs]:
            done.result()  # an error surfaces here
    return out


def scenes(dataset: Dataset, same_scene: list[Pair] | None = None) -> np.ndarray:
    """Image index → scene id: near-duplicate images (the same shot exported twice) share one.

    ``same_scene``: the audit's near-duplicate pairs at SAME_SCENE_SIMILARITY
    (:class:`curate.audit.shared.NearDuplicatePairs`); searched from the signature cache without them."""
    from curate.vision.hashing import SAME_SCENE_SIMILARITY, groups_of, image_signatures, near_duplicate_pairs

    if same_scene is None:
        same_scene = near_duplicate_pairs(image_signatures(dataset, progress=False), threshold=SAME_SCENE_SIMILARITY)
    index = {r.rel: i for i, r in enumerate(dataset.images)}
    out = np.arange(len(dataset.images))
    for group in groups_of(same_scene):
        ids = [index[r] for r in group if r in index]
        out[ids] = min(ids)
    return out


def box_descriptor(patches: np.ndarray) -> np.ndarray:
    """Cheap appearance of each patch's box interior (N×(SIB_STATS+SIB_GRID)); NaN where nothing is valid."""
    n = len(patches)
    inner = patches[:, M : P - M, M : P - M]
    col, grad, valid = inner[..., :3], inner[..., 3], inner[..., 4]
    mu = _wmean(col, valid[..., None], (1, 2))
    sd = np.sqrt(np.maximum(_wmean((col - np.nan_to_num(mu)[:, None, None, :]) ** 2, valid[..., None], (1, 2)), 0.0))
    g = _wmean(grad, valid, (1, 2))
    c = B // 4
    cells = (inner[..., 0] * valid).reshape(n, 4, c, 4, c).sum(axis=(2, 4)).reshape(n, 16)
    wc = valid.reshape(n, 4, c, 4, c).sum(axis=(2, 4)).reshape(n, 16)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = np.where(wc > 0, cells / np.maximum(wc, 1e-9), np.nan)
        gm = np.nanmean(np.where(np.isnan(grid).all(axis=1, keepdims=True), 0.0, grid), axis=1, keepdims=True)
        grid = np.where(np.isnan(grid), gm, grid)
        grid = (grid - grid.mean(axis=1, keepdims=True)) / (grid.std(axis=1, keepdims=True) + 0.02)
    out = np.concatenate([mu, sd, g[:, None], grid], axis=1).astype(np.float32)
    out[valid.sum(axis=(1, 2)) == 0] = np.nan
    return out


def _sibling_nn(d: np.ndarray) -> float:
    """Median over a sibling set of each member's nearest-other-member distance (``d`` = their pairwise distances)."""
    if len(d) < 2:
        return np.nan
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def _without_one(ps: np.ndarray, pg: np.ndarray) -> np.ndarray | None:
    """:func:`_sibling_nn` of the sibling set less member ``e``, for every ``e`` at once: column ``e`` holds the
    stats', the grid's and their sum's (the values :func:`_sibling_nn` gives on those submatrices).

    Why: every real box and its loose and shifted corruptions leave out one sibling, so a pile of m boxes asked
    for m sets of m - 1, each a copy, a minimum and a median in Python. Without ``e``, member ``i``'s nearest other
    is its nearest unless that is ``e``, then its second nearest: the same numbers, from one sort. None where a
    distance is not finite (then each set is computed as before)."""
    m = len(ps)
    if not (np.isfinite(ps).all() and np.isfinite(pg).all()):
        return None
    out = np.full((3, m), np.nan)
    if m - 1 < 2:
        return out
    others = ~np.eye(m, dtype=bool)
    for t, p in enumerate((ps, pg, ps + pg)):
        d = np.where(others, p, np.inf)
        near = np.argsort(d, axis=1, kind="stable")[:, :2]
        first, second = np.take_along_axis(d, near, axis=1).T
        nearest = np.where(near[None, :, 0] == np.arange(m)[:, None], second[None, :], first[None, :])  # [e, i]
        out[t] = np.median(nearest[others].reshape(m, m - 1), axis=1)
    return out


def _rms_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) root-mean-square distances between the rows of ``a`` and ``b``."""
    return np.sqrt(((a[:, None] - b[None]) ** 2).mean(-1))


def sibling_features(
    desc: np.ndarray, qs: list[Query], by_image: dict[int, list[int]], classes: list[np.ndarray]
) -> np.ndarray:
    """How a box's content compares with the other boxes of its class in the same image (piles, trays).

    A right box resembles its same-class siblings; a shifted box covers halves of two objects or background, a
    grouped box a texture of several objects. Per query: siblings = the image's real same-class boxes other than
    the boxes it replaces (``exclude``); their count, the nearest descriptor distance (colour stats and the L
    layout grid separately), and each nearest distance over the siblings' own typical nearest distance.
    Computed from every row's descriptor after the (cached) pixel features, so a label edit can't serve stale
    values; per row it depends only on its image's boxes (and the dataset-wide scale of the colour stats).

    Memory stays bounded on a dense image: distances are computed per class of the image, for SIB_CHUNK query
    rows at a time, against at most SIB_MAX siblings (a fixed sample of a bigger pile). Over every box of an
    image at once, one label file of 10,000 boxes needed 10⁸ distances of 16 numbers (13 GB) and a nearest-
    sibling pass per box over all the others (10¹² steps).
    """
    out = np.full((len(qs), len(SIB_NAMES)), np.nan, np.float32)
    real = np.array([k for k, q in enumerate(qs) if q.kind == "ok" and q.line is not None], int)
    stats = desc[:, :SIB_STATS].astype(np.float64)
    scale = np.nanstd(stats[real], axis=0) if len(real) else np.ones(SIB_STATS)
    stats = stats / np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0)
    grid = desc[:, SIB_STATS:].astype(np.float64)
    for i, ks in by_image.items():
        rows = {qs[k].line: k for k in ks if qs[k].kind == "ok" and qs[k].line is not None}
        c = classes[i]
        if not len(c):
            continue
        lines = np.array([j for j in range(len(c)) if j in rows], int)
        if not len(lines):
            continue
        rk = np.array([rows[j] for j in lines], int)
        ok_real = ~np.isnan(stats[rk]).any(axis=1)  # a box whose descriptor is undefined is nobody's sibling
        for cls in sorted({qs[k].cls for k in ks}):
            members = lines[(c[lines] == cls) & ok_real]  # this class's siblings, by line
            if len(members) > SIB_MAX:
                members = np.sort(np.random.default_rng([i, cls]).choice(members, SIB_MAX, replace=False))
            mk = np.array([rows[j] for j in members], int)
            rs, rg = stats[mk], grid[mk]
            ps, pg = _rms_distances(rs, rs), _rms_distances(rg, rg)  # sibling × sibling
            pos = {int(j): n for n, j in enumerate(members)}  # line → its column among the siblings
            without = _without_one(ps, pg)  # the typical distances of the set less one sibling, for each at once
            typical: dict[bytes, tuple[float, float, float]] = {}  # any other sibling set → its typical distances
            queries = [k for k in ks if qs[k].cls == cls]
            for at in range(0, len(queries), SIB_CHUNK):
                chunk = np.array(queries[at : at + SIB_CHUNK], int)
                ds, dg = _rms_distances(stats[chunk], rs), _rms_distances(grid[chunk], rg)  # query × sibling
                sib = np.ones((len(chunk), len(members)), bool)
                gone = [[pos[e] for e in qs[k].exclude if e in pos] for k in chunk]  # the boxes each one replaces
                for row, cols in enumerate(gone):
                    sib[row, cols] = False
                n = sib.sum(axis=1)
                out[chunk, 0] = n
                live = np.flatnonzero((n > 0) & ~np.isnan(ds).all(axis=1))
                if not len(live):
                    continue
                ns, ng, nb = np.empty(len(live)), np.empty(len(live)), np.empty(len(live))
                for t, row in enumerate(live):
                    if len(gone[row]) == 1 and without is not None:
                        ns[t], ng[t], nb[t] = without[:, gone[row][0]]
                        continue
                    s = np.flatnonzero(sib[row])
                    key = s.tobytes()  # e.g. a grouped box's set (its members out), or every sibling
                    if key not in typical:
                        ss, gg = ps[np.ix_(s, s)], pg[np.ix_(s, s)]
                        typical[key] = (_sibling_nn(ss), _sibling_nn(gg), _sibling_nn(ss + gg))
                    ns[t], ng[t], nb[t] = typical[key]
                # the minima over each row's siblings (the others set to +inf; a NaN still propagates, as before)
                a = np.where(sib[live], ds[live], np.inf).min(axis=1)
                b = np.where(sib[live], dg[live], np.inf).min(axis=1)
                ab = np.where(sib[live], ds[live] + dg[live], np.inf).min(axis=1)
                k = chunk[live]
                out[k, 1], out[k, 3] = a, b
                out[k, 2] = a / (ns + 0.05)
                out[k, 4] = b / (ng + 0.05)
                out[k, 5] = ab / (nb + 0.1)
    return out
