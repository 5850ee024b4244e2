"""The self-supervised box model and the grouped / background_heavy / shifted checks, on generated images.

Direction tests: the same dataset is scored twice, identical but for one box; the worse box must get the
worse score for its kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from curate.audit import boxmodel
from curate.audit.checks import background_heavy, by_name, grouped, shifted
from curate.audit.checks.base import AuditContext
from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord, Label

SIDE = 192
N_IMAGES = 36
ITER = 60  # fewer boosting rounds than the default: the generated data is easy, the suite must be quick


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))


def _scene(path: Path, rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """Textured background with 3 separated coloured blobs; returns their tight boxes (pixels xyxy)."""
    base = rng.uniform(90, 170, 3)
    noise = rng.normal(0, 10, (SIDE, SIDE, 1))
    img = Image.fromarray((base[None, None, :] + noise).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    boxes = []
    for cx, cy in ((48, 56), (140, 60), (96, 142)):  # fixed, well-separated slots
        cx, cy = cx + rng.integers(-8, 9), cy + rng.integers(-8, 9)
        rx, ry = rng.integers(14, 24), rng.integers(14, 24)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if np.abs(np.array(colour) - base).sum() < 150:  # keep objects distinct from the background
            colour = tuple(int(255 - c) for c in base)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        boxes.append((cx - rx, cy - ry, cx + rx, cy + ry))
    img.save(path, quality=95)
    return boxes


def _label(x1, y1, x2, y2, line: int) -> Label:
    x1, y1, x2, y2 = (max(0.0, min(1.0, v / SIDE)) for v in (x1, y1, x2, y2))
    return Label(0, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, line)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> tuple[Path, list[list[tuple]]]:
    root = tmp_path_factory.mktemp("blobs")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    boxes = [_scene(root / "images" / f"{i:03d}.jpg", rng) for i in range(N_IMAGES)]
    return root, boxes


def _dataset(scenes, first: list[tuple] | None = None) -> Dataset:
    """The generated dataset; ``first`` replaces image 0's boxes (pixel xyxy) when given."""
    root, boxes = scenes
    images = []
    for i, bxs in enumerate(boxes):
        bxs = first if (i == 0 and first is not None) else bxs
        labels = [_label(*b, line=n) for n, b in enumerate(bxs, start=1)]
        split = "val" if i % 6 == 5 else "train"
        images.append(ImageRecord(split, root / "images" / f"{i:03d}.jpg", f"images/{i:03d}.jpg", labels=labels))
    return Dataset(root=root, name="blobs", names=["blob"], images=images)


def _score(ds: Dataset, kind: str, line: int = 1, *, fast: bool = False) -> float:
    bs = boxmodel.score_boxes(ds, fast=fast, iterations=ITER, progress=False)
    return float(bs.prob[bs.index[("images/000.jpg", line)], 1 + boxmodel.KINDS.index(kind)])


def test_loose_box_scores_higher_than_tight(scenes):
    tight = scenes[1][0]
    x1, y1, x2, y2 = tight[0]
    w, h = x2 - x1, y2 - y1
    loose = [(x1 - 0.5 * w, y1 - 0.45 * h, x2 + 0.5 * w, y2 + 0.45 * h), *tight[1:]]
    assert _score(_dataset(scenes, loose), "loose") > _score(_dataset(scenes), "loose") + 0.2


def test_shifted_box_scores_higher_than_placed(scenes):
    tight = scenes[1][0]
    x1, y1, x2, y2 = tight[1]
    dx = 0.5 * (x2 - x1)
    moved = [tight[0], (x1 + dx, y1, x2 + dx, y2), tight[2]]
    assert _score(_dataset(scenes, moved), "shifted", line=2) > _score(_dataset(scenes), "shifted", line=2) + 0.2


def test_box_around_three_blobs_scores_higher_on_grouped(scenes):
    tight = scenes[1][0]
    b = np.array(tight)
    group = [(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())]
    assert _score(_dataset(scenes, group), "grouped") > _score(_dataset(scenes), "grouped") + 0.2


def test_fast_mode_needs_no_pixels(scenes, tmp_path):
    ds = _dataset(scenes)
    for rec in ds.images:  # images that cannot be read: fast mode must not try
        rec.path = tmp_path / "gone" / rec.path.name
        rec._size = (SIDE, SIDE)
    bs = boxmodel.score_boxes(ds, fast=True, iterations=ITER, progress=False)
    assert bs.method == "geometry"
    assert len(bs.index) == ds.num_boxes
    assert all(((s >= 0) & (s <= 1)).all() for s in bs.scores.values())


@pytest.mark.parametrize("module", [grouped, background_heavy, shifted])
def test_checks_emit_one_finding_per_box(scenes, module):
    ctx = AuditContext(_dataset(scenes), params={"grouped": {"iterations": ITER}})
    found = by_name()[module.NAME].run(ctx)
    assert len(found) == ctx.dataset.num_boxes
    assert {f.check for f in found} == {module.NAME}
    assert all(0.0 <= f.score <= 1.0 and f.line is not None and f.message for f in found)
    assert {"class", "method", "area_vs_class"} <= set(found[0].data)
    # the three checks share one computation
    assert ctx.use(boxmodel.BoxModel)._scores is not None


def test_clean_dataset_gets_few_flags(scenes):
    """Calibration: a dataset with only right boxes gets at most a few flags per 100 boxes."""
    bs = boxmodel.score_boxes(_dataset(scenes), iterations=ITER, progress=False)
    for kind, s in bs.scores.items():
        assert np.mean(s >= 0.5) <= 0.05, kind


@pytest.mark.skipif(
    not __import__("curate.vision.foreground").vision.foreground.default_weights().exists(),
    reason="no U²-Net-p weights",
)
def test_mask_features_add_fg_fraction(scenes):
    """``use_mask``: U²-Net-p masks become features, and the evidence reports the fg fraction."""
    ds = _dataset(scenes)
    ds.images = ds.images[:6]  # masks cost ~0.3 s an image: keep the test quick
    bs = boxmodel.score_boxes(ds, use_mask=True, iterations=ITER, progress=False)
    assert bs.method == "pixels+u2netp"
    assert "m_box" in bs.names
    ev = boxmodel.evidence(bs, 0)
    assert 0.0 <= ev["fg_fraction"] <= 1.0
    fg_box = np.nanmean(bs.features[:, bs.names.index("m_box")])
    fg_far = np.nanmean(bs.features[:, bs.names.index("m_far_left")])
    assert fg_box > fg_far  # the salient blobs are inside their boxes


@pytest.mark.parametrize(
    "n_images, boxes", [(3, False), (1, True), (2, True)], ids=["no-boxes", "one-image", "two-images"]
)
def test_tiny_datasets_do_not_fail(scenes, n_images, boxes):
    """Datasets too small to learn from still give one valid score per box (or none), never a traceback."""
    ds = _dataset(scenes)
    ds.images = ds.images[:n_images]
    if not boxes:
        for rec in ds.images:
            rec.labels = []
    bs = boxmodel.score_boxes(ds, iterations=ITER, progress=False)
    assert len(bs.index) == ds.num_boxes
    for s in bs.scores.values():
        assert len(s) == ds.num_boxes and np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()
    found = by_name()["grouped"].run(AuditContext(ds, params={"grouped": {"iterations": ITER}}))
    assert len(found) == ds.num_boxes


def _heldout_case(
    rng: np.random.Generator, *, n_real: int, n_corrupt: int, gap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cross-fitted probabilities of an over-confident model: logit P(kind) of originals ~ N(-3, 4), of
    corrupted boxes ~ N(-3 + gap, 4) for every kind; returns prob, y, prior, real rows."""
    y = np.concatenate([np.zeros(n_real, int), np.repeat(np.arange(1, 4), n_corrupt)])
    t = rng.normal(-3.0, 4.0, (len(y), 3))
    for k in range(1, 4):
        t[y == k, k - 1] += gap
    e = np.exp(t)
    prob = np.concatenate([np.ones((len(y), 1)), e], axis=1)
    prob /= prob.sum(axis=1, keepdims=True)
    prior = np.bincount(y, minlength=4) / len(y)
    return prob.astype(np.float32), y, prior, np.flatnonzero(y == 0)


def test_heldout_calibration_keeps_small_noisy_datasets_quiet():
    """A small dataset whose model barely separates corruptions from originals: the prior-weighted score
    flags several % of its (clean) boxes; the held-out calibration flags at most 2 % and keeps the ranking."""
    prob, y, prior, real = _heldout_case(np.random.default_rng(1), n_real=230, n_corrupt=200, gap=2.0)
    base = boxmodel.calibrate(prob[real], prior)
    cal = boxmodel.calibrate_heldout(prob, y, prior, real)
    assert max(np.mean(s >= 0.5) for s in base.values()) > 0.04  # the problem is real in this case
    for kind in boxmodel.KINDS:
        assert np.mean(cal[kind] >= 0.5) <= 0.02, kind
        order = np.argsort(base[kind])
        assert (np.diff(cal[kind][order]) >= -1e-6).all()  # increasing in the base score: AP unchanged


def test_heldout_calibration_flags_overwhelming_evidence():
    """Where the model separates corruptions well, a real box scored like the corruptions is still flagged."""
    prob, y, prior, real = _heldout_case(np.random.default_rng(2), n_real=230, n_corrupt=200, gap=12.0)
    prob[real[0]] = [1e-7, 1 - 3e-7, 1e-7, 1e-7]  # one original that looks exactly like a loose box
    cal = boxmodel.calibrate_heldout(prob, y, prior, real)
    assert cal["loose"][0] >= 0.5
    assert np.mean(cal["loose"][1:] >= 0.5) <= 0.02


def test_pixel_features_are_cached_per_image(scenes, monkeypatch):
    """A re-run reads every box's pixel features from the cache; an edited box alone is recomputed."""
    ds = _dataset(scenes)
    ds.images = ds.images[:4]
    qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=True)
    cold, names = boxmodel._features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)
    other = boxmodel._queries(ds, np.random.default_rng(1), with_corruptions=True)[0]  # another member's corruptions
    boxmodel._features(
        ds, other, boxes, classes, pixels=True, masks=None, progress=False
    )  # the cache now holds more rows than qs
    calls: list[int] = []
    real = boxmodel.pixel_features
    monkeypatch.setattr(boxmodel.features, "pixel_features", lambda p, **kw: (calls.append(len(p)), real(p, **kw))[1])
    from curate.io import cache

    saved: list[str] = []
    real_save = cache.save_array
    monkeypatch.setattr(cache, "save_array", lambda ns, key, v: (saved.append(key), real_save(ns, key, v))[1])
    warm, names2 = boxmodel._features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)
    assert names2 == names and np.array_equal(cold, warm, equal_nan=True)
    assert calls == [1]  # only the names probe: no patch was described again
    assert (
        saved == []
    )  # and nothing was written back: every image's rows came from the cache (it used to rewrite them all)
    calls.clear()
    qs[0].xyxy = np.clip(qs[0].xyxy + 0.02, 0, 1)
    edited, _ = boxmodel._features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)
    assert calls == [1, 1]  # the names probe and the one edited box
    assert len(saved) == 1  # only the edited box's image is written back
    assert not np.array_equal(edited[0], cold[0], equal_nan=True)
    own = [
        n
        for n, name in enumerate(names)
        if name not in boxmodel.SIB_NAMES + boxmodel.PROTO_NAMES + boxmodel.NEIGHBOUR_NAMES
    ]  # siblings, the class prototype and the neighbours see the edited box
    assert np.array_equal(edited[1:, own], cold[1:, own], equal_nan=True)


def _ulp_twins(path: Path, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two boxes near ``xyxy`` a few ulps apart in x1 (the same cache key) whose context patches, described as
    given, differ: x1 is moved to where the patch's left edge is half a pixel, and nudged until the crop flips."""
    from curate.audit.boxmodel.pixels import B, M
    from curate.vision.foreground import read_image

    pyramid = boxmodel.pixels.image_channels(read_image(path, max_side=defaults.PIXEL_MAX_SIDE), None)
    W = pyramid[0].shape[1]
    x1, x2 = xyxy[0], xyxy[2]  # the patch's left edge X1 = W (x1 - (x2 - x1) M / B): put it on k + 0.5
    edge = np.floor(W * (x1 - (x2 - x1) * M / B)) + 0.5
    box = xyxy.copy()
    box[0] = (edge / W + x2 * M / B) / (1 + M / B)
    base = boxmodel.pixels.context_patch(pyramid, box)
    for step in range(1, 200):
        for sign in (1, -1):
            twin = box.copy()
            for _ in range(step):
                twin[0] = np.nextafter(twin[0], sign * np.inf)
            if not np.array_equal(boxmodel.pixels.context_patch(pyramid, twin), base):
                return box, twin
    raise AssertionError("no rounding flip near the half-pixel edge")


def test_cached_pixel_features_do_not_depend_on_which_twin_came_first(scenes, monkeypatch, tmp_path):
    """Boxes a few ulps apart at a half-pixel crop edge describe different pixels; a warm run must give what a
    cold run gives, whichever of them the cache saw first. Matched to 1e-6 they shared one row, so the row (and
    every score after the fits) followed the cache's history."""
    ds = _dataset(scenes)
    ds.images = ds.images[:1]
    qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=False)
    first, twin = _ulp_twins(ds.images[0].path, qs[0].xyxy)
    assert np.array_equal(np.round(first * 1e6), np.round(twin * 1e6))  # one key when boxes were matched to 1e-6

    def described(xyxy: np.ndarray, cache: str) -> np.ndarray:
        monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / cache))
        qs[0].xyxy = xyxy
        return boxmodel._features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)[0]

    cold_twin = described(twin, "cold")
    described(first, "warm")  # the cache's row for this key written by the first twin
    warm_twin = described(twin, "warm")
    assert np.array_equal(warm_twin, cold_twin, equal_nan=True)


def test_members_described_in_one_pass_equal_one_pass_each(scenes, monkeypatch):
    """score_boxes describes every member's rows in one _features call (one decode per image); the rows each
    member trains on equal what a call on that member's queries alone gives, except the distances to the
    synthetic boxes of each kind, which in one pass have both members' synthetic boxes to choose from."""
    ds = _dataset(scenes)
    ds.images = ds.images[:8]
    calls: list[int] = []
    real_features = boxmodel._features
    monkeypatch.setattr(
        boxmodel.model, "_features", lambda *a, **k: (calls.append(len(a[1])), real_features(*a, **k))[1]
    )
    captured: dict[str, list] = {}
    real_crossfit = boxmodel._crossfit
    monkeypatch.setattr(
        boxmodel.model,
        "_crossfit",
        lambda members, *a, **k: (captured.setdefault("members", members), real_crossfit(members, *a, **k))[1],
    )
    boxmodel.score_boxes(ds, members=2, folds=2, iterations=5, progress=False)
    assert len(calls) == 1  # one pass for both members
    shared = captured["members"][0][0].matrix  # every member reads its rows of one matrix (no copy each)
    assert all(X.matrix is shared for X, _, _ in captured["members"])
    for m, (X, y, _) in enumerate(captured["members"]):
        qs, boxes, classes = boxmodel._queries(
            ds, np.random.default_rng(defaults.SEED + 101 * m), with_corruptions=True
        )
        own, names = real_features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)
        assert X.shape == own.shape and len(y) == len(qs)
        same = [n for n, name in enumerate(names) if not name.startswith(tuple(f"n_{k}" for k in boxmodel.KINDS))]
        assert len(same) < X.shape[1]
        assert np.allclose(
            X[:, same], own[:, same], atol=1e-5, equal_nan=True
        )  # float sums over other batches differ in the last bits
    assert calls[0] == len(captured["members"][0][0]) + len(captured["members"][1][0]) - sum(
        len(r.labels) for r in ds.images
    )


def test_sibling_features_single_out_a_box_unlike_its_siblings():
    """Three alike boxes and one unlike them: the odd one is far from its nearest sibling, the others near."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=boxmodel.SIB_STATS + boxmodel.SIB_GRID)
    desc = np.stack([base + 0.01 * rng.normal(size=base.shape) for _ in range(3)] + [base + 3.0]).astype(np.float32)
    qs = [boxmodel.Query(0, np.zeros(4), 0, "ok", (j,), line=j) for j in range(4)]
    qs.append(boxmodel.Query(0, np.zeros(4), 0, "grouped", (0, 1)))  # replaces boxes 0 and 1: siblings 2, 3
    f = boxmodel.sibling_features(np.concatenate([desc, desc[3:]]), qs, {0: list(range(5))}, [np.zeros(4, int)])
    n, rel = boxmodel.SIB_NAMES.index("s_n"), boxmodel.SIB_NAMES.index("s_both_rel")
    assert list(f[:, n]) == [3, 3, 3, 3, 2]
    assert f[3, rel] > 10 * max(f[:3, rel])


def _geometry_one_box(
    q: np.ndarray, cls: int, ctx: np.ndarray, ctx_cls: np.ndarray, size: tuple[int, int], st: boxmodel.ClassStats
) -> np.ndarray:
    """The readable per-box reference of :func:`boxmodel.geometry_features` (box ``q`` among ``ctx``)."""
    W, H = size
    s = np.array([W, H, W, H], float)
    qp = q * s
    w, h = max(qp[2] - qp[0], 1e-3), max(qp[3] - qp[1], 1e-3)
    lw, lh = np.log(w), np.log(h)
    la = lw + lh
    f = [
        lw - st.logw[cls],
        lh - st.logh[cls],
        la - st.loga[cls],
        (lw - lh) - st.logr[cls],
        (la - st.loga[cls]) / st.sd_loga[cls],
        np.log(w * h / (W * H)),
    ]
    if len(ctx):
        cp = ctx * s
        ix = np.clip(np.minimum(cp[:, 2], qp[2]) - np.maximum(cp[:, 0], qp[0]), 0, None)
        iy = np.clip(np.minimum(cp[:, 3], qp[3]) - np.maximum(cp[:, 1], qp[1]), 0, None)
        inter = ix * iy
        ca = np.maximum((cp[:, 2] - cp[:, 0]) * (cp[:, 3] - cp[:, 1]), 1e-6)
        iou = inter / (ca + w * h - inter)
        inside = inter / ca >= 0.7
        same = ctx_cls == cls
        f += [
            float(np.sum(inside & same)),
            float(np.sum(inside)),
            float(min(np.sum(inter[same]) / (w * h), 2.0)),
            float(iou[same].max()) if same.any() else 0.0,
            float(iou.max()),
            float(same.sum()),
            float(la - np.median(np.log(ca[same]))) if same.any() else np.nan,
            float(len(ctx)),
        ]
        touch = same & (inter > 0)
    else:
        f += [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.nan, 0.0]
        touch = np.zeros(0, bool)
    f += [q[0], q[1], 1 - q[2], 1 - q[3], float(np.sum(touch))]
    return np.asarray(f, np.float32)


def test_batched_geometry_features_equal_the_per_box_ones(sample_dir):
    """The per-image batch (used by the model) computes exactly what the readable per-box function does."""
    from curate.io.yolo import load_yolo

    ds = load_yolo(sample_dir)
    qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=True)
    assert any(q.exclude and len(q.exclude) > 1 for q in qs)  # merged (grouped) corruptions are in there
    sizes = [rec.size if rec.labels else (1, 1) for rec in ds.images]
    st = boxmodel.class_stats(
        [b * np.array([w, h, w, h], float) for b, (w, h) in zip(boxes, sizes)], classes, len(ds.names)
    )
    by_image: dict[int, list[int]] = {}
    for k, q in enumerate(qs):
        by_image.setdefault(q.image, []).append(k)
    batch = boxmodel.geometry_features(
        np.array([q.xyxy for q in qs]),
        np.array([q.cls for q in qs]),
        np.array([q.image for q in qs]),
        [q.exclude for q in qs],
        boxes,
        classes,
        sizes,
        st,
    )
    for i, ks in by_image.items():
        keep = np.ones((len(ks), len(boxes[i])), bool)
        for row, k in enumerate(ks):
            keep[row, list(qs[k].exclude)] = False
        one = np.array(
            [
                _geometry_one_box(qs[k].xyxy, qs[k].cls, boxes[i][keep[r]], classes[i][keep[r]], sizes[i], st)
                for r, k in enumerate(ks)
            ]
        )
        np.testing.assert_allclose(batch[ks], one, atol=1e-5, equal_nan=True)


def test_bagged_crossfit_scores_each_image_only_by_models_that_never_saw_it():
    """With several members (each its own corrupted boxes), fold f's rows of the first member are scored by
    every member's fold-f model, trained outside fold f. A second member whose fold-0 rows copy the first
    member's fold-0 features with the label "grouped" must not leak that label into their scores."""
    rng = np.random.default_rng(0)
    n = 600
    X0 = rng.normal(size=(n, 4)).astype(np.float32)
    y0 = rng.integers(0, 4, size=n)
    fold0 = np.arange(n) % 3
    X1, y1 = X0.copy(), rng.integers(0, 4, size=n)
    y1[fold0 == 0] = 3  # would be learnt exactly if fold 0's member-2 model trained on fold 0
    keep = np.ones(100, bool)
    one = boxmodel._crossfit([(X0, y0, fold0)], 3, keep, seed=0, iterations=20, advance=lambda: None)
    two = boxmodel._crossfit([(X0, y0, fold0), (X1, y1, fold0)], 3, keep, seed=0, iterations=20, advance=lambda: None)
    assert one.shape == two.shape == (n, 4)
    np.testing.assert_allclose(two.sum(axis=1), 1.0, atol=1e-5)
    g = 1 + boxmodel.KINDS.index("grouped")
    assert two[fold0 == 0, g].mean() < 0.35  # 0.25 here; 0.45 when fold 0's member-2 rows are trained on (a leak)
    assert not np.allclose(one, two)  # the second member takes part


def _disk_patch(centres: list[tuple[float, float]], r: float, rng: np.random.Generator) -> np.ndarray:
    """A P×P×5 context patch (L, a, b, gradient, valid): bright disks at ``centres`` (box units, 0..1) on a
    noisy dark ground."""
    P, M, B = boxmodel.P, boxmodel.M, boxmodel.B
    yy, xx = (np.mgrid[0:P, 0:P] - M + 0.5) / B
    lum = 0.2 + rng.normal(0, 0.02, (P, P))
    for cx, cy in centres:
        lum[(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2] = 0.8
    gy, gx = np.gradient(lum)
    patch = np.zeros((P, P, 5), np.float32)
    patch[..., 0], patch[..., 3], patch[..., 4] = lum, np.hypot(gx, gy), 1.0
    return patch


def test_prototype_features_see_two_objects_in_one_box():
    """Thirty boxes round one disk each make the class prototype; a box round two disks side by side has
    halves closer to it than the whole box is, a box round four disks in a 2x2 has quarters closer."""
    rng = np.random.default_rng(0)
    one = [_disk_patch([(0.5 + rng.normal(0, 0.03), 0.5 + rng.normal(0, 0.03))], 0.4, rng) for _ in range(30)]
    pair = _disk_patch([(0.25, 0.5), (0.75, 0.5)], 0.22, rng)
    four = _disk_patch([(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)], 0.22, rng)
    grids = boxmodel.shape_grids(np.stack([*one, pair, four]))
    qs = [boxmodel.Query(0, np.zeros(4), 0, "ok", (j,), line=j) for j in range(30)]
    qs += [
        boxmodel.Query(0, np.zeros(4), 0, "grouped", (0, 1)),
        boxmodel.Query(0, np.zeros(4), 0, "grouped", (0, 1, 2, 3)),
    ]
    f = boxmodel.prototype_features(grids, qs)
    col = {name: boxmodel.PROTO_NAMES.index(name) for name in ("c_whole_rel", "c_lr", "c_quads")}
    singles = f[:30]
    assert f[30, col["c_whole_rel"]] > 2 * np.median(singles[:, col["c_whole_rel"]])  # unlike the class as a whole
    assert f[30, col["c_lr"]] < 0 < np.median(singles[:, col["c_lr"]])  # ... but each half is like one object
    assert f[31, col["c_quads"]] < 0 < np.median(singles[:, col["c_quads"]])
    few = boxmodel.prototype_features(grids[:3], qs[:3])  # a class with fewer than 5 boxes has no prototype
    assert np.isnan(few).all()


def test_neighbour_features_match_a_class_that_looks_two_ways_and_skip_the_own_image():
    """Half the class is a big disk, half a small off-centre one: the class mean matches neither, the nearest
    boxes match each. A box round two small disks has halves nearer its neighbours than its whole; and a twin
    of it counts as a neighbour only from another image."""
    rng = np.random.default_rng(1)
    big = [_disk_patch([(0.5, 0.5)], 0.4, rng) for _ in range(15)]
    small = [_disk_patch([(0.35, 0.5)], 0.2, rng) for _ in range(15)]
    pair = _disk_patch([(0.25, 0.5), (0.75, 0.5)], 0.22, rng)
    grids = boxmodel.shape_grids(np.stack([*big, *small, pair, pair]))
    qs = [boxmodel.Query(j, np.zeros(4), 0, "ok", (0,), line=1) for j in range(30)]
    col = {name: boxmodel.NEIGHBOUR_NAMES.index(name) for name in ("n_whole", "n_whole_rel", "n_halves")}
    lone = qs + [boxmodel.Query(30, np.zeros(4), 0, "grouped", (0, 1))]
    f = boxmodel.neighbour_features(grids[:31], lone)
    proto = boxmodel.prototype_features(grids[:31], lone)
    singles = f[:30]
    c_whole = boxmodel.PROTO_NAMES.index("c_whole")  # the same RMS distance on the same grids, to the class mean
    assert np.median(singles[:, col["n_whole"]]) < 0.3 * np.median(proto[:30, c_whole])  # each look has near twins
    assert f[30, col["n_whole_rel"]] > 3  # the pair is unlike every single box
    assert f[30, col["n_halves"]] < 0 < np.median(singles[:, col["n_halves"]])  # ... but its halves are like one
    twin_same = boxmodel.neighbour_features(grids, lone + [boxmodel.Query(30, np.zeros(4), 0, "ok", (1,), line=2)])
    twin_other = boxmodel.neighbour_features(grids, lone + [boxmodel.Query(31, np.zeros(4), 0, "ok", (0,), line=1)])
    assert twin_same[30, col["n_whole"]] == pytest.approx(
        f[30, col["n_whole"]], rel=1e-6
    )  # its own image: no neighbour
    assert twin_other[30, col["n_whole"]] < 0.9 * f[30, col["n_whole"]]  # another image: its twin is one of its K
    few = boxmodel.neighbour_features(grids[:3], qs[:3])  # a class with fewer than 5 real boxes: NaN
    assert np.isnan(few).all()


def test_neighbour_features_compare_with_the_synthetic_boxes_of_other_scenes():
    """A real box round two disks is nearer the model's synthetic two-disk merges than a one-disk box is;
    merges made in its own scene (a near-duplicate image) are not its neighbours."""
    rng = np.random.default_rng(2)
    singles = [_disk_patch([(0.5 + rng.normal(0, 0.03), 0.5)], 0.4, rng) for _ in range(15)]
    merges = [_disk_patch([(0.25 + rng.normal(0, 0.02), 0.5), (0.75, 0.5)], 0.22, rng) for _ in range(6)]
    pair = _disk_patch([(0.25, 0.5), (0.75, 0.5)], 0.22, rng)
    grids = boxmodel.shape_grids(np.stack([*singles, *merges, pair]))
    qs = [boxmodel.Query(j, np.zeros(4), 0, "ok", (0,), line=1) for j in range(15)]
    qs += [boxmodel.Query(20 + j, np.zeros(4), 0, "grouped", (0, 1)) for j in range(6)]
    qs += [boxmodel.Query(30, np.zeros(4), 0, "ok", (0,), line=1)]  # a real box that is a pair
    g, g_rel = boxmodel.NEIGHBOUR_NAMES.index("n_grouped"), boxmodel.NEIGHBOUR_NAMES.index("n_grouped_rel")
    f = boxmodel.neighbour_features(grids, qs)
    assert f[21, g] < 0.5 * np.median(f[:15, g])
    assert f[21, g_rel] < 0 < np.median(f[:15, g_rel])
    scene = np.arange(31)
    scene[20:26] = 30  # every merge was made in a near-duplicate of the pair's image
    same = boxmodel.neighbour_features(grids, qs, scene=scene)
    assert np.isnan(same[21, g]) and np.isfinite(same[:15, g]).all()


def test_neighbour_distances_in_small_blocks_equal_one_block(monkeypatch, neighbour_rows):
    """The distance matrix is built in blocks of rows (memory on big one-class datasets): same values."""
    grids, qs = neighbour_rows
    whole = boxmodel.neighbour_features(grids, qs)
    monkeypatch.setattr(boxmodel.peers, "NEIGHBOUR_CELLS", 7)  # a block of one row
    np.testing.assert_allclose(boxmodel.neighbour_features(grids, qs), whole, rtol=1e-6, atol=1e-9)
    assert np.isfinite(whole).any()
    monkeypatch.setattr(boxmodel.peers, "NEIGHBOUR_MAX_REFS", 8)  # a big class: neighbours from a fixed sample of it
    sampled = boxmodel.neighbour_features(grids, qs)
    np.testing.assert_array_equal(sampled, boxmodel.neighbour_features(grids, qs))
    assert np.isfinite(sampled).all(axis=1).any() and not np.allclose(sampled, whole, equal_nan=True)


def test_scenes_join_the_near_duplicate_photos_of_the_sample(sample_dir):
    """The bundled sample keeps re-exported photos across splits: each pair is one scene, the rest alone."""
    from curate.io.yolo import load_yolo
    from curate.vision.hashing import image_signatures, near_duplicate_pairs

    ds = load_yolo(sample_dir)
    scene = boxmodel.scenes(ds)
    index = {r.rel: i for i, r in enumerate(ds.images)}
    pairs = near_duplicate_pairs(image_signatures(ds, progress=False), threshold=0.85)
    assert len(pairs) >= 3
    assert all(scene[index[p.a]] == scene[index[p.b]] for p in pairs)
    paired = {index[r] for p in pairs for r in (p.a, p.b)}
    assert all(scene[i] == i for i in range(len(ds.images)) if i not in paired)


def test_box_model_takes_the_scenes_from_the_runs_pairs(sample_dir, monkeypatch):
    """In an audit the near-duplicate pairs are searched once (curate.audit.shared.NearDuplicatePairs, from the
    signatures image_checks made); the box model's scenes take them, filtered to SAME_SCENE_SIMILARITY."""
    from curate.audit.checks.base import AuditContext
    from curate.audit.shared import NearDuplicatePairs
    from curate.io.yolo import load_yolo
    from curate.vision import hashing

    ctx = AuditContext(load_yolo(sample_dir))
    made = ctx.use(NearDuplicatePairs).at(ctx, 0.8)
    monkeypatch.setattr(hashing, "near_duplicate_pairs", lambda *a, **k: pytest.fail("pairs searched twice"))
    monkeypatch.setattr(boxmodel.child, "score_boxes", lambda ds, **k: k["same_scene"])
    assert boxmodel.shared_scores(ctx) == hashing.at_least(made, hashing.SAME_SCENE_SIMILARITY)


def test_crossfit_survives_a_feature_missing_in_every_training_row():
    """scikit-learn 1.9's HistGradientBoosting raised "window shape cannot be larger than input array shape"
    on a feature that is NaN in all training rows (a small dataset's sibling ratios); the fit now ignores it."""
    rng = np.random.default_rng(0)
    n = 120
    X = rng.normal(size=(n, 3)).astype(np.float32)
    X[:, 1] = np.nan
    y = rng.integers(0, 4, size=n)
    prob = boxmodel._crossfit(
        [(X, y, np.arange(n) % 3)], 3, np.ones(40, bool), seed=0, iterations=10, advance=lambda: None
    )
    assert prob.shape == (n, 4)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("fast", [False, True], ids=["pixels", "fast"])
def test_one_box_per_image_scores_every_box(scenes, fast):
    """One object per image (no same-class siblings anywhere) is an ordinary dataset: every box gets a score."""
    ds = _dataset(scenes)
    ds.images = ds.images[:12]
    for rec in ds.images:
        rec.labels = rec.labels[:1]
    bs = boxmodel.score_boxes(ds, fast=fast, iterations=ITER, progress=False)
    assert len(bs.index) == ds.num_boxes == 12
    for s in bs.scores.values():
        assert np.isfinite(s).all()


def test_the_classifier_trains_every_round_on_every_row_of_a_large_dataset():
    """scikit-learn's early_stopping="auto" turns on above 10,000 rows: a large dataset's fits would hold
    10 % of the rows out and stop at another number of rounds than a small one's."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10_500, 3)), rng.integers(0, 4, size=10_500)  # noise: a held-out loss stops improving
    clf = boxmodel._classifier(0, 25).fit(X, y)
    assert clf.n_iter_ == 25


def test_box_pixel_features_of_a_1280_px_image_come_from_a_640_px_decode(tmp_path):
    """A small object in a large image (a drone view, a 2 × 2 mosaic) keeps its pixels: the image decodes at half
    its side (640), where the fixed 320 left a 12-px object 3 px."""
    from curate.audit.boxmodel.features import FeatureCache
    from curate.audit.boxmodel.pixels import P, context_patch, image_channels, pixel_features
    from curate.vision.foreground import read_image

    side, rng = 1280, np.random.default_rng(1)
    img = (np.full((side, side, 3), (40, 140, 60), float) + rng.normal(0, 6, (side, side, 3))).clip(0, 255)
    labels = []
    for n, (x, y) in enumerate([(200, 300), (640, 500), (1000, 900)], start=1):
        for r in range(24):
            img[y + r, x : x + 12] = (230, 230, 230) if (r // 2) % 2 else (200, 30, 30)
        labels.append(Label(0, (x + 6) / side, (y + 12) / side, 12 / side, 24 / side, n))
    path = tmp_path / "big.png"
    Image.fromarray(img.astype(np.uint8)).save(path)
    rec = ImageRecord("train", path, "big.png", labels=labels)
    ds = Dataset(root=tmp_path, name="big", names=["player"], images=[rec])
    qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=False)
    got, names = boxmodel._features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)

    def described(max_side: int) -> np.ndarray:
        pyramid = image_channels(read_image(path, max_side=max_side))
        stack = np.stack([context_patch(pyramid, q.xyxy) for q in qs])
        return pixel_features(stack, with_mask=False)[0]

    want, old = described(640), described(320)
    pnames = pixel_features(np.zeros((1, P, P, 5), np.float32), with_mask=False)[1]
    cols = [names.index(n) for n in pnames]
    np.testing.assert_allclose(got[:, cols], want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(want, old, rtol=1e-3, atol=1e-4)
    assert FeatureCache.image_key(rec).endswith("-640")  # its cache rows are not a 320 decode's
