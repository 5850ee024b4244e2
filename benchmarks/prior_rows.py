"""Dump the box model's feature rows of planted-noise copies of datasets, for the cross-dataset prior (issue #22).

    python benchmarks/prior_rows.py --dataset ../shared/datasets/{food-ingredients,...} --seed 0 --out /tmp/rows

For each dataset, :func:`planted_noise.plant_errors` makes the same noisy copy as ``label_noise.py`` (same seed
and rate), and the rows :func:`curate.audit.boxmodel.model.score_boxes` would fit on are described (the real
boxes of every split, then each bag member's own corrupted boxes; features from the on-disk cache when warm).
Written to ``<out>/<name>.npz``: the matrix, the feature names, each member's rows and labels, each row's image,
the image folds, and each real row's planted truth (so ``prior_lodo.py`` re-runs the cross-fit offline, with or
without the prior's columns, and scores the planted boxes as ``label_noise.py`` does).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label_noise import load_dataset  # noqa: E402

from curate.audit.boxmodel.corruptions import KINDS, _queries  # noqa: E402
from curate.audit.boxmodel.features import _features  # noqa: E402
from curate.core import defaults  # noqa: E402
from curate.core.folds import image_folds  # noqa: E402
from planted_noise import NOISE_TYPES, plant_errors  # noqa: E402

#: A real row's planted truth: its index in this tuple (0 untouched train box; -1 another split's box).
TRUTH = ("untouched", *NOISE_TYPES, "source")


def dump(source: Path, out: Path, *, seed: int, rate: float) -> Path:
    dataset = load_dataset(source)
    noisy, truth = plant_errors(dataset, rate=rate, seed=seed)
    drawn = [
        _queries(
            noisy, np.random.default_rng(seed + 101 * m), with_corruptions=True, share=defaults.BOXMODEL_CORRUPT_SHARE
        )
        for m in range(max(1, defaults.BOXMODEL_MEMBERS))
    ]
    boxes, classes = drawn[0][1], drawn[0][2]
    n_real = sum(len(r.labels) for r in noisy.images)
    union = list(drawn[0][0][:n_real])
    arrays: dict[str, np.ndarray] = {}
    for m, (qs_m, _, _) in enumerate(drawn):
        arrays[f"rows{m}"] = np.r_[0:n_real, len(union) : len(union) + len(qs_m) - n_real]
        arrays[f"y{m}"] = np.array([0 if q.kind == "ok" else 1 + KINDS.index(q.kind) for q in qs_m])
        union.extend(qs_m[n_real:])
    X, names = _features(noisy, union, boxes, classes, pixels=True, masks=None, progress=True)
    code = []
    for q in union[:n_real]:
        rec = noisy.images[q.image]
        t = truth.truth(rec.rel, rec.labels[q.line].line) if rec.split == "train" else None
        code.append(-1 if rec.split != "train" else TRUTH.index(t or "untouched"))
    path = out / f"{dataset.name}.npz"
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        X=X.astype(np.float32),
        names=np.array(names),
        image=np.array([q.image for q in union]),
        folds=image_folds(len(noisy.images), defaults.BOXMODEL_FOLDS, seed),
        truth=np.array(code),
        members=np.array(max(1, defaults.BOXMODEL_MEMBERS)),
        **arrays,
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for source in args.dataset:
        print(dump(source, args.out, seed=args.seed, rate=args.rate), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
