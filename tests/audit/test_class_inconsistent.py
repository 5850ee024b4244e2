"""class_inconsistent on generated shapes: class 0 red squares, class 1 blue circles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from curate.audit.checks import class_inconsistent
from curate.audit.checks.base import AuditContext
from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.vision import embed


def _shapes_dataset(tmp_path: Path, *, swap: bool, n_images: int = 30, single_class: bool = False) -> Dataset:
    rng = np.random.default_rng(0)
    images = []
    for i in range(n_images):
        img = np.full((128, 128, 3), 200, np.uint8)
        labels = []
        for j, (cx, cy) in enumerate([(32, 32), (96, 32), (32, 96), (96, 96)]):
            cls = 0 if single_class else (j + i) % 2
            r = int(rng.integers(12, 18))
            if cls == 0:
                cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), (0, 0, 230), -1)
            else:
                cv2.circle(img, (cx, cy), r, (230, 0, 0), -1)
            labels.append(Label(cls, cx / 128, cy / 128, 2.2 * r / 128, 2.2 * r / 128, line=j + 1))
        if swap and i == 0:  # a blue circle labelled 'square'
            k = next(j for j, lb in enumerate(labels) if lb.class_id == 1)
            lb = labels[k]
            labels[k] = Label(0, lb.cx, lb.cy, lb.w, lb.h, line=lb.line)
        path = tmp_path / f"img{i:03d}.png"
        cv2.imwrite(str(path), img)
        images.append(ImageRecord("train", path, path.name, None, labels))
    return Dataset(tmp_path, "shapes", ["square", "circle"], images)


def test_swapped_box_scores_highest(tmp_path: Path) -> None:
    ds = _shapes_dataset(tmp_path, swap=True)
    findings = class_inconsistent.run(AuditContext(ds))
    assert len(findings) == ds.num_boxes
    swapped = next(f for f in findings if f.image == "img000.png" and f.data["p_label"] < 0.5)
    others = [f.score for f in findings if f is not swapped]
    assert swapped.score > max(others)
    assert swapped.score >= 0.5
    assert swapped.data["suggested"] == "circle"
    assert "looks like 'circle'" in swapped.message
    assert np.mean([s >= 0.5 for s in others]) <= 0.03


def test_clean_data_few_flags(tmp_path: Path) -> None:
    findings = class_inconsistent.run(AuditContext(_shapes_dataset(tmp_path, swap=False)))
    assert sum(f.score >= 0.5 for f in findings) <= 0.03 * len(findings)


def test_single_class_scores_zero_and_fast_does_not_run(tmp_path: Path) -> None:
    ds = _shapes_dataset(tmp_path, swap=False, n_images=6, single_class=True)
    findings = class_inconsistent.run(AuditContext(ds))
    assert len(findings) == ds.num_boxes and all(f.score == 0.0 for f in findings)
    assert class_inconsistent.skipped(AuditContext(ds, fast=True)) == "--fast"
    assert class_inconsistent.skipped(AuditContext(ds)) is None


def _mixture(rng: np.random.Generator, n: int = 3000, classes: int = 6, swapped: float = 0.02):
    """Out-of-fold probabilities of ``n`` boxes whose trees mostly know the true class, with ``swapped`` of
    the labels moved to another class: (probs, labels, is_swap)."""
    true = rng.integers(0, classes, n)
    alpha = np.ones((n, classes))
    alpha[np.arange(n), true] = rng.uniform(1.0, 12.0, n)  # some boxes look typical, some don't
    probs = np.vstack([rng.dirichlet(a) for a in alpha])
    is_swap = rng.random(n) < swapped
    labels = np.where(is_swap, (true + rng.integers(1, classes, n)) % classes, true)
    return probs, labels, is_swap


def test_swap_probability_is_calibrated_at_the_prior() -> None:
    """Scores read as probabilities: their sum is about the number of swaps, what reaches 0.5 is mostly
    swaps, and no more than ~2 × prior of the boxes can reach 0.5; decreasing in the label's probability."""
    probs, labels, is_swap = _mixture(np.random.default_rng(0))
    judged = np.ones(len(labels), bool)
    score = class_inconsistent.swap_probability(probs, labels, judged, 0.02)
    assert score.min() >= 0.0 and score.max() <= 1.0
    own = probs[np.arange(len(labels)), labels]
    order = np.argsort(own)
    assert np.all(np.diff(score[order]) <= 1e-12)
    assert 0.6 * is_swap.sum() <= score.sum() <= 1.6 * is_swap.sum()
    flagged = score >= 0.5
    assert flagged.mean() <= 0.04 and is_swap[flagged].mean() >= 0.8
    judged[:100] = False  # a class too rare to judge scores 0
    assert np.all(class_inconsistent.swap_probability(probs, labels, judged, 0.02)[:100] == 0.0)


def test_labels_the_trees_cannot_learn_are_not_flagged(tmp_path: Path) -> None:
    """30 classes given at random to identical red squares: the trees cannot tell them apart, so a box's
    own label often gets probability 0 — as any other label would. That is no evidence of a swap: every
    score stays near the prior and nothing is flagged (a cap on the share flagged put the least typical 5 %
    of such boxes at 0.5–1.0, above every real error in the worst-first list)."""
    ds = _shapes_dataset(tmp_path, swap=False, n_images=60, single_class=True)
    rng = np.random.default_rng(3)
    ds.names.extend(f"sign{k}" for k in range(28))
    for record in ds.images:
        record.labels = [
            Label(int(rng.integers(0, 30)), lb.cx, lb.cy, lb.w, lb.h, line=lb.line) for lb in record.labels
        ]
    findings = class_inconsistent.run(AuditContext(ds))
    assert max(f.score for f in findings) < 0.5
    assert np.mean([f.score for f in findings]) <= 0.05


def _xor_dataset(tmp_path: Path, *, n_images: int = 40) -> tuple[Dataset, int]:
    """Class 0: red squares and blue circles; class 1: blue squares and red circles. Neither colour nor
    shape alone tells the classes apart, only the two together. One red square of img000.png is labelled
    1: the dataset and that box's line."""
    rng = np.random.default_rng(1)
    images = []
    wrong = 0
    for i in range(n_images):
        img = np.full((128, 128, 3), 200, np.uint8)
        labels = []
        for j, (cx, cy) in enumerate([(32, 32), (96, 32), (32, 96), (96, 96)]):
            red, square = bool((i + j) % 2), bool((i // 2 + j // 2) % 2)
            colour = (0, 0, 230) if red else (230, 0, 0)
            r = int(rng.integers(12, 18))
            if square:
                cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
            else:
                cv2.circle(img, (cx, cy), r, colour, -1)
            cls = 0 if red == square else 1
            if i == 0 and red and square and not wrong:
                cls, wrong = 1, j + 1
            labels.append(Label(cls, cx / 128, cy / 128, 2.2 * r / 128, 2.2 * r / 128, line=j + 1))
        path = tmp_path / f"img{i:03d}.png"
        cv2.imwrite(str(path), img)
        images.append(ImageRecord("train", path, path.name, None, labels))
    assert wrong, "img000.png holds no red square"
    return Dataset(tmp_path, "xor", ["red-square-or-blue-circle", "blue-square-or-red-circle"], images), wrong


def test_classes_told_apart_by_a_combination_of_features(tmp_path: Path) -> None:
    """Classes defined by colour and shape together: the mislabelled red square ranks first and is flagged
    (≥ 0.5), and at most one other box is. (The logistic regression this check used before ranked it
    first too, at 0.44.)"""
    ds, line = _xor_dataset(tmp_path)
    findings = class_inconsistent.run(AuditContext(ds))
    worst = max(findings, key=lambda f: f.score)
    assert (worst.image, worst.line) == ("img000.png", line)
    assert worst.score >= 0.5
    assert sum(f.score >= 0.5 for f in findings) <= 2


def test_class_seen_in_two_images_is_not_judged(tmp_path: Path) -> None:
    """All 8 'triangle' boxes sit in two images (a shelf of one product): held out by image, the model has
    hardly seen the class, so its boxes must not be flagged as swapped (8 boxes: the < 5 rule doesn't apply)."""
    ds = _shapes_dataset(tmp_path, swap=False)
    ds.names.append("triangle")
    for record in ds.images[:2]:
        record.labels = [Label(2, lb.cx, lb.cy, lb.w, lb.h, line=lb.line) for lb in record.labels]
    findings = class_inconsistent.run(AuditContext(ds))
    tri = [f for f in findings if f.image in {r.rel for r in ds.images[:2]}]
    assert len(tri) == 8 and all(f.score < 0.5 and "rare" in f.message for f in tri)


def test_whole_class_of_an_image_flagged_alike_is_discounted(tmp_path: Path) -> None:
    """Every box of a class in an image flagged → consistent labelling, not a swap; one odd box → kept."""

    def rec(name: str, classes: list[int]) -> ImageRecord:
        return ImageRecord(
            "train",
            tmp_path / name,
            name,
            None,
            [Label(c, 0.2 + 0.2 * i, 0.5, 0.1, 0.1, line=i + 1) for i, c in enumerate(classes)],
        )

    shelf, mixed = rec("shelf.jpg", [0, 0, 0]), rec("mixed.jpg", [0, 0, 1])
    boxes = [(shelf, lb) for lb in shelf.labels] + [(mixed, lb) for lb in mixed.labels]
    scores = np.array([0.9, 0.8, 0.7, 0.9, 0.1, 0.95])
    rare = np.zeros(len(boxes), bool)
    assert class_inconsistent.consistent_groups(boxes, scores, rare) == {0: 3, 1: 3, 2: 3}
    rare[:3] = True  # a class too rare to judge is left alone (its score is 0 anyway)
    assert class_inconsistent.consistent_groups(boxes, scores, rare) == {}
    # a discounted box never reaches the default threshold
    assert 1.0 * class_inconsistent.CONSISTENT_FACTOR < defaults.THRESHOLDS["class_inconsistent"]


def _fine_texture_dataset(tmp_path: Path, classes=None) -> Dataset:
    """30 images of four 64-px boxes, each a 1-px grey checkerboard (look 0) or flat grey of the same mean (look 1).
    ``classes(i, j, look)`` labels box j of image i; by default class 0 is the checkerboard, class 1 the flat grey,
    and one checkerboard is labelled plain. The hand-made features see each crop at 32 px, where the checkerboard
    averages to flat grey; the pretrained embedding sees it at 64 px."""
    if classes is None:
        classes = lambda i, j, look: 1 if (i, j) == (0, 0) else look  # noqa: E731
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    checker = np.where((yy + xx) % 2 == 0, 70, 190)[..., None]
    images = []
    for i in range(30):
        img = rng.normal(128, 3, (256, 256, 3)).clip(0, 255).astype(np.uint8)
        labels = []
        for j, (cx, cy) in enumerate([(64, 64), (192, 64), (64, 192), (192, 192)]):
            look = (j + i) % 2
            patch = (checker if look == 0 else np.full((64, 64, 1), 130)) + rng.integers(-10, 10, 3)
            img[cy - 32 : cy + 32, cx - 32 : cx + 32] = patch.clip(0, 255).astype(np.uint8)
            labels.append(Label(classes(i, j, look), cx / 256, cy / 256, 0.25, 0.25, line=j + 1))
        path = tmp_path / f"img{i:03d}.png"
        cv2.imwrite(str(path), img)
        images.append(ImageRecord("train", path, path.name, None, labels))
    return Dataset(tmp_path, "fine", ["checked", "plain"], images)


EMBEDDINGS_ON = {"class_inconsistent": {"embeddings": True}}


def test_pretrained_embedding_finds_a_swap_the_hand_made_features_cannot_see(tmp_path: Path) -> None:
    findings = class_inconsistent.run(AuditContext(_fine_texture_dataset(tmp_path), params=EMBEDDINGS_ON))
    swapped = next(f for f in findings if f.image == "img000.png" and f.line == 1)
    assert swapped.score >= 0.5
    assert swapped.score > max(f.score for f in findings if f is not swapped)
    assert swapped.data["suggested"] == "checked"


def test_knn_votes_come_from_other_images_only() -> None:
    E = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 1]]  # boxes 0, 1 alike; 2, 3, 4 alike
    y = np.array([0, 0, 1, 1, 1])
    votes = class_inconsistent.knn_votes(E, y, np.array([0, 0, 1, 2, 3]), 2, k=2)
    assert votes[0].tolist() == [0.0, 1.0]  # box 1 shares its image: not a neighbour
    assert votes[2].tolist() == [0.0, 1.0]


def test_embeddings_skipped_above_the_box_cap_and_when_off(tmp_path: Path, monkeypatch) -> None:
    ds = _fine_texture_dataset(tmp_path)
    off = class_inconsistent.run(AuditContext(ds, params={"class_inconsistent": {"embeddings": False}}))
    monkeypatch.setattr(class_inconsistent, "EMBED_MAX_BOXES", 100)  # the dataset holds 120
    capped = class_inconsistent.run(AuditContext(ds, params=EMBEDDINGS_ON))
    for findings in (off, capped):
        swapped = next(f for f in findings if f.image == "img000.png" and f.line == 1)
        assert swapped.score < 0.5  # the hand-made features alone cannot see the checkerboard


def test_auto_uses_the_embeddings_where_their_neighbours_name_the_classes() -> None:
    """``auto`` reads the backbone's leave-image-out neighbour votes: the embeddings are used where they name the
    label of at least EMBED_MIN_KNN_ACCURACY of the judged boxes (boxes of rare classes are not counted)."""
    y = np.array([0, 0, 1, 1, 2])
    right = np.eye(3)[[0, 0, 1, 1, 0]]  # box 4 (class 2) is voted class 0
    judged = np.array([True, True, True, True, False])
    assert class_inconsistent.knn_accuracy(right, y, judged) == 1.0
    assert class_inconsistent.embeddings_help(right, y, judged)
    wrong = np.eye(3)[[0, 1, 0, 1, 0]]  # two of the four judged boxes voted their label
    assert class_inconsistent.knn_accuracy(wrong, y, judged) == 0.5
    assert not class_inconsistent.embeddings_help(wrong, y, judged)
    assert class_inconsistent.knn_accuracy(right, y, np.zeros(5, bool)) == 0.0


EMBEDDINGS_AUTO = {"class_inconsistent": {"embeddings": "auto"}}


def test_auto_by_default_uses_the_embeddings_the_backbone_knows(tmp_path: Path) -> None:
    """The checkerboards only the embedding sees: ``auto``, the default, finds the swap, as ``embeddings: true``
    does."""
    ds = _fine_texture_dataset(tmp_path)
    auto = class_inconsistent.run(AuditContext(ds))
    on = class_inconsistent.run(AuditContext(ds, params=EMBEDDINGS_ON))
    assert [f.score for f in auto] == [f.score for f in on]
    swapped = next(f for f in auto if f.image == "img000.png" and f.line == 1)
    assert swapped.score >= 0.5 and swapped.data["suggested"] == "checked"


def test_auto_without_the_weights_uses_the_hand_made_features(tmp_path: Path, monkeypatch) -> None:
    """No backbone weights: ``auto`` (the user asked for nothing) scores as ``false`` does; ``true`` (asked for)
    stops with the one-line error naming the path."""

    ds = _fine_texture_dataset(tmp_path)
    off = class_inconsistent.run(AuditContext(ds, params={"class_inconsistent": {"embeddings": False}}))
    monkeypatch.setenv("CURATE_EMBED_WEIGHTS", str(tmp_path / "absent.pt"))
    embed.backbone.cache_clear()
    try:
        auto = class_inconsistent.run(AuditContext(ds, params=EMBEDDINGS_AUTO))
        assert [f.score for f in auto] == [f.score for f in off]
        with pytest.raises(embed.MissingWeights, match="absent.pt"):
            class_inconsistent.run(AuditContext(ds, params=EMBEDDINGS_ON))
    finally:
        embed.backbone.cache_clear()


def _rare_classes_dataset(tmp_path: Path, *, triangles: int, rings: int) -> tuple[Dataset, int]:
    """The shapes dataset (red squares, blue circles) with two rare classes, ``triangles`` green triangles and
    ``rings`` yellow rings (the first box of images 1, 2, ...), and one blue circle of img000.png labelled 'triangle'
    (a swap into a rare class): the dataset and that box's line."""
    tmp_path.mkdir(exist_ok=True)
    ds = _shapes_dataset(tmp_path, swap=False)
    ds.names += ["triangle", "ring"]
    for n, cls in enumerate([2] * triangles + [3] * rings, start=1):
        record = ds.images[n]
        img = cv2.imread(str(record.path))
        lb = record.labels[0]
        cx, cy, r = round(lb.cx * 128), round(lb.cy * 128), round(lb.w * 128 / 2.2)
        cv2.rectangle(img, (cx - r - 1, cy - r - 1), (cx + r + 1, cy + r + 1), (200, 200, 200), -1)
        if cls == 2:
            cv2.fillPoly(img, [np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)], (0, 200, 0))
        else:
            cv2.circle(img, (cx, cy), r, (0, 220, 220), 4)
        cv2.imwrite(str(record.path), img)
        record.labels[0] = Label(cls, lb.cx, lb.cy, lb.w, lb.h, line=lb.line)
    first = ds.images[0]
    k = next(j for j, lb in enumerate(first.labels) if lb.class_id == 1)
    lb = first.labels[k]
    first.labels[k] = Label(2, lb.cx, lb.cy, lb.w, lb.h, line=lb.line)
    return ds, lb.line


def test_swap_into_a_rare_class_is_judged_by_the_common_classes(tmp_path: Path) -> None:
    """A blue circle labelled 'triangle' (a class of 4 boxes: too rare to learn) looks exactly like the circles: it
    is flagged and names 'circle'; the right triangles and rings, which look like no common class, are not listed.
    With only one other rare box there is nothing to calibrate against: the swap keeps the rare-class note."""
    ds, line = _rare_classes_dataset(tmp_path, triangles=3, rings=3)
    findings = class_inconsistent.run(AuditContext(ds))
    swapped = next(f for f in findings if f.image == "img000.png" and f.line == line)
    assert swapped.score >= 0.5
    assert swapped.data["suggested"] == "circle"
    assert "rare class" in swapped.message
    right = [f for f in findings if f.image in {r.rel for r in ds.images[1:7]} and f.line == 1]
    assert len(right) == 6 and all(f.score < defaults.THRESHOLDS["class_inconsistent"] for f in right)
    assert swapped.score > max(f.score for f in findings if f is not swapped)

    ds, line = _rare_classes_dataset(tmp_path / "few", triangles=1, rings=0)
    findings = class_inconsistent.run(AuditContext(ds))
    swapped = next(f for f in findings if f.image == "img000.png" and f.line == line)
    assert swapped.score == 0.0 and "too rare to judge" in swapped.message


def test_forest_chunks_side_by_side_give_the_same_bits() -> None:
    """The tree chunks grown in a thread pool sum their votes in chunk order: the same probabilities to the last bit
    as one chunk after another (the check's scores must not depend on which thread finished first)."""
    from concurrent.futures import ThreadPoolExecutor
    from hashlib import sha256

    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 12)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + 2 * (X[:, 2] > 1)  # classes 0-3, class 3 rare
    X_test = rng.normal(size=(200, 12)).astype(np.float32)
    alone = class_inconsistent.forest_probs(X, y, X_test, 5, seed=7)
    with ThreadPoolExecutor(max_workers=3) as pool:
        pooled = class_inconsistent.forest_probs(X, y, X_test, 5, seed=7, pool=pool)
    assert sha256(pooled.tobytes()).hexdigest() == sha256(alone.tobytes()).hexdigest()


needs_weights = pytest.mark.skipif(
    not embed.weights_path().is_file(), reason=f"embedding weights not at {embed.weights_path()}"
)


@needs_weights
def test_embeddings_made_in_a_child_process_are_the_numbers_made_here(tmp_path: Path, monkeypatch) -> None:
    """The runner starts the crop embeddings in a child process (torch alone holds ~0.66 GB of its process until
    it ends, issue #25's 2 GB limit); what comes back is what this process makes, to the bit."""
    from curate.audit.shared import CropEmbeddings

    ds = _fine_texture_dataset(tmp_path)
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "child-cache"))
    ctx = AuditContext(ds)
    shared = ctx.use(CropEmbeddings)
    shared.start(ctx)
    assert shared._job is not None and shared._job.proc.pid != __import__("os").getpid()
    from_child = shared.get(ctx)
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "here-cache"))  # not the child's cached arrays
    here = embed.dataset_embeddings(ds, progress=False)
    assert len(from_child) == len(here) == len(ds.images)
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(from_child, here))


@needs_weights
def test_a_full_audit_never_imports_torch_in_its_own_process(tmp_path: Path) -> None:
    """class_inconsistent uses the embeddings on the bundled sample (auto, 230 boxes), and the audit's process
    still never imports torch: the child made them."""
    import subprocess
    import sys

    code = (
        "import sys; from curate.io.yolo import load_yolo; from curate.audit.runner import run_audit; "
        "from curate.runtime.env import REPO; "
        "run_audit(load_yolo(REPO / 'curate' / 'sample' / 'food-mini'), "
        f"out_dir={str(tmp_path / 'out')!r}, only={{'class_inconsistent'}}, fiftyone=False, report=False); "
        "print('torch' in sys.modules)"
    )
    env = {**__import__("os").environ, "CURATE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert list((tmp_path / "cache" / "embed").rglob("*.npy"))  # the child made and cached them


def _unlearnt_class(rng: np.random.Generator, n_images: int = 120):
    """Out-of-fold tree probabilities of three classes, one box an image: A and B learnt, C never named (its right
    boxes spread their probability over A and B alike), and one box of A labelled C: (probs, labels, groups, swap)."""
    labels = rng.integers(0, 3, n_images)
    centre = {0: [0.85, 0.15, 0.0], 1: [0.15, 0.85, 0.0], 2: [0.5, 0.5, 0.0]}
    probs = np.array([centre[int(c)] for c in labels]) + rng.normal(0, 0.03, (n_images, 3))
    probs[:, 2] = 0.0
    swap = int(np.flatnonzero(labels == 0)[0])
    labels[swap] = 2
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum(axis=1, keepdims=True), labels, np.arange(n_images), swap


def test_a_swap_into_a_class_the_trees_never_name_is_told_apart_by_the_second_stage() -> None:
    """Every box of C gets probability 0 of C from the trees, so the self-confidence ties the swap with C's right
    boxes; the second stage learns that right C boxes look half A, half B, and puts the swap (all A) first."""
    probs, labels, groups, swap = _unlearnt_class(np.random.default_rng(0))
    judged = np.ones(len(labels), bool)
    assert class_inconsistent.trees_accuracy(probs, labels, judged) < class_inconsistent.RESTACK_BELOW_ACCURACY
    of_c = np.flatnonzero((labels == 2) & (np.arange(len(labels)) != swap))
    trees = class_inconsistent.swap_probability(probs, labels, judged, 0.02)
    assert trees[swap] <= trees[of_c].max()  # the trees' own probability: a tie at best
    second = class_inconsistent.restacked_probs(probs, labels, groups, 3)
    assert np.allclose(second.sum(axis=1), 1.0)
    assert second[swap, 2] < second[of_c, 2].min()
    score = class_inconsistent.swap_probability(second, labels, judged, 0.02)
    assert score[swap] > score[of_c].max()
    assert (score + trees)[swap] > (score + trees)[of_c].max()  # run() averages the two views: still first


def test_trees_accuracy_is_the_share_of_judged_boxes_named_right() -> None:
    probs = np.eye(3)[[0, 1, 1, 2]]
    labels = np.array([0, 1, 2, 0])
    assert class_inconsistent.trees_accuracy(probs, labels, np.ones(4, bool)) == 0.5
    assert class_inconsistent.trees_accuracy(probs, labels, np.array([True, True, False, False])) == 1.0
    assert class_inconsistent.trees_accuracy(probs, labels, np.zeros(4, bool)) == 0.0


def _little_to_learn(n: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features that hold a trace of four classes: the trees name few of the labels (the second stage's gate)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, n)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[:, 0] += 0.8 * y
    return X, y, np.arange(n)


def test_more_trees_are_the_trees_of_one_larger_forest(monkeypatch) -> None:
    """The trees added where the trees learn little are drawn as the later chunks of one forest: the first fit's
    probabilities weighted with theirs are that forest's to rounding, so no tree already grown is grown again."""
    monkeypatch.setattr(class_inconsistent, "FOREST_TREES", 50)
    monkeypatch.setattr(class_inconsistent, "FOREST_TREES_UNLEARNT", 100)
    X, y, groups = _little_to_learn()
    first = class_inconsistent.out_of_fold_probs(X, y, groups, 4, seed=3)
    more = class_inconsistent.more_trees(first, X, y, groups, 4, seed=3)
    whole = class_inconsistent.out_of_fold_probs(X, y, groups, 4, seed=3, chunks=range(4))
    assert np.allclose(more, whole, atol=1e-12) and not np.allclose(more, first)


def test_where_the_trees_learn_little_more_trees_steady_the_labels_probability(monkeypatch) -> None:
    """The probability of a box's own label is a share of votes; where the trees learn little, which few votes a box
    gets is the trees' draw. Four times the trees halve how much another random state moves it."""
    monkeypatch.setattr(class_inconsistent, "FOREST_TREES", 50)
    monkeypatch.setattr(class_inconsistent, "FOREST_TREES_UNLEARNT", 200)
    X, y, groups = _little_to_learn()
    own = np.arange(len(y)), y
    first = [class_inconsistent.out_of_fold_probs(X, y, groups, 4, seed=s) for s in (0, 1)]
    assert class_inconsistent.trees_accuracy(first[0], y, np.ones(len(y), bool)) < 0.8
    more = [class_inconsistent.more_trees(p, X, y, groups, 4, seed=s) for s, p in zip((0, 1), first)]
    assert np.abs(more[0][own] - more[1][own]).mean() < 0.7 * np.abs(first[0][own] - first[1][own]).mean()


def test_more_trees_grow_fewer_on_many_boxes(monkeypatch) -> None:
    """The extra trees' cost is bounded: on as many boxes as UNLEARNT_TREE_BOXES / FOREST_TREES, the first trees are
    all there is (a large dataset the trees learn little of would otherwise pay 8 times its forest)."""
    monkeypatch.setattr(class_inconsistent, "FOREST_TREES", 50)
    monkeypatch.setattr(class_inconsistent, "FOREST_TREES_UNLEARNT", 200)
    X, y, groups = _little_to_learn()
    first = class_inconsistent.out_of_fold_probs(X, y, groups, 4, seed=3)
    monkeypatch.setattr(class_inconsistent, "UNLEARNT_TREE_BOXES", 50 * len(y))
    assert class_inconsistent.more_trees(first, X, y, groups, 4, seed=3) is first
    monkeypatch.setattr(class_inconsistent, "UNLEARNT_TREE_BOXES", 100 * len(y))  # 100 trees: the first two chunks
    more = class_inconsistent.more_trees(first, X, y, groups, 4, seed=3)
    assert np.allclose(more, class_inconsistent.out_of_fold_probs(X, y, groups, 4, seed=3, chunks=range(4)))


OWN_ON = {"class_inconsistent": {"embeddings": False, "own_crops": True}}
OWN_OFF = {"class_inconsistent": {"embeddings": False, "own_crops": False}}


def test_the_crops_own_classifier_finds_a_swap_the_hand_made_features_cannot_see(tmp_path: Path) -> None:
    """The checkerboards without the pretrained embeddings: the hand-made features miss the swap, the classifier
    trained on the dataset's own crops (out of fold) finds it."""
    ds = _fine_texture_dataset(tmp_path)
    for params, found in ((OWN_OFF, False), (OWN_ON, True)):
        findings = class_inconsistent.run(AuditContext(ds, params=params))
        swapped = next(f for f in findings if f.image == "img000.png" and f.line == 1)
        assert (swapped.score >= 0.5) is found
        if found:
            assert swapped.score > max(f.score for f in findings if f is not swapped)


def test_auto_trains_on_the_own_crops_only_where_the_backbone_does_not_know_them(tmp_path: Path, monkeypatch) -> None:
    """``own_crops: auto`` (the default): off where the pretrained embeddings name the classes (the checkerboards:
    the same scores as ``false``), on where they do not (here made so by an unreachable gate: as ``true``)."""
    ds = _fine_texture_dataset(tmp_path)
    scores = {}
    for name, own in (("auto", "auto"), ("off", False), ("on", True)):
        params = {"class_inconsistent": {"embeddings": "auto", "own_crops": own}}
        scores[name] = [f.score for f in class_inconsistent.run(AuditContext(ds, params=params))]
    assert scores["auto"] == scores["off"] != scores["on"]
    monkeypatch.setattr(class_inconsistent, "EMBED_MIN_KNN_ACCURACY", 1.01)  # the backbone "does not know" them
    auto = class_inconsistent.run(AuditContext(ds))
    on = class_inconsistent.run(AuditContext(ds, params=OWN_ON))
    assert [f.score for f in auto] == [f.score for f in on]


def test_a_second_audit_of_the_same_data_reads_the_own_crop_probabilities_from_the_cache(
    tmp_path: Path, monkeypatch
) -> None:
    """The crop classifier trains once: a re-audit of unchanged data reads its out-of-fold probabilities from the
    cache (the same findings, no training); one label edited anywhere trains again (every box's probabilities
    depend on the other images' labels)."""
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    trained = []
    train = class_inconsistent._trained_own_crop_probs

    def counted(*args, **kwargs):
        trained.append(1)
        return train(*args, **kwargs)

    monkeypatch.setattr(class_inconsistent, "_trained_own_crop_probs", counted)
    (tmp_path / "images").mkdir()
    ds = _fine_texture_dataset(tmp_path / "images")
    first = class_inconsistent.run(AuditContext(ds, params=OWN_ON))
    second = class_inconsistent.run(AuditContext(ds, params=OWN_ON))
    assert len(trained) == 1
    assert [(f.score, f.message) for f in first] == [(f.score, f.message) for f in second]
    labels = ds.images[-1].labels
    labels[-1] = dataclasses.replace(labels[-1], class_id=1 - labels[-1].class_id)
    class_inconsistent.run(AuditContext(ds, params=OWN_ON))
    assert len(trained) == 2
