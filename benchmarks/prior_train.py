"""Train the box model's cross-dataset prior (:mod:`curate.audit.boxmodel.prior`) and write it into the package.

    python benchmarks/prior_rows.py --dataset ../shared/datasets/{food-ingredients,epicureai,bccd-blood-cells,\\
        football-players,construction-ppe,traffic-signs-ro,potholes-road} --seed 0 --out /tmp/rows
    python benchmarks/prior_train.py --rows /tmp/rows            # → curate/audit/boxmodel/prior.npz

The same rows and model as ``prior_lodo.py``'s leave-one-dataset-out test, trained on every dataset in
``--rows``: each dataset's real boxes as "ok" (the planted ones of the noisy copy left out) and the box model's
synthetic loose/shifted/grouped boxes, at most ``--per-kind`` of each kind per dataset (3× of ok), so a large
dataset weighs no more than a small one. Deterministic for given rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prior_lodo import fit_prior, invariant, load_rows, prior_rows  # noqa: E402

from curate.audit.boxmodel import prior  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=Path, required=True, help="prior_rows.py's folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=1500)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--out", type=Path, default=prior.PRIOR_PATH)
    args = parser.parse_args(argv)
    data = load_rows(args.rows)
    names = [str(n) for n in next(iter(data.values()))["names"]]
    cols = invariant(names)
    rng = np.random.default_rng(args.seed)
    parts = [prior_rows(d, cols, args.per_kind, rng) for d in data.values()]
    X, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    model = fit_prior(X, y, args.iterations)
    np.savez_compressed(
        args.out,
        version=np.array(prior.VERSION),
        names=np.array([n for n, c in zip(names, cols) if c]),
        trained_on=np.array(sorted(data)),
        **model.to_arrays(),
    )
    print(
        f"{args.out}: {len(y)} rows of {len(data)} datasets, {int(cols.sum())} features, "
        f"{args.out.stat().st_size / 1e6:.2f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
