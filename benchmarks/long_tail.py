"""Swaps into rare classes on a long tail made from a pool dataset: does ``class_inconsistent`` judge them?

    python benchmarks/long_tail.py --dataset ../shared/datasets/food-ingredients --thin 12 --seeds 0 1 2

Why: of the seven pool datasets only traffic-signs-ro has many rare classes (< 5 boxes or < 3 images), and its ten
planted swaps a seed are too few to tell a rule from luck; users' exports often end in a long tail. Per seed,
``--thin`` classes (drawn at random) keep 1–4 of their boxes, one an image, and lose the rest (their objects stay in
the pictures, unlabelled: this measures ``class_inconsistent`` only); then ``--rate`` of train boxes are swapped
(:func:`planted_noise.plant_errors`, uniformly among the other classes, as ``label_noise.py`` plants them) and the
check runs on every split. Prints per seed the boxes labelled with rare classes, the swaps into them, their AP among
the rare-labelled boxes (the untouched ones negative), how many of each reach the listing threshold, and how many
listed swaps get a relabel proposal (:func:`curate.audit.proposals.class_share` ≥ ``MIN_CLASS_SHARE``) naming the
class the box had before the swap.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label_noise import load_dataset  # noqa: E402

from curate.audit.checks import class_inconsistent  # noqa: E402
from curate.audit.checks.base import AuditContext  # noqa: E402
from curate.audit.proposals import MIN_CLASS_SHARE, class_share  # noqa: E402
from curate.core import defaults  # noqa: E402
from curate.core.dataset import Dataset  # noqa: E402
from planted_noise import plant_errors  # noqa: E402


def thinned(dataset: Dataset, n_classes: int, seed: int) -> tuple[Dataset, dict[int, int]]:
    """``dataset`` with ``n_classes`` random classes cut to 1–4 boxes each (in distinct images); class → boxes kept."""
    rng = np.random.default_rng(100 + seed)
    present = sorted({lb.class_id for _, lb in dataset.boxes()})
    keep = {
        int(c): int(rng.integers(1, 5)) for c in rng.choice(present, size=min(n_classes, len(present)), replace=False)
    }
    kept: dict[int, set[tuple[int, int]]] = {c: set() for c in keep}
    for gi in rng.permutation(len(dataset.images)):
        for lb in dataset.images[gi].labels:
            c = lb.class_id
            if c in keep and len(kept[c]) < keep[c] and all(g != gi for g, _ in kept[c]):
                kept[c].add((int(gi), lb.line))
    images = [
        replace(r, labels=[lb for lb in r.labels if lb.class_id not in keep or (gi, lb.line) in kept[lb.class_id]])
        for gi, r in enumerate(dataset.images)
    ]
    return replace(dataset, images=images, name=f"{dataset.name}-thin{seed}"), keep


def score_seed(dataset: Dataset, n_classes: int, seed: int, rate: float) -> dict:
    ds, keep = thinned(dataset, n_classes, seed)
    noisy, truth = plant_errors(ds, rate=rate, types=("swapped",), seed=seed)
    before = {(r.rel, lb.cx, lb.cy, lb.w, lb.h): lb.class_id for r in ds.split("train") for lb in r.labels}
    labels = {(r.rel, lb.line): lb for r in noisy.images for lb in r.labels}
    findings = [f for f in class_inconsistent.run(AuditContext(noisy, seed=seed)) if f.split == "train"]
    threshold = defaults.THRESHOLDS[class_inconsistent.NAME]
    counts = noisy.instance_counts()
    images_of = {c: sum(any(lb.class_id == c for lb in r.labels) for r in noisy.images) for c in counts}
    rare_classes = {
        c
        for c in counts
        if counts[c] < class_inconsistent.MIN_CLASS_INSTANCES or images_of[c] < class_inconsistent.MIN_CLASS_IMAGES
    }
    rare = [f for f in findings if labels[(f.image, f.line)].class_id in rare_classes]
    swapped = [truth.truth(f.image, f.line) == "swapped" for f in rare]
    listed = [f for f, s in zip(rare, swapped) if s and f.score >= threshold]
    relabels = [f for f in listed if class_share(f.data) >= MIN_CLASS_SHARE]
    right = 0
    for f in relabels:
        lb = labels[(f.image, f.line)]
        right += ds.names[before[(f.image, lb.cx, lb.cy, lb.w, lb.h)]] == f.data["suggested"]
    from sklearn.metrics import average_precision_score

    return {
        "seed": seed,
        "thinned": keep,
        "rare boxes": len(rare),
        "swaps": truth.counts.get("swapped", 0),
        "into rare": sum(swapped),
        "AP": float(average_precision_score(swapped, [f.score for f in rare]))
        if 0 < sum(swapped) < len(rare)
        else None,
        "swaps listed": len(listed),
        "untouched listed": sum(not s and f.score >= threshold for f, s in zip(rare, swapped)),
        "untouched >= 0.5": sum(not s and f.score >= 0.5 for f, s in zip(rare, swapped)),
        "relabels": len(relabels),
        "relabels right": right,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", type=Path, required=True)
    parser.add_argument("--thin", type=int, default=12, help="classes cut to 1-4 boxes")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rate", type=float, default=0.03, help="share of train boxes swapped")
    args = parser.parse_args(argv)
    cols = ["rare boxes", "swaps", "into rare", "AP", "swaps listed", "untouched listed", "untouched >= 0.5",
            "relabels", "relabels right"]  # fmt: skip
    print("| dataset | seed | " + " | ".join(cols) + " |\n" + "|---" * (len(cols) + 2) + "|")
    for source in args.dataset:
        dataset = load_dataset(source)
        for seed in args.seeds:
            r = score_seed(dataset, args.thin, seed, args.rate)
            cells = ["—" if r[c] is None else f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
            print(f"| {dataset.name} | {seed} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
