"""class_inconsistent with its crop embeddings off, on and ``auto`` on the same planted copies, in one pass.

    python benchmarks/embed_choice.py run --dataset ../shared/datasets/X ... --seeds 0 --out /tmp/embedsel
    python benchmarks/embed_choice.py table --full /tmp/pool-s0 /tmp/pool-s1 --new /tmp/embedsel-s0 /tmp/embedsel-s1

``run`` plants each seed's errors as ``label_noise.py`` does and runs the check three times on one audit context,
so the crop features and embeddings are computed once, and each distinct feature matrix's out-of-fold forests are
fitted once (``auto`` fits the two that ``off`` and ``on`` fit); it writes ``label_noise.py --dump`` pickles of the
check's findings into ``<out>-s<seed>/<variant>/`` (``rerank.py --new``), and ``choices.json`` there: per dataset the
synthetic-swap separation of both feature sets (:func:`swap_separation`), the backbone's kNN accuracy, the choice, and
seconds. ``table`` splices each variant into the full dumps of every check (``rerank.py``'s functions, matched by
file name) and prints, per dataset, the mean over the seeds given of the merged and alone APs, the baseline and the
false flags, then the mean and the worst dataset.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import label_noise as ln  # noqa: E402
import rerank  # noqa: E402

from curate.audit.checks import class_inconsistent as ci  # noqa: E402
from curate.audit.checks.base import AuditContext  # noqa: E402
from curate.core import defaults  # noqa: E402
from planted_noise import NOISE_TYPES, plant_errors  # noqa: E402

VARIANTS = {"off": False, "on": True, "auto": "auto"}


def swap_separation(probs: np.ndarray, y: np.ndarray, judged: np.ndarray, prior: float) -> float:
    """How well out-of-fold probabilities tell the check's own synthetic swaps (``swap_probability``'s: each judged
    box relabelled to every other judged class, weighing 1 per box) from the labels as they are: their average
    precision, weighed ``prior`` of the mixture, all ranked by self-confidence, lowest first. Tried as ``auto``'s
    rule and not kept (benchmarks/README.md, session 18); recorded here to compare."""
    from sklearn.metrics import average_precision_score

    rows = np.flatnonzero(judged)
    classes = np.unique(y[rows])
    own = probs[rows, y[rows]]
    other = probs[np.ix_(rows, classes)]
    is_other = classes[None, :] != y[rows, None]
    per_box = np.broadcast_to(1.0 / is_other.sum(axis=1, keepdims=True), other.shape)[is_other]
    weight = np.r_[np.ones(len(rows)), per_box * prior / (1.0 - prior)]
    truth = np.r_[np.zeros(len(rows)), np.ones(len(per_box))]
    return float(average_precision_score(truth, -np.r_[own, other[is_other]], sample_weight=weight))


def run(datasets: list[Path], seeds: list[int], out: Path, rate: float, variants: list[str]) -> None:
    fitted: dict[str, np.ndarray] = {}
    seen: dict[str, float] = {}
    forest, helps = ci.out_of_fold_probs, ci.embeddings_help

    def once(X, y, groups, num_classes, *, seed):
        """Each distinct feature matrix's forests once: the variants share two fits."""
        key = hashlib.sha1(X.tobytes() + str((X.shape, seed)).encode()).hexdigest()
        if key not in fitted:
            t0 = time.process_time()
            fitted[key] = forest(X, y, groups, num_classes, seed=seed)
            seen[f"forest cpu_s {X.shape[1]} columns"] = time.process_time() - t0
            counts = np.bincount(y, minlength=num_classes)
            judged = counts[y] >= ci.MIN_CLASS_INSTANCES  # (the images rule left out of this diagnostic)
            seen[f"separation {X.shape[1]} columns"] = swap_separation(
                fitted[key], y, judged, defaults.SWAP_ERROR_PRIOR
            )
        return fitted[key]

    def recorded(votes, y, judged):
        seen["knn accuracy"] = ci.knn_accuracy(votes, y, judged)
        return helps(votes, y, judged)

    ci.embeddings_help = recorded
    ci.out_of_fold_probs = once
    for source in datasets:
        dataset = ln.load_dataset(source)
        for seed in seeds:
            noisy, truth = plant_errors(dataset, rate=rate, types=NOISE_TYPES, seed=seed)
            ctx = AuditContext(noisy, seed=seed)
            fitted.clear()
            seen.clear()
            record: dict = {"dataset": dataset.name, "seed": seed, "boxes": noisy.num_boxes}
            by_variant = {}
            for variant in variants:
                mode = VARIANTS[variant]
                ctx.params = {ci.NAME: {"embeddings": mode}}
                t0, c0 = time.perf_counter(), time.process_time()
                findings = ci.run(ctx)
                record[f"wall_s {variant}"] = round(time.perf_counter() - t0, 1)
                record[f"cpu_s {variant}"] = round(time.process_time() - c0, 1)
                ln.dump_seed(
                    out.parent / f"{out.name}-s{seed}" / variant / f"{dataset.name}-seed{seed}.pkl",
                    noisy,
                    truth,
                    findings,
                )
                by_variant[variant] = findings
            if {"auto", "on"} <= set(by_variant):
                record["auto chose"] = "on" if _same(by_variant["auto"], by_variant["on"]) else "off"
            record.update({k: round(v, 4) for k, v in seen.items()})
            print(json.dumps(record), flush=True)
            log = out.parent / f"{out.name}-s{seed}" / "choices.jsonl"
            with log.open("a") as fh:
                fh.write(json.dumps(record) + "\n")


def _same(a, b) -> bool:
    return [(f.image, f.line, f.score) for f in a] == [(f.image, f.line, f.score) for f in b]


def table(fulls: list[Path], news: list[Path], checks: list[str]) -> None:
    """Per variant folder under each --new: the mean over seeds per dataset, then the mean and worst dataset."""
    variants = sorted({p.name for new in news for p in new.iterdir() if p.is_dir()})
    kinds = ["grouped", "loose", "shifted", "swapped", "duplicate", "ambiguous"]
    for variant in variants:
        per: dict[str, list[dict[str, float]]] = {}
        for full, new in zip(fulls, news):
            for path in sorted((new / variant).glob("*-seed*.pkl")):
                if not (full / path.name).exists():
                    continue
                dump = rerank.load_dump(full / path.name)
                findings = rerank.replace_checks(dump, rerank.load_dump(path), set(checks), path.stem)
                per.setdefault(path.stem.rsplit("-seed", 1)[0], []).append(rerank.measure(dump, findings))
        cols = [f"merged {k}" for k in kinds] + ["alone swapped", "baseline swapped", rerank.FALSE_FLAGS]
        print(f"\n### {variant} ({', '.join(str(n) for n in news)})\n")
        print("| dataset | seeds | " + " | ".join(cols) + " |")
        means = {}
        for name, rows in per.items():
            means[name] = {c: float(np.nanmean([r.get(c, np.nan) for r in rows])) for c in cols}
            print(f"| {name} | {len(rows)} | " + " | ".join(f"{means[name][c]:.3f}" for c in cols) + " |")
        for label, fn in (("mean", np.nanmean), ("worst", None)):
            cells = []
            for c in cols:
                vals = [m[c] for m in means.values() if not np.isnan(m[c])]
                v = fn(vals) if fn else (max(vals) if c == rerank.FALSE_FLAGS else min(vals))
                cells.append(f"{v:.3f}")
            print(f"| **{label}** | | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dataset", nargs="+", type=Path, required=True)
    r.add_argument("--seeds", nargs="+", type=int, default=[0])
    r.add_argument("--rate", type=float, default=0.03)
    r.add_argument("--out", type=Path, required=True, help="prefix: writes <out>-s<seed>/<variant>/")
    r.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    t = sub.add_parser("table")
    t.add_argument("--full", nargs="+", type=Path, required=True, help="full dumps, one folder per seed")
    t.add_argument("--new", nargs="+", type=Path, required=True, help="this script's <out>-s<seed>, same order")
    t.add_argument("--checks", nargs="+", default=[ci.NAME])
    args = parser.parse_args()
    if args.cmd == "run":
        run(args.dataset, args.seeds, args.out, args.rate, args.variants)
    else:
        table(args.full, args.new, args.checks)


if __name__ == "__main__":
    main()
