"""The mean over seeds of :mod:`rerank`'s splice: one check's re-run dumps put into the full dumps of several seeds.

    python benchmarks/rerank_seeds.py --full /work/s18/pool-s{0,1,2} --before reports/ci-main --after reports/ci-new

Why: the house rule of issue #22 is read on the mean of seeds 0-2 per dataset, and ``rerank.py`` prints one table
per seed at two decimals. ``--before`` and ``--after`` are folders of ``label_noise.py --checks X --dump`` pickles
(every seed in one folder, ``<dataset>-seed<N>.pkl``); each is spliced into the ``--full`` folder holding that
seed's dump (``rerank.replace_checks``, scored by ``rerank.measure``), and the seeds are averaged per dataset.
Prints per dataset and column ``before → after`` at three decimals, then the mean and the worst dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rerank  # noqa: E402


def averaged(full: list[Path], new: list[Path], checks: set[str]) -> dict[str, dict[str, float]]:
    """dataset → column → mean over the seeds found, of ``new``'s checks spliced into ``full``'s dumps."""
    per: dict[str, dict[str, list[float]]] = {}
    for folder in full:
        for path in sorted(folder.glob("*-seed*.pkl")):
            for other in new:
                if not (other / path.name).exists():
                    continue
                dump = rerank.load_dump(path)
                found = rerank.replace_checks(dump, rerank.load_dump(other / path.name), checks, path.name)
                name = path.name.rsplit("-seed", 1)[0]
                for col, value in rerank.measure(dump, found).items():
                    per.setdefault(name, {}).setdefault(col, []).append(value)
    return {name: {c: float(np.mean(v)) for c, v in cols.items()} for name, cols in per.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", type=Path, nargs="+", required=True, help="folders of full dumps, one per seed")
    parser.add_argument("--before", type=Path, nargs="+", required=True, help="folders of the re-run check's dumps")
    parser.add_argument("--after", type=Path, nargs="+", required=True, help="the same for the changed code")
    parser.add_argument("--checks", nargs="+", default=["class_inconsistent"])
    parser.add_argument("--kinds", nargs="+", default=list(rerank.ln.BOX_TYPES), choices=rerank.ln.BOX_TYPES)
    parser.add_argument("--baseline", action="store_true", help="add the naive baseline's AP")
    args = parser.parse_args(argv)
    before = averaged(args.full, args.before, set(args.checks))
    after = averaged(args.full, args.after, set(args.checks))
    if set(before) != set(after):
        parser.error(f"the two runs hold different datasets: {sorted(set(before) ^ set(after))}")
    alone = [k for k in args.kinds if rerank.ln.TYPE_TO_CHECK[k] in args.checks]
    print(rerank.table(before, after, rerank.columns(args.kinds, alone, args.baseline, False), digits=3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
