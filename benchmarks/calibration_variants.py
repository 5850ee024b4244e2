"""Score maps of the box model's held-out calibration compared offline on captured inputs (issue #22).

    python benchmarks/calibration_capture.py --dataset D ... --seeds 0 1 2 --out reports/cal
    python benchmarks/calibration_variants.py --cal reports/cal --full /work/s18/pool-s{seed} \\
        --variants isotonic-share-nomax binned-20 --reliability 0.1 0.5

Each variant is a fit of the log density ratio ``r`` of a kind's held-out corrupted boxes over the originals on
``z`` (the prior-weighted logit of :func:`model.calibrate`), as a family (``platt-here``: main's logistic fit;
``isotonic``: session 17's; ``binned-M``: isotonic blocks of at least M boxes of each class, interpolated;
``shrunk-K``: each isotonic block shrunk towards Platt by its count against K; ``avg-iso-W``: W × isotonic +
(1 − W) × Platt in log ratio), then a form: main's odds at the prior (``sigmoid(log r + log(0.02 / 0.94))``), or
``-share`` (P = 0.02 × r capped at 1, as :func:`curate.learn.isotonic.error_probability`; ``-share0.9`` caps at
0.9), with main's ``max`` with the shrunk prior-weighted logit, or without it (``-nomax``). The kind's final
scores are those levels handed out in the cross-dataset prior's order as main ranks it
(:func:`calibration_capture.rescore` with main's order: the product's order for a strictly increasing map, isotonic
maps' ties broken by it, as session 17 did). Per dataset (mean of the seeds) it prints main → variant for merged AP
of every planted kind, the box kinds alone and false flags per 100 untouched; then the worst dataset per kind, the
largest drop of any cell and whether the variant passes the rule (no cell down by more than 0.02, false flags up
nowhere, merged at or above the naive baseline wherever main is, the worst of some kind up by 0.005 or more);
``--reliability LOW HIGH`` adds per check the share of planted boxes among those scored in [LOW, HIGH)
(:func:`rerank.reliability`, the seeds pooled).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import calibration_capture as cc  # noqa: E402
import label_noise as ln  # noqa: E402
import rerank  # noqa: E402

from curate.audit.boxmodel import model  # noqa: E402
from curate.audit.boxmodel.corruptions import KINDS  # noqa: E402
from curate.core import defaults  # noqa: E402
from curate.learn.boosting import platt  # noqa: E402
from curate.learn.isotonic import isotonic_fit, isotonic_predict  # noqa: E402

#: (z of the held-out rows, which of them are corrupted, z of the real rows) → log r at the real rows
LogitMap = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
PRIOR_LOGIT = float(np.log(defaults.BOXMODEL_ERROR_PRIOR / (1.0 - len(KINDS) * defaults.BOXMODEL_ERROR_PRIOR)))


def platt_map(z: np.ndarray, pos: np.ndarray, z_real: np.ndarray) -> np.ndarray:
    """main's: the logistic fit's log density ratio (slope, intercept less the class ratio) at the prior."""
    a, b = platt(z, pos)
    return max(a, 1e-3) * z_real + b - np.log(pos.sum() / (~pos).sum())


def isotonic_s17(z: np.ndarray, pos: np.ndarray, z_real: np.ndarray) -> np.ndarray:
    """Session 17's isotonic density ratio (``-share-nomax``: its map exactly, prior × r capped at 1)."""
    w = np.where(pos, (~pos).sum() / pos.sum(), 1.0)  # both classes weigh the same in all
    xs, fitted = isotonic_fit(z, pos.astype(float), w)
    q = np.clip(isotonic_predict(xs, fitted, z_real), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q)) + 1e-3 * z_real  # ties broken by the model's own logit, as session 17 did


def blocks(z: np.ndarray, pos: np.ndarray, least: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The isotonic (PAV) fit of corrupted vs original on ``z`` with the classes weighted equally, its adjacent
    blocks merged until each holds ``least`` boxes of both: (each block's mean z, its log density ratio)."""
    w = np.where(pos, (~pos).sum() / pos.sum(), 1.0)
    xs, fitted = isotonic_fit(z, pos.astype(float), w)
    # blocks of equal fitted value, over the sorted distinct xs
    where = np.searchsorted(xs, z)
    edges = np.flatnonzero(np.diff(fitted) != 0) + 1
    block_of_x = np.zeros(len(xs), int)
    block_of_x[edges] = 1
    block_of_x = np.cumsum(block_of_x)
    b = block_of_x[where]
    nb = block_of_x[-1] + 1
    groups = [[i] for i in range(nb)]
    n_pos = np.bincount(b, weights=pos, minlength=nb)
    n_neg = np.bincount(b, weights=~pos, minlength=nb)
    counts = [[n_pos[i], n_neg[i]] for i in range(nb)]
    while len(groups) > 1:
        small = [i for i, (p, n) in enumerate(counts) if min(p, n) < least]
        if not small:
            break
        i = small[0]
        j = i + 1 if i + 1 < len(groups) else i - 1
        lo, hi = min(i, j), max(i, j)
        groups[lo] += groups.pop(hi)
        c = counts.pop(hi)
        counts[lo] = [counts[lo][0] + c[0], counts[lo][1] + c[1]]
    label = np.zeros(nb, int)
    for g, members in enumerate(groups):
        label[members] = g
    g = label[b]
    centre = np.array([z[g == k].mean() for k in range(len(groups))])
    P, N = pos.sum(), (~pos).sum()
    ratio = np.array([np.log(max(p, 0.5) / P) - np.log(max(n, 0.5) / N) for p, n in counts])
    return centre, ratio, np.array(counts)


def binned(least: int) -> LogitMap:
    """Isotonic blocks of at least ``least`` boxes of each class, interpolated linearly between their centres
    and continued past the ends with Platt's slope: strictly increasing, steps no smaller than ``least``."""

    def fit(z: np.ndarray, pos: np.ndarray, z_real: np.ndarray) -> np.ndarray:
        a, _ = platt(z, pos)
        a = max(a, 1e-3)
        centre, ratio, _ = blocks(z, pos, least)
        if len(centre) == 1:
            return platt_map(z, pos, z_real)
        return _interpolated(centre, ratio, a, z_real)

    return fit


def _interpolated(centre: np.ndarray, ratio: np.ndarray, a: float, z_real: np.ndarray) -> np.ndarray:
    """Linear between the blocks' centres, Platt's slope ``a`` past the ends; flat stretches tilted by 1e-3 × z
    so that no two boxes tie (a tie would lose the kind's own ranking)."""
    inside = np.interp(z_real, centre, ratio)
    below = ratio[0] + a * (z_real - centre[0])
    above = ratio[-1] + a * (z_real - centre[-1])
    return np.where(z_real < centre[0], below, np.where(z_real > centre[-1], above, inside)) + 1e-3 * z_real


def shrunk_to_platt(kappa: float, top_slope: float | None = None) -> LogitMap:
    """Each isotonic block's log density ratio shrunk towards Platt's at its centre by its precision (a block of
    p corrupted and n original boxes weighs p·n/(p+n) against ``kappa``), made monotone again (PAV, weighted by
    the same precision), interpolated between the centres."""

    def fit(z: np.ndarray, pos: np.ndarray, z_real: np.ndarray) -> np.ndarray:
        a, b = platt(z, pos)
        a = max(a, 1e-3)
        centre, ratio, counts = blocks(z, pos, 1)
        if len(centre) == 1:
            return platt_map(z, pos, z_real)
        platt_ratio = a * centre + b - np.log(pos.sum() / (~pos).sum())
        m = counts[:, 0] * counts[:, 1] / np.maximum(counts.sum(axis=1), 1)
        shrunk = (m * ratio + kappa * platt_ratio) / (m + kappa)
        xs, fitted = isotonic_fit(centre, shrunk, m + kappa)
        ell = _interpolated(xs, fitted, a, z_real)
        if top_slope is not None:  # past the last block: the model's own logit's slope, not Platt's
            ell = np.where(z_real > xs[-1], fitted[-1] + max(a, top_slope) * (z_real - xs[-1]), ell)
        return ell

    return fit


def averaged(first: LogitMap, second: LogitMap, weight: float) -> LogitMap:
    def fit(z, pos, z_real):
        return weight * first(z, pos, z_real) + (1 - weight) * second(z, pos, z_real)

    return fit


def held_out_auc(z: np.ndarray, pos: np.ndarray) -> float:
    """ROC AUC of the corrupted boxes against the originals on ``z`` (ties counted half)."""
    order = np.argsort(z, kind="stable")
    ranks = np.empty(len(z))
    ranks[order] = np.arange(1, len(z) + 1)
    for value in np.unique(z[np.r_[False, np.diff(z[order]) == 0][np.argsort(order)]]):  # ties: mean rank
        ranks[z == value] = ranks[z == value].mean()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration(
    logit_map: LogitMap,
    *,
    keep_max: bool = True,
    share: bool = False,
    cap: float = 1 - 1e-6,
    max_from_auc: float | None = None,
) -> cc.Calibration:
    """:func:`model.calibrate_heldout` with its Platt fit replaced by ``logit_map``."""

    def calibrate(prob, y, prior, real):
        base = model.calibrate(prob, prior)
        scored = prob.sum(axis=1) > 0
        shrink = defaults.BOXMODEL_SMALL_SHRINK * max(
            0.0, float(np.log(defaults.BOXMODEL_SMALL_BOXES / max(len(real), 1)))
        )
        out = {}
        for i, kind in enumerate(KINDS):
            z = np.log(np.clip(base[kind], 1e-6, 1 - 1e-6) / np.clip(1 - base[kind], 1e-6, 1))
            shrunk = z[real] - shrink
            rows = scored & ((y == 0) | (y == 1 + i))
            pos = y[rows] == 1 + i
            if min(pos.sum(), (~pos).sum()) < defaults.BOXMODEL_CALIBRATION_MIN:
                out[kind] = (1.0 / (1.0 + np.exp(-shrunk))).astype(np.float32)
                continue
            ell = logit_map(z[rows], pos, z[real])
            if share:  # P = prior × r, as error_probability (the real boxes are the mixture)
                p = np.clip(defaults.BOXMODEL_ERROR_PRIOR * np.exp(np.minimum(ell, 50.0)), 1e-6, cap)
                zc = np.log(p / (1 - p)) + 1e-3 * z[real]  # capped ones tie: broken by the model's logit
            else:  # odds of the kind against the originals at the prior (main's)
                zc = ell + PRIOR_LOGIT
            if keep_max and (max_from_auc is None or held_out_auc(z[rows], pos) >= max_from_auc):
                zc = np.maximum(zc, shrunk)
            out[kind] = (1.0 / (1.0 + np.exp(-zc))).astype(np.float32)
        return out

    return calibrate


FAMILIES: dict[str, LogitMap] = {
    "platt-here": platt_map,
    "isotonic": isotonic_s17,
    **{f"binned-{m}": binned(m) for m in (5, 10, 20, 40, 80)},
    **{f"shrunk-{k}": shrunk_to_platt(k) for k in (2, 5, 20, 80)},
    **{f"shrunk-{k}-top1": shrunk_to_platt(k, 1.0) for k in (2, 5, 20)},
    **{f"avg-iso-{w}": averaged(isotonic_s17, platt_map, w) for w in (0.25, 0.5, 0.75)},
}
VARIANTS: dict[str, cc.Calibration] = {
    "main": model.calibrate_heldout,
    **{name: calibration(fit) for name, fit in FAMILIES.items()},
    **{f"{name}-nomax": calibration(fit, keep_max=False) for name, fit in FAMILIES.items()},
    **{f"{name}-share": calibration(fit, share=True) for name, fit in FAMILIES.items()},
    **{f"{name}-share-nomax": calibration(fit, keep_max=False, share=True) for name, fit in FAMILIES.items()},
    **{f"{name}-share{c}": calibration(fit, share=True, cap=c) for name, fit in FAMILIES.items() for c in (0.9, 0.99)},
    **{f"{name}-maxauc{t}": calibration(fit, max_from_auc=t) for name, fit in FAMILIES.items() for t in (0.9, 0.95)},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cal", type=Path, required=True, help="folder of calibration_capture.py pickles")
    parser.add_argument("--full", type=str, required=True, help="full dumps' folder, {seed} for the seed")
    parser.add_argument("--variants", nargs="+", default=["isotonic-share-nomax", "shrunk-5"], help="names in VARIANTS")
    parser.add_argument("--reliability", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"))
    parser.add_argument("--per-seed", action="store_true")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"no variant {', '.join(unknown)}: one of {', '.join(VARIANTS)}")
    caps = sorted(args.cal.glob("*.cal.pkl"))
    loaded = []
    for path in caps:
        name = path.name.removesuffix(".cal.pkl")
        dataset, seed = name.rsplit("-seed", 1)
        full = rerank.load_dump(Path(args.full.format(seed=seed)) / f"{name}.pkl")
        loaded.append((dataset, seed, full, pickle.loads(path.read_bytes())))
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    shares: dict[str, dict[str, dict[str, list]]] = {}
    for variant in ["main", *[v for v in args.variants if v != "main"]]:
        per = results.setdefault(variant, defaultdict(lambda: defaultdict(list)))
        rel = shares.setdefault(variant, defaultdict(lambda: defaultdict(lambda: [0, 0, 0.0])))
        for dataset, seed, full, cap in loaded:
            findings = cc.splice(full.findings, cap, cc.rescore(cap, VARIANTS[variant], order=model.calibrate_heldout))
            m = rerank.measure(full, findings)
            for k, v in m.items():
                per[dataset][k].append(v)
            if args.per_seed and variant != "main":
                print(variant, dataset, seed, {k: round(v, 3) for k, v in m.items() if k.startswith("merged")})
            if args.reliability:
                for check, (p, n, s) in rerank.reliability(full, findings, *args.reliability).items():
                    cell = rel[dataset][check]
                    cell[0] += p
                    cell[1] += n
                    cell[2] += s * n
    kinds = list(ln.BOX_TYPES)
    cols = (
        [f"merged {k}" for k in kinds] + [f"alone {k}" for k in ("grouped", "loose", "shifted")] + [rerank.FALSE_FLAGS]
    )
    base = {d: {k: float(np.nanmean(v)) for k, v in m.items()} for d, m in results["main"].items()}
    merged_cols = [c for c in cols if c.startswith("merged")]
    summary = [
        "| variant | "
        + " | ".join(f"worst {c}" for c in merged_cols)
        + " | largest drop | false flags /100 worst / mean | fails |",
        "|---" * (len(merged_cols) + 4) + "|",
    ]

    def worst(table: dict, c: str) -> float:
        values = [table[d][c] for d in table if c in table[d] and not np.isnan(table[d][c])]
        return max(values) if c == rerank.FALSE_FLAGS else min(values)

    def flags(table: dict) -> str:
        mean = np.mean([m[rerank.FALSE_FLAGS] for m in table.values()])
        return f"{worst(table, rerank.FALSE_FLAGS):.2f} / {mean:.2f}"

    summary.append(f"| main | {' | '.join(f'{worst(base, c):.2f}' for c in merged_cols)} | — | {flags(base)} | — |")
    for variant in args.variants:
        if variant == "main":
            continue
        after = {d: {k: float(np.nanmean(v)) for k, v in m.items()} for d, m in results[variant].items()}
        print(f"\n### {variant} (mean of seeds; main → variant)\n")
        print(rerank.table(base, after, cols))
        drops, fails = [], []
        for d in base:
            for c in cols:
                if c not in base[d] or np.isnan(base[d][c]):
                    continue
                delta = after[d][c] - base[d][c]
                if c == rerank.FALSE_FLAGS:
                    if delta > 1e-6:
                        fails.append(f"{d} false flags +{delta:.3f}")
                    continue
                drops.append((delta, f"{d} {c}"))
                if delta < -0.02:
                    fails.append(f"{d} {c} {delta:+.3f}")
                kind = c.split(" ", 1)[1]
                b = base[d].get(f"baseline {kind}")
                if c.startswith("merged") and b is not None and base[d][c] >= b > after[d][c]:
                    fails.append(f"{d} {c} under the baseline")
        worst_up = [
            c
            for c in cols
            if c.startswith("merged")
            and min(after[d][c] for d in after if c in after[d] and not np.isnan(after[d][c]))
            > min(base[d][c] for d in base if c in base[d] and not np.isnan(base[d][c])) + 0.005
        ]
        low = min(drops)
        print(f"\nlargest drop {low[0]:+.3f} ({low[1]}); worst up: {worst_up or 'none'}")
        summary.append(
            f"| {variant} | {' | '.join(f'{worst(after, c):.2f}' for c in merged_cols)} | {low[0]:+.3f} ({low[1]}) | "
            f"{flags(after)} | {len(fails)}{'' if fails or worst_up else ' (no worst up)'} |"
        )
        print(
            "PASS" if not fails and worst_up else "FAIL: " + "; ".join(fails[:8]) + (" ..." if len(fails) > 8 else "")
        )
        if args.reliability:
            gaps = []
            for name in ("main", variant):  # box checks: |share planted − 1.5 × mean score|, weighted by count
                cells = [c for d in base for k, c in shares[name][d].items() if k in cc.CHECK_OF_KIND.values()]
                gaps.append(sum(abs(p - 1.5 * s) for p, n, s in cells) / max(sum(n for _, n, _ in cells), 1))
            print(f"reliability gap (box checks, |planted share - 1.5 x score|): {gaps[0]:.3f} → {gaps[1]:.3f}")
            for d in base:
                cells = []
                for check, (p, n, s) in shares[variant][d].items():
                    pm, nm, sm = shares["main"][d].get(check, (0, 0, 0.0))
                    was = f"{pm / nm:.2f} (s {sm / nm:.2f}, {nm})" if nm else "—"
                    cells.append(f"{check} {was} → {p / n:.2f} (s {s / n:.2f}, {n})")
                print(f"reliability {args.reliability} {d}: " + "; ".join(cells))
    print("\n" + "\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
