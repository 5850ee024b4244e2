"""Run-to-run noise of `class_inconsistent`'s score: the same planted data, only the check's own randomness changed.

    python benchmarks/swap_noise.py run --dataset ../shared/datasets/food-ingredients --seed 0 --runs 8 \\
        --out reports/swapnoise
    python benchmarks/swap_noise.py table --out reports/swapnoise --full /work/s22/pool-s0
    python benchmarks/swap_noise.py replay --dataset ../shared/datasets/food-ingredients --seed 0 \\
        --out reports/swapnoise
    python benchmarks/swap_noise.py compare --out reports/swapnoise --full /work/s23/pool-s0

Why: a change of 6e-7 in a few crop embeddings moved football-players' swap scores by up to 0.46 (benchmarks/README.md,
session 22), so part of each box's P(swap) is the model's own randomness (the extra trees' draws, the randomized PCA of
the embeddings), not the data. If the mean of K runs ranks the planted swaps better than one run, that noise costs AP.

``run`` plants ``--seed``'s errors once (every type, as the pool dumps do), then runs the check ``--runs`` times on
the same audit context (crop features and embeddings computed once), run ``r`` with the check's seed
``seed + OFFSET * r`` (run 0 is the check as shipped): every random state it uses (the trees' chunks, the PCA) moves,
nothing else. Each run's findings are written as a ``label_noise.py --dump`` pickle
(``<out>/run<r>/<name>-seed<N>.pkl``), and the trees' out-of-fold probabilities of every run
to ``<out>/<name>-seed<N>-trees.npz`` (where the check grows more trees, :func:`class_inconsistent.more_trees`, both
fits of each run, one after the other: ``pooled`` reads one fit a run, so run it on dumps of 200-tree runs).

``table`` reads them: per dataset the per-box std of the score over runs (mean and max over train boxes), the mean
Spearman correlation between two runs (all train boxes, and the boxes whose mean score is ≥ 0.05), the swapped AP of the
check alone per run, and the AP of the mean score of K runs (K = 2, 4, 8: the runs cut into groups of K, the groups'
APs averaged); with ``--full`` (the lead's dumps of every check) also the merged swapped AP the same way.

``replay`` re-runs the check as the code now is on each run's saved tree probabilities, and ``compare`` scores those
dumps against ``run``'s, run by run (every merged kind, the check alone, false flags; mean over runs, then seeds): a
change after the trees, such as the calibration, measured in expectation over the same random states, paired.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import label_noise as ln  # noqa: E402
import rerank  # noqa: E402

from curate.audit.checks import class_inconsistent as cic  # noqa: E402
from curate.audit.checks.base import AuditContext  # noqa: E402
from curate.core.findings import Finding  # noqa: E402
from planted_noise import NOISE_TYPES, plant_errors  # noqa: E402

OFFSET = 1000  # run r uses the check's seed + OFFSET * r (the trees' random states are seed * 1000 + chunk)
CHECK = cic.NAME


def run(source: Path, seed: int, runs: int, out: Path, rate: float) -> None:
    dataset = ln.load_dataset(source)
    noisy, truth = plant_errors(dataset, rate=rate, types=tuple(NOISE_TYPES), seed=seed)
    ctx = AuditContext(noisy, seed=seed)
    trees: list[np.ndarray] = []
    shipped = cic.out_of_fold_probs

    def recorded(*args, **kwargs):  # the trees' probabilities of this run, kept for offline variants
        p = shipped(*args, **kwargs)
        trees.append(p)
        return p

    cic.out_of_fold_probs = recorded
    try:
        for r in range(runs):
            ctx.seed = seed + OFFSET * r
            findings = cic.run(ctx)
            ln.dump_seed(out / f"run{r}" / f"{dataset.name}-seed{seed}.pkl", noisy, truth, findings)
            print(f"{dataset.name} seed {seed} run {r}: {len(findings)} findings", flush=True)
    finally:
        cic.out_of_fold_probs = shipped
    np.savez_compressed(out / f"{dataset.name}-seed{seed}-trees.npz", *trees)


def pooled(source: Path, seed: int, out: Path, rate: float) -> None:
    """The check's scores from the MEAN of K runs' tree probabilities (K = 1, 2, 4, 8; the runs cut into groups of K),
    the rest of the check as shipped: what K × FOREST_TREES trees would give (where the embeddings are on, each run's
    trees also saw another PCA of them). Written as dumps to ``<out>/pool<K>-<g>/``."""
    dataset = ln.load_dataset(source)
    noisy, truth = plant_errors(dataset, rate=rate, types=tuple(NOISE_TYPES), seed=seed)
    ctx = AuditContext(noisy, seed=seed)
    with np.load(out / f"{dataset.name}-seed{seed}-trees.npz") as z:
        trees = [z[f"arr_{i}"] for i in range(len(z.files))]
    shipped = cic.out_of_fold_probs
    try:
        for k in (1, 2, 4, 8):
            for g in range(0, len(trees) - k + 1, k):
                mean = np.mean(trees[g : g + k], axis=0)
                cic.out_of_fold_probs = lambda *a, _m=mean, **kw: _m
                findings = cic.run(ctx)
                ln.dump_seed(out / f"pool{k}-{g // k}" / f"{dataset.name}-seed{seed}.pkl", noisy, truth, findings)
    finally:
        cic.out_of_fold_probs = shipped
    print(f"{dataset.name}: pooled", flush=True)


def replay(source: Path, seed: int, out: Path, rate: float, tag: str) -> None:
    """The check as it is now, re-run on each run's saved tree probabilities (``<out>/<tag><r>/``): a change after
    the trees (the calibration) measured over the same random states as ``run``'s dumps, paired, without growing a
    tree. Where the check grows more trees (:func:`class_inconsistent.more_trees`) a run saved both fits in order."""
    dataset = ln.load_dataset(source)
    noisy, truth = plant_errors(dataset, rate=rate, types=tuple(NOISE_TYPES), seed=seed)
    ctx = AuditContext(noisy, seed=seed)
    runs = len(list(out.glob(f"run*/{dataset.name}-seed{seed}.pkl")))
    with np.load(out / f"{dataset.name}-seed{seed}-trees.npz") as z:
        fits = [z[f"arr_{i}"] for i in range(len(z.files))]
    per_run = len(fits) // runs
    shipped = cic.out_of_fold_probs
    try:
        for r in range(runs):
            saved = iter(fits[r * per_run : (r + 1) * per_run])
            cic.out_of_fold_probs = lambda *a, _s=saved, **kw: next(_s)
            ctx.seed = seed + OFFSET * r
            findings = cic.run(ctx)
            ln.dump_seed(out / f"{tag}{r}" / f"{dataset.name}-seed{seed}.pkl", noisy, truth, findings)
    finally:
        cic.out_of_fold_probs = shipped
    print(f"{dataset.name} seed {seed}: {runs} runs replayed", flush=True)


def compare(outs: list[Path], fulls: list[Path], tag: str) -> None:
    """``run``'s dumps against ``replay``'s (``tag``), each spliced into the same seed's full dump: per dataset the
    mean over runs, then over the seeds (one ``--out`` and ``--full`` per seed), of every merged kind, the check
    alone and the false flags; the mean and the worst dataset below."""
    cols = [f"merged {k}" for k in ln.BOX_TYPES] + ["alone swapped", rerank.FALSE_FLAGS]
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for out, full in zip(outs, fulls):
        for base_path in sorted((out / "run0").glob("*.pkl")):
            name = base_path.name
            dataset = name.rsplit("-seed", 1)[0]
            whole = rerank.load_dump(full / name)
            per: dict[str, list[tuple[float, float]]] = {}
            for before_path in sorted(out.glob(f"run*/{name}")):
                after_path = out / f"{tag}{before_path.parent.name[3:]}" / name
                if not after_path.exists():
                    continue
                b = rerank.measure(whole, rerank.replace_checks(whole, rerank.load_dump(before_path), {CHECK}, name))
                a = rerank.measure(whole, rerank.replace_checks(whole, rerank.load_dump(after_path), {CHECK}, name))
                for c in cols:
                    if c in b:
                        per.setdefault(c, []).append((b[c], a[c]))
            for c, pairs in per.items():
                rows.setdefault(dataset, {}).setdefault(c, []).append(tuple(np.mean(pairs, axis=0)))
    print("| dataset | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    means: dict[str, list[tuple[float, float]]] = {}
    for dataset, per in rows.items():
        cells = []
        for c in cols:
            if c not in per:
                cells.append("—")
                continue
            b, a = np.mean(per[c], axis=0)
            means.setdefault(c, []).append((b, a))
            cells.append(f"{b:.3f} → {a:.3f}")
        print(f"| {dataset} | " + " | ".join(cells) + " |")
    for label, fn in (("mean", np.mean), ("worst", None)):
        cells = []
        for c in cols:
            v = np.array(means.get(c, []))
            if not len(v):
                cells.append("—")
            elif fn is not None:
                cells.append(f"{v[:, 0].mean():.3f} → {v[:, 1].mean():.3f}")
            elif c == rerank.FALSE_FLAGS:
                cells.append(f"{v[:, 0].max():.3f} → {v[:, 1].max():.3f}")
            else:
                cells.append(f"{v[:, 0].min():.3f} → {v[:, 1].min():.3f}")
        print(f"| **{label}** | " + " | ".join(cells) + " |")


def pooled_table(out: Path, full: Path | None) -> None:
    names = sorted({p.name for p in (out / "pool1-0").glob("*.pkl")})
    for name in names:
        base = rerank.load_dump(full / name) if full else None
        line = []
        for k in (1, 2, 4, 8):
            dumps = [rerank.load_dump(p) for p in sorted(out.glob(f"pool{k}-*/{name}"))]
            if not dumps:
                continue
            keys, truth = dumps[0].keys, dumps[0].truth
            alone = [ln.rank_metrics(keys, truth, "swapped", dict(zip(keys, scores_of(d))))["ap"] for d in dumps]
            text = f"K={k} alone {np.mean(alone):.3f}"
            if base:
                m = [rerank.measure(base, rerank.replace_checks(base, d, {CHECK}, name)) for d in dumps]
                text += f" merged {np.mean([x['merged swapped'] for x in m]):.3f}"
                text += f" ff {np.mean([x[rerank.FALSE_FLAGS] for x in m]):.3f}"
            line.append(text)
        print(f"{name.rsplit('-seed', 1)[0]} (trees' probabilities pooled): " + "; ".join(line))


def scores_of(dump: rerank.Dump) -> np.ndarray:
    per = ln.box_scores(dump.findings).get(CHECK, {})
    return np.array([per.get(k, 0.0) for k in dump.keys])


def with_scores(dump: rerank.Dump, scores: np.ndarray) -> list[Finding]:
    """The dump's findings of the check with each box's score replaced by ``scores`` (in ``dump.keys`` order)."""
    by_key = dict(zip(dump.keys, scores))
    out = []
    for f in dump.findings:
        if f.check == CHECK and f.split == "train" and f.line is not None:
            f = replace(f, score=float(by_key[(f.image, f.line)]))
        out.append(f)
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


def table(out: Path, full: Path | None) -> None:
    names = sorted({p.name for p in (out / "run0").glob("*.pkl")})
    rows = []
    for name in names:
        runs = sorted(out.glob(f"run*/{name}"), key=lambda p: int(p.parent.name[3:]))
        dumps = [rerank.load_dump(p) for p in runs]
        keys, truth = dumps[0].keys, dumps[0].truth
        S = np.stack([scores_of(d) for d in dumps])  # (runs, boxes)
        alone = [ln.rank_metrics(keys, truth, "swapped", dict(zip(keys, s)))["ap"] for s in S]
        base = rerank.load_dump(full / name) if full else None
        merged = (
            [rerank.measure(base, rerank.replace_checks(base, d, {CHECK}, name))["merged swapped"] for d in dumps]
            if base
            else []
        )
        std = S.std(axis=0)
        top = S.mean(axis=0) >= 0.05
        rho = [spearman(S[i], S[j]) for i, j in combinations(range(len(S)), 2)]
        rho_top = [spearman(S[i][top], S[j][top]) for i, j in combinations(range(len(S)), 2)]
        row = {
            "dataset": name.rsplit("-seed", 1)[0],
            "runs": len(S),
            "std mean": float(std.mean()),
            "std max": float(std.max()),
            "std ≥0.05": float(std[top].mean()) if top.any() else float("nan"),
            "rho": float(np.mean(rho)),
            "rho ≥0.05": float(np.mean(rho_top)),
            "alone per run": alone,
        }
        for k in (2, 4, 8):
            if k > len(S):
                continue
            groups = [range(g, g + k) for g in range(0, len(S) - k + 1, k)]
            mean_scores = [S[list(g)].mean(axis=0) for g in groups]
            row[f"alone K={k}"] = float(
                np.mean([ln.rank_metrics(keys, truth, "swapped", dict(zip(keys, m)))["ap"] for m in mean_scores])
            )
            if base:
                row[f"merged K={k}"] = float(
                    np.mean(
                        [
                            rerank.measure(base, with_scores_full(base, dumps[0], m))["merged swapped"]
                            for m in mean_scores
                        ]
                    )
                )
        row["merged per run"] = merged
        rows.append(row)
    for row in rows:
        print(
            f"{row['dataset']}: runs {row['runs']}, per-box std mean {row['std mean']:.4f} max {row['std max']:.3f} "
            f"(boxes ≥0.05: {row['std ≥0.05']:.3f}), Spearman {row['rho']:.3f} (≥0.05: {row['rho ≥0.05']:.3f})"
        )
        a = row["alone per run"]
        print(
            f"  alone swapped per run {' '.join(f'{x:.3f}' for x in a)} (mean {np.mean(a):.3f}, sd {np.std(a):.3f}); "
            + ", ".join(f"K={k} {row[f'alone K={k}']:.3f}" for k in (2, 4, 8) if f"alone K={k}" in row)
        )
        if row["merged per run"]:
            m = row["merged per run"]
            print(
                f"  merged swapped per run {' '.join(f'{x:.3f}' for x in m)} "
                f"(mean {np.mean(m):.3f}, sd {np.std(m):.3f}); "
                + ", ".join(f"K={k} {row[f'merged K={k}']:.3f}" for k in (2, 4, 8) if f"merged K={k}" in row)
            )
    (out / "table.pkl").write_bytes(pickle.dumps(rows))


def with_scores_full(base: rerank.Dump, dump: rerank.Dump, scores: np.ndarray) -> list[Finding]:
    """``base``'s findings with the check's rows replaced by ``dump``'s, scored ``scores``."""
    return rerank.replace_checks(base, replace(dump, findings=with_scores(dump, scores)), {CHECK})


BANDS = ((0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 1.01))


def bands(folders: list[Path], datasets: list[str]) -> None:
    """Calibration per band of the check's score, the seeds of each folder pooled: of the train boxes scored in the
    band that are untouched or planted swaps, how many are planted swaps, and their mean score
    (:func:`rerank.reliability`). At the benchmark's 3 % swaps (and 3 % cross-class copies) against the 2 % prior, an
    honest P(swap) finds about 1.5 x its score of them planted."""
    for folder in folders:
        for name in datasets:
            cells = []
            for low, high in BANDS:
                hit = n = 0
                total = 0.0
                for path in sorted(folder.glob(f"{name}-seed*.pkl")):
                    dump = rerank.load_dump(path)
                    h, k, m = rerank.reliability(dump, dump.findings, low, high).get(CHECK, (0, 0, 0.0))
                    hit, n, total = hit + h, n + k, total + m * k
                cells.append(f"{low:.1f}-{min(high, 1):.1f}: {hit}/{n}" + (f" (P {total / n:.2f})" if n else ""))
            print(f"{folder} {name}: " + ", ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dataset", nargs="+", type=Path, required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--runs", type=int, default=8)
    r.add_argument("--rate", type=float, default=0.03)
    r.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("pooled")
    p.add_argument("--dataset", nargs="+", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.03)
    p.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("table")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--full", type=Path, default=None, help="folder of full dumps (every check) of the same seed")
    rp = sub.add_parser("replay")
    rp.add_argument("--dataset", nargs="+", type=Path, required=True)
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--rate", type=float, default=0.03)
    rp.add_argument("--out", type=Path, required=True)
    rp.add_argument("--tag", default="replay", help="the replayed dumps go to <out>/<tag><r>/")
    c = sub.add_parser("compare")
    c.add_argument("--out", nargs="+", type=Path, required=True, help="run's --out, one per seed")
    c.add_argument("--full", nargs="+", type=Path, required=True, help="the same seeds' full dumps, in that order")
    c.add_argument("--tag", default="replay")
    b = sub.add_parser("bands")
    b.add_argument("--folders", nargs="+", type=Path, required=True, help="label_noise.py --dump folders")
    b.add_argument("--datasets", nargs="+", required=True, help="dataset names")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        for source in args.dataset:
            run(source, args.seed, args.runs, args.out, args.rate)
    elif args.cmd == "bands":
        bands(args.folders, args.datasets)
    elif args.cmd == "replay":
        for source in args.dataset:
            replay(source, args.seed, args.out, args.rate, args.tag)
    elif args.cmd == "compare":
        compare(args.out, args.full, args.tag)
    elif args.cmd == "pooled":
        for source in args.dataset:
            pooled(source, args.seed, args.out, args.rate)
    else:
        table(args.out, args.full)
        if (args.out / "pool1-0").is_dir():
            pooled_table(args.out, args.full)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
