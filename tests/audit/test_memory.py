"""Bounded memory on dense label files (issue #25): pair checks follow the overlapping pairs, not every pair.

One label file with 10,000 boxes took the audit past 24 GB: the pair checks built a matrix of every box of an
image against every other. These tests audit label files of thousands of boxes and measure the peak (numpy's
allocations with tracemalloc in this process; the RSS of a real `curate audit` process tree), small enough to
run in seconds, large enough that a pair matrix passes the cap several times over.
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np

from curate.audit import boxmodel
from curate.audit.checks import dataset_stats
from curate.audit.checks.base import AuditContext
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.overlap import overlapping_pairs

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from memory import dense_boxes  # noqa: E402  (the benchmark's dense label file: a jittered grid with some duplicates)

MB = 1024 * 1024


def _dense_labels(n: int, classes: int = 4) -> list[Label]:
    out = []
    for k, line in enumerate(dense_boxes(n, classes=classes)):
        c, cx, cy, w, h = line.split()
        out.append(Label(int(c), float(cx), float(cy), float(w), float(h), k + 1))
    return out


def _brute_force_pairs(a: np.ndarray, b: np.ndarray, ga: np.ndarray, gb: np.ndarray) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i in range(len(a))
        for j in range(len(b))
        if ga[i] == gb[j]
        and min(a[i, 2], b[j, 2]) > max(a[i, 0], b[j, 0])
        and min(a[i, 3], b[j, 3]) > max(a[i, 1], b[j, 1])
    ]


def test_overlapping_pairs_are_exactly_the_pairs_that_overlap():
    """Every pair with a positive-area intersection, in the same group only, sorted, in chunks of any size:
    wide boxes, zero-width boxes, boxes past the image edge, exact copies and boxes that only touch."""
    rng = random.Random(3)
    for trial in range(60):
        n_a, n_b = rng.randrange(0, 40), rng.randrange(0, 40)

        def boxes(n: int) -> np.ndarray:
            out = []
            for _ in range(n):
                x, y = rng.uniform(-0.1, 1.0), rng.uniform(-0.1, 1.0)
                w = rng.choice([0.0, 1e-4, rng.uniform(0, 0.2), rng.uniform(0, 1.2)])
                h = rng.choice([0.0, rng.uniform(0, 0.2), rng.uniform(0, 1.2)])
                out.append([x, y, x + w, y + h])
            if out and rng.random() < 0.5:  # an exact copy, and a box that only touches the first one
                out[-1] = list(out[0])
                out.append([out[0][2], out[0][1], out[0][2] + 0.1, out[0][3]])
            return np.array(out, float).reshape(-1, 4)

        a, b = boxes(n_a), boxes(n_b)
        ga, gb = np.array([rng.randrange(3) for _ in a], int), np.array([rng.randrange(3) for _ in b], int)
        got: list[tuple[int, int]] = []
        for i, j in overlapping_pairs(a, b, ga, gb, chunk=rng.choice([1, 5, 1000])):
            got += list(zip(i.tolist(), j.tolist()))
        assert got == _brute_force_pairs(a, b, ga, gb), trial


def test_pair_checks_and_box_geometry_of_3000_boxes_in_one_image_stay_small():
    """duplicate/ambiguous's pairs and the box model's geometry features of one image with 3,000 boxes (7,500
    rows with the model's corrupted boxes): the pair matrices were 1.2 GB (pairs) and 1.4 GB (geometry)."""
    from curate.core.overlap import later_line_pairs

    labels = _dense_labels(3000)
    tracemalloc.start()
    try:
        best, partner = later_line_pairs([labels], same_class=True)
        pairs_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        ds = Dataset(
            Path("/x"),
            "dense",
            ["a", "b", "c", "d"],
            [ImageRecord("train", Path("/x/d.jpg"), "train/d.jpg", labels=labels)],
        )
        qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=True)
        st = boxmodel.class_stats([b * 640 for b in boxes], classes, 4)
        geo = boxmodel.geometry_features(
            np.array([q.xyxy for q in qs]),
            np.array([q.cls for q in qs]),
            np.array([q.image for q in qs]),
            [q.exclude for q in qs],
            boxes,
            classes,
            [(640, 640)],
            st,
        )
        geo_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pairs_peak < 64 * MB and geo_peak < 64 * MB, (pairs_peak / MB, geo_peak / MB)
    assert (best >= 0.98).sum() >= 5  # the planted exact copies are still found
    assert len(geo) == len(qs) > 7000 and np.isfinite(geo[:, boxmodel.GEOM_NAMES.index("g_rel_sib")]).all()


def test_sibling_features_of_a_pile_of_1000_stay_small():
    """One image with 1,000 boxes of one class: every box against every other was 0.5 GB of distances (and a
    nearest-sibling pass per box over all the others); now against at most SIB_MAX siblings, in chunks."""
    labels = [Label(0, lab.cx, lab.cy, lab.w, lab.h, lab.line) for lab in _dense_labels(1000)]
    ds = Dataset(Path("/x"), "pile", ["a"], [ImageRecord("train", Path("/x/p.jpg"), "train/p.jpg", labels=labels)])
    qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=True)
    desc = np.random.default_rng(1).normal(size=(len(qs), boxmodel.SIB_STATS + boxmodel.SIB_GRID)).astype(np.float32)
    tracemalloc.start()
    try:
        out = boxmodel.sibling_features(desc, qs, {0: list(range(len(qs)))}, classes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MB, peak / MB
    assert out[:, 0].max() == boxmodel.SIB_MAX and np.isfinite(out[:, 1:]).all()


def test_fast_audit_of_a_label_file_with_3000_boxes_stays_small_and_flags_it(make_yolo_tree, tmp_path):
    """A real `curate audit --fast` process (and its box-model child) on one label file of 3,000 boxes: the
    peak RSS of every process stays under 400 MB (it was 1.24 GB), the image gets the dense-image note, and the
    boxes are still checked (the planted exact copies are flagged as duplicates)."""
    lines = dense_boxes(3000)
    images = {
        "train/dense.jpg": lines,
        **{f"train/t{i}.jpg": ["0 0.5 0.5 0.3 0.3", "1 0.2 0.2 0.1 0.1"] for i in range(8)},
        "val/v.jpg": ["0 0.5 0.5 0.3 0.3"],
    }
    root = make_yolo_tree(tmp_path / "ds", images, names=["a", "b", "c", "d"], size=(320, 320))
    out = tmp_path / "out"
    audit = [sys.executable, "-m", "curate.app.cli", "audit", str(root), "--fast", "--no-fiftyone", "--out", str(out)]
    # the peak of every process the audit started, from the kernel's accounting of reaped children (a fresh
    # python, so no earlier test's children count)
    probe = (
        "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], capture_output=True).returncode; "
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    res = subprocess.run([sys.executable, "-c", probe, *audit], capture_output=True, text=True, cwd=REPO, timeout=300)
    rc, peak_kb = (int(v) for v in res.stdout.split())
    assert rc == 0, res.stderr
    assert peak_kb * 1024 < 400 * MB, f"peak {peak_kb / 1024:.0f} MB"
    rows = list(csv.DictReader((out / "findings.csv").open()))
    dense = [r for r in rows if r["check"] == "dataset" and r["image"] == "train/images/dense.jpg"]
    assert len(dense) == 1 and "3,000 boxes in one image" in dense[0]["message"]
    copies = {i + 1 for i, line in enumerate(lines) if line in lines[:i]}
    flagged = {int(r["line"]) for r in rows if r["check"] == "duplicate" and r["image"] == "train/images/dense.jpg"}
    assert copies and copies <= flagged


def _image(name: str, n: int) -> ImageRecord:
    return ImageRecord(
        "train",
        Path(f"/x/{name}.jpg"),
        f"train/{name}.jpg",
        labels=[Label(0, 0.5, 0.5, 0.01, 0.01, k + 1) for k in range(n)],
    )


def test_an_image_with_hundreds_of_boxes_gets_one_note():
    """DENSE_IMAGE_BOXES (Ultralytics' max_det, 300) boxes or more: one dataset note naming the image, 0.5 at the
    limit and 1.0 at ten times it, instead of the box-count outlier; one box fewer, none. In a dataset of 4
    images too (where the outliers are not computed)."""
    limit = dataset_stats.DENSE_IMAGE_BOXES
    images = [_image(f"t{i}", 3) for i in range(10)] + [
        _image("at", limit),
        _image("below", limit - 1),
        _image("crowd", 10 * limit),
    ]
    found = dataset_stats.outlier_findings(AuditContext(Dataset(Path("/x"), "t", ["a"], images)))
    dense = {f.image: f for f in found if f.data.get("kind") == "dense_image"}
    assert set(dense) == {"train/at.jpg", "train/crowd.jpg"}
    assert dense["train/at.jpg"].score == 0.5 and dense["train/crowd.jpg"].score == 1.0
    assert "3,000 boxes in one image" in dense["train/crowd.jpg"].message
    assert not [f for f in found if f.image in dense and f.data.get("kind") == "box_count_outlier"]
    assert any(f.image == "train/below.jpg" and f.data.get("kind") == "box_count_outlier" for f in found)
    small = dataset_stats.outlier_findings(
        AuditContext(Dataset(Path("/x"), "t", ["a"], [_image("a", 1), _image("crowd", limit)]))
    )
    assert [f.image for f in small] == ["train/crowd.jpg"]


def test_an_audit_holds_only_the_scores_it_reports(sample_dir, tmp_path):
    """Without ``--all-scores`` the audit keeps only the scores at or above their threshold (every check scores
    every box or image: about ten Findings a box, 2.7 GB projected at 100,000 images), computed or read from the
    cache alike; it still counts every score per check, and findings.csv is the same as with all scores kept."""
    from curate.audit.runner import run_audit
    from curate.io.yolo import load_yolo

    ds = load_yolo(sample_dir)
    full = run_audit(ds, out_dir=tmp_path / "all", fast=True, all_scores=True, fiftyone=False, report=False)
    cached = run_audit(ds, out_dir=tmp_path / "cached", fast=True, fiftyone=False, report=False)
    fresh = run_audit(ds, out_dir=tmp_path / "fresh", fast=True, fiftyone=False, report=False, use_cache=False)
    ctx = AuditContext(ds, fast=True)
    below = [f for f in full.scores if f.score < ctx.threshold(f.check)]
    counts: dict[str, int] = {}
    for f in full.scores:
        counts[f.check] = counts.get(f.check, 0) + 1
    assert len(below) > 10 * len([f for f in full.scores if f not in below])  # most scores are below their threshold
    for result in (cached, fresh):
        assert all(f.score >= ctx.threshold(f.check) for f in result.scores)
        assert len(result.scores) == len(full.scores) - len(below)
        assert result.scored == counts == full.scored
        assert (result.out_dir / "findings.csv").read_bytes() == (tmp_path / "all" / "findings.csv").read_bytes()


def _record_at_once(monkeypatch, module) -> list[int | None]:
    """Every ``at_once`` that ``module`` passes to ``fit_side_by_side``, the fits still run."""
    at_once: list[int | None] = []
    side_by_side = module.fit_side_by_side

    def recorded(jobs, **kw):
        at_once.append(kw.get("at_once"))
        return side_by_side(jobs, **kw)

    monkeypatch.setattr(module, "fit_side_by_side", recorded)
    return at_once


def test_missing_fits_its_folds_one_at_a_time_past_the_budget_to_the_same_regions(sample_dir, monkeypatch):
    """The missing check's folds each fit on a float64 copy of their rows (twice, with early stopping): side by
    side they held 3 of them, growing with the images. Past ``FIT_ROWS_BUDGET`` they fit one after another, and
    every region and score is the same as side by side."""
    from curate.audit.checks.missing import model
    from curate.io.yolo import load_yolo
    from curate.runtime import env

    ds = load_yolo(sample_dir)
    at_once = _record_at_once(monkeypatch, model)
    wide = model.objectness_regions(ds, seed=0)
    assert at_once == [3, 3]  # the sample is far below the budget
    monkeypatch.setattr(env, "FIT_ROWS_BUDGET", 1)
    narrow = model.objectness_regions(ds, seed=0)
    assert at_once[2:] == [1, 1]
    assert wide.keys() == narrow.keys() and len(wide) > 10
    for i, (scores, windows) in wide.items():
        assert np.array_equal(scores, narrow[i][0]) and np.array_equal(windows, narrow[i][1])


def test_missing_bounds_the_windows_it_holds_and_predicts_at_once_to_the_same_regions(sample_dir, monkeypatch):
    """Before the shortlisting model is fitted, every image's candidate windows waited for it, and the shortlist
    predicted all of them at once as float64: 3.2 GB on football-players (21,000 windows an image). Past
    ``HELD_BYTES`` an image's windows are dropped and described again after the fit, and the shortlist predicts
    ``SHORTLIST_ROWS`` at a time: every region and score is the same."""
    from curate.audit.checks.missing import model
    from curate.io.yolo import load_yolo

    ds = load_yolo(sample_dir)
    described: list[int] = []
    image_maps = model.image_maps

    def counted(img):
        described.append(1)
        return image_maps(img)

    monkeypatch.setattr(model, "image_maps", counted)
    wide = model.objectness_regions(ds, seed=0)
    once = len(described)
    monkeypatch.setattr(model, "HELD_BYTES", 20_000)
    monkeypatch.setattr(model, "SHORTLIST_ROWS", 50)
    narrow = model.objectness_regions(ds, seed=0)
    assert len(described) - once > once + 10  # some images were described twice
    assert list(wide) == list(narrow) and len(wide) > 10
    for i, (scores, windows) in wide.items():
        assert np.array_equal(scores, narrow[i][0]) and np.array_equal(windows, narrow[i][1])


def test_box_model_crossfit_past_the_budget_gives_the_same_probabilities(monkeypatch):
    """The box model's 9 fits run 3 at once, fewer where 3 copies of their rows pass ``FIT_ROWS_BUDGET``
    (above ~20,000 images of food-ingredients): the same probabilities either way."""
    from curate.audit.boxmodel import model
    from curate.runtime import env

    rng = np.random.default_rng(0)
    members = []
    for m in range(3):
        X = rng.normal(size=(600, 8)).astype(np.float32)
        y = rng.integers(0, 4, 600)
        X[:, 0] += y  # something to learn
        members.append((X, y, np.arange(600) % 3))
    at_once = _record_at_once(monkeypatch, model)

    def crossfit():
        return model._crossfit(members, 3, np.ones(400, bool), seed=0, iterations=10, advance=lambda: None)

    wide = crossfit()
    monkeypatch.setattr(env, "FIT_ROWS_BUDGET", 1)
    narrow = crossfit()
    assert at_once == [3, 1]
    assert np.array_equal(wide, narrow) and wide.sum() > 0


def test_missing_keeps_no_image_s_candidate_windows_after_its_shortlist(sample_dir, monkeypatch):
    """Each image's training rows (positives, negatives) stay until the final fit; its candidate windows' features
    go once the shortlist has taken its best 12. The positives were a view of the image's whole feature matrix,
    which kept every candidate alive to the end: +1.07 GB at 30,000 images."""
    from curate.audit.checks.missing import model
    from curate.io.yolo import load_yolo

    made: list = []

    class Recorded(model.ImageRows):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(model, "ImageRows", Recorded)
    model.objectness_regions(load_yolo(sample_dir), seed=0)

    def held(a: np.ndarray) -> int:  # the bytes an array keeps alive: those of the array that owns its memory
        while a.base is not None:
            a = a.base
        return a.nbytes

    assert len(made) > 50 and all(len(r.cand) == 0 for r in made)  # every image was shortlisted
    assert sum(held(r.pos) + held(r.neg) for r in made) == sum(r.pos.nbytes + r.neg.nbytes for r in made)


def test_neighbour_features_of_many_rows_take_fewer_references(monkeypatch, neighbour_rows):
    """Neighbour features cost rows × references of a class: above ``NEIGHBOUR_FULL_ROWS`` described rows a class's
    neighbours come from a fixed sample of ``NEIGHBOUR_BIG_REFS`` of its boxes, not ``NEIGHBOUR_MAX_REFS``; at or
    below it every feature is as before."""
    from curate.audit.boxmodel import peers

    grids, qs = neighbour_rows
    whole = peers.neighbour_features(grids, qs)
    monkeypatch.setattr(peers, "NEIGHBOUR_BIG_REFS", 8)
    monkeypatch.setattr(peers, "NEIGHBOUR_FULL_ROWS", len(qs))  # at the bound: all references
    np.testing.assert_array_equal(peers.neighbour_features(grids, qs), whole)
    monkeypatch.setattr(peers, "NEIGHBOUR_FULL_ROWS", len(qs) - 1)
    fewer = peers.neighbour_features(grids, qs)
    assert not np.allclose(fewer, whole, equal_nan=True) and np.isfinite(fewer).all(axis=1).any()
    monkeypatch.setattr(peers, "NEIGHBOUR_FULL_ROWS", 10**9)
    monkeypatch.setattr(peers, "NEIGHBOUR_MAX_REFS", 8)  # the same fixed sample as a cap of 8 on any size
    np.testing.assert_array_equal(peers.neighbour_features(grids, qs), fewer)


def test_feature_cache_holds_only_the_images_it_will_rewrite(sample_dir):
    """On a warm cache every image's cached rows (float64, ~5 KB a box) were held until the end of the pass, though
    only images with rows still to compute are written back: 0.3 GB in the resize search at ×16, the whole
    box model's rows in a warm audit. Now only those images' rows are held."""
    from curate.audit.boxmodel import peers
    from curate.audit.boxmodel.features import FeatureCache
    from curate.audit.boxmodel.pixels import P, pixel_features
    from curate.io.yolo import load_yolo

    ds = load_yolo(sample_dir)
    ds.images = [r for r in ds.images if r.labels][:6]
    qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=True)
    boxmodel._features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)  # a cold pass fills the cache
    by_image: dict[int, list[int]] = {}
    for k, q in enumerate(qs):
        by_image.setdefault(q.image, []).append(k)
    qs[0].xyxy = np.clip(qs[0].xyxy + 0.02, 0, 1)  # one box edited since: its image has a row to compute
    width = len(pixel_features(np.zeros((1, P, P, 5), np.float32), with_mask=False)[1])  # as in _features
    pix = np.full((len(qs), width + peers.SIB_STATS + peers.SIB_GRID), np.nan, np.float32)
    grids = np.full((len(qs), peers.PROTO_WIDTH), np.nan, np.float32)
    cache = FeatureCache(with_mask=False)
    todo = {i: cache.fill(i, ds.images[i], ks, qs, pix, grids) for i, ks in by_image.items()}
    assert todo[qs[0].image] == [0] and not any(t for i, t in todo.items() if i != qs[0].image)
    assert list(cache.cached) == [qs[0].image]
    assert (~np.isnan(pix[1:])).any(axis=1).all()  # every other row came from the cache


def test_a_rewritten_image_keeps_only_the_old_rows_it_writes_back(sample_dir, tmp_path, monkeypatch):
    """An image with rows to compute kept its whole cached array (float64, ~5 KB a box) until the pass was saved,
    though only the rows of boxes not asked for again are written back (at most BOXMODEL_CACHE_KEEP): 0.26 GB for
    the resize search on one label file of 10,000 boxes, whose every candidate made its image one to rewrite. The
    array written back is the same: the rows asked for, then the old rows of the boxes no longer asked for."""
    from curate.audit.boxmodel import peers
    from curate.audit.boxmodel.features import FeatureCache
    from curate.audit.boxmodel.pixels import P, pixel_features
    from curate.io import cache as disk
    from curate.io.yolo import load_yolo

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))  # no rows other tests cached for these images
    ds = load_yolo(sample_dir)
    ds.images = [r for r in ds.images if r.labels][:6]
    qs, boxes, classes = boxmodel._queries(ds, np.random.default_rng(0), with_corruptions=True)
    boxmodel._features(ds, qs, boxes, classes, pixels=True, masks=None, progress=False)  # a cold pass fills the cache
    image = qs[0].image
    ks = [k for k, q in enumerate(qs) if q.image == image]
    moved = np.clip(qs[0].xyxy + 0.02, 0, 1)
    old_box = qs[0].xyxy
    qs[0].xyxy = moved  # one box edited since: its image has a row to compute, its old box is no longer asked for
    width = len(pixel_features(np.zeros((1, P, P, 5), np.float32), with_mask=False)[1])  # as in _features
    pix = np.full((len(qs), width + peers.SIB_STATS + peers.SIB_GRID), np.nan, np.float32)
    grids = np.full((len(qs), peers.PROTO_WIDTH), np.nan, np.float32)
    fc = FeatureCache(with_mask=False)
    assert fc.fill(image, ds.images[image], ks, qs, pix, grids) == [0]
    before = disk.load_array(fc.namespace, fc.keys[image])
    assert len(fc.cached[image]) == 1  # the edited box's old row, not the image's len(ks) rows
    np.testing.assert_array_equal(fc.cached[image][0, :4], old_box)
    pix[0], grids[0] = 1.0, 2.0  # "computed"
    fc.save(qs, pix, grids, [image])
    after = disk.load_array(fc.namespace, fc.keys[image])
    w = 4 + pix.shape[1]
    assert after.shape == (len(ks) + 1, before.shape[1])
    np.testing.assert_array_equal(after[0, :4], moved)
    assert (after[0, 4:w] == 1.0).all() and (after[0, w:] == 2.0).all()
    assert len(before) == len(ks)  # the cold pass wrote a row per box, in the order asked
    np.testing.assert_array_equal(after[1 : len(ks)], before[1:])
    np.testing.assert_array_equal(after[-1], before[0])  # the old row of the edited box, kept after the others
