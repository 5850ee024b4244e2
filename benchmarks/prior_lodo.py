"""Leave-one-dataset-out test of a cross-dataset prior for the box model (issue #22), offline.

    python benchmarks/prior_rows.py --dataset ../shared/datasets/{...} --out /tmp/rows      # the feature rows
    python benchmarks/label_noise.py --dataset ../shared/datasets/{...} --seeds 0 --out /tmp/base --dump
    python benchmarks/prior_lodo.py --rows /tmp/rows --dump /tmp/base --out /tmp/lodo.json

For each dataset X of the pool: a small boosted model (the *prior*, :class:`curate.learn.boosting.BoostedTrees`)
is trained on the other datasets' rows only — their real boxes as "ok" (planted ones left out) and the box
model's own synthetic loose/shifted/grouped boxes — on dataset-invariant features
(:data:`curate.audit.boxmodel.prior.NOT_INVARIANT`: no counts of boxes, no raw grey layout), each as its quantile
among the dataset's real boxes. Its log-odds per kind are appended to X's feature rows (``--use features``) or
its odds multiplied into the model's (``--use blend``: :func:`curate.audit.boxmodel.prior.blended`), or that blend's
ranking given the model's own scores (``--use reorder``, what ships: :func:`curate.audit.boxmodel.prior.reordered`); X's
own cross-fitted box model (:func:`curate.audit.boxmodel.model._crossfit` and :func:`calibrate_heldout`, exactly as
``score_boxes``) is re-run with and without them. Scored like ``label_noise.py``: **alone** = the planted boxes
of a kind ranked by that kind's score; **merged** = ranked by the best score over every check, the other checks'
scores taken from ``label_noise.py --dump`` of the same seed. Prints the table and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prior_rows import TRUTH  # noqa: E402

from curate.audit.boxmodel.corruptions import KINDS  # noqa: E402
from curate.audit.boxmodel.model import MemberRows, _crossfit, calibrate_heldout  # noqa: E402
from curate.audit.boxmodel.prior import blended, log_odds, reordered, within_dataset  # noqa: E402
from curate.audit.boxmodel.prior import invariant as prior_features  # noqa: E402
from curate.core import defaults  # noqa: E402
from curate.core.findings import NOTE_CHECKS  # noqa: E402

#: The box model's kind → the check that reports it (label_noise.TYPE_TO_CHECK, inverted for these three).
CACHES = ("-before", "-prob")  # this script's own files in --rows, not datasets
KIND_CHECK = {"grouped": "grouped", "loose": "background_heavy", "shifted": "shifted"}
OTHER_KINDS = ("swapped", "duplicate", "ambiguous")  # planted kinds the other checks report


def load_rows(folder: Path) -> dict[str, dict]:
    """prior_rows.py's dumps in ``folder``, by dataset name (this script's caches there left out)."""
    return {p.stem: dict(np.load(p)) for p in sorted(folder.glob("*.npz")) if not p.stem.endswith(CACHES)}


def invariant(names: list[str]) -> np.ndarray:
    """A mask of the columns the prior reads (:func:`curate.audit.boxmodel.prior.invariant`)."""
    keep = set(prior_features(names))
    return np.array([n in keep for n in names])


def ap(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def prior_rows(d: dict, cols: np.ndarray, per_kind: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's training rows for the prior: member 0's real boxes (planted ones left out) as ok, its
    synthetic boxes by kind; at most ``per_kind`` of each kind and 3× that of ok, so that every dataset weighs
    about the same whatever its size."""
    rows, y = d["rows0"], d["y0"]
    n_real = len(d["truth"])
    clean = np.ones(len(rows), bool)
    clean[:n_real] = d["truth"] <= 0  # untouched train boxes and the other splits' boxes
    take = []
    for k in range(1 + len(KINDS)):
        idx = np.flatnonzero(clean & (y == k))
        cap = per_kind * (3 if k == 0 else 1)
        take.append(rng.choice(idx, min(cap, len(idx)), replace=False))
    take = np.concatenate(take)
    return inputs(d, cols)[rows[take]], y[take]


def inputs(d: dict, cols: np.ndarray) -> np.ndarray:
    """The prior's input of every row of a dataset: its invariant columns, as quantiles among its real boxes."""
    X = d["X"][:, cols]
    return within_dataset(X, X[: len(d["truth"])])


def fit_prior(X: np.ndarray, y: np.ndarray, iterations: int):
    from curate.learn.boosting import BoostedTrees

    return BoostedTrees(
        iterations=iterations, learning_rate=0.1, max_depth=4, min_samples_leaf=40, l2_regularization=1.0, max_bins=64
    ).fit(X, y)


def box_model(d: dict, extra: np.ndarray | None, seed: int = 0) -> dict[str, np.ndarray]:
    """score_boxes' cross-fit and calibration on the dumped rows (plus ``extra`` columns): calibrated scores of
    the real rows per kind."""
    prob, y = crossfit(d, extra, seed)
    return calibrated(prob, y, len(d["truth"]))


def calibrated(prob: np.ndarray, y: np.ndarray, n_real: int) -> dict[str, np.ndarray]:
    """score_boxes' calibration of member 0's cross-fitted probabilities: the real rows' scores per kind."""
    prior = np.bincount(y, minlength=1 + len(KINDS)) / len(y)
    return calibrate_heldout(prob, y, prior, np.arange(n_real))


def crossfit(d: dict, extra: np.ndarray | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """score_boxes' cross-fit on the dumped rows (plus ``extra`` columns): member 0's out-of-fold probabilities
    and labels."""
    X = d["X"] if extra is None else np.concatenate([d["X"], extra], axis=1)
    members = int(d["members"])
    parts = [(MemberRows(X, d[f"rows{m}"]), d[f"y{m}"]) for m in range(members)]
    fold_of_image = d["folds"]
    n_real = len(d["truth"])
    folds_of = [fold_of_image[d["image"][d[f"rows{m}"]]] for m in range(members)]
    prob = _crossfit(
        [(p[0], p[1], fo) for p, fo in zip(parts, folds_of)],
        defaults.BOXMODEL_FOLDS,
        np.ones(n_real, bool),
        seed=seed,
        iterations=defaults.BOXMODEL_ITERATIONS,
        advance=lambda: None,
    )
    return prob, parts[0][1]


def real_keys(source: Path, seed: int) -> list[tuple[str, int]]:
    """(image, line) of every real row, in the dump's order (the noisy copy is re-made: it is deterministic)."""
    from label_noise import load_dataset

    from planted_noise import plant_errors

    noisy, _ = plant_errors(load_dataset(source), rate=0.03, seed=seed)
    return [(rec.rel, lab.line) for rec in noisy.images for lab in rec.labels]


def other_scores(dump: Path) -> dict[tuple[str, int], float]:
    """Each train box's best score over every check but the three box-model ones and the notes."""
    data = pickle.loads(dump.read_bytes())
    out: dict[tuple[str, int], float] = {}
    for split, image, check, score, _message, line, _region, _data in data["findings"]:
        if split != "train" or check in NOTE_CHECKS or check in KIND_CHECK.values():
            continue
        key = (image, int(line))
        out[key] = max(out.get(key, 0.0), float(score))
    return out


def evaluate(d: dict, scores: dict[str, np.ndarray], keys, others) -> dict[str, float]:
    """Alone and merged AP of the box model's kinds, and the merged AP of the other checks' planted kinds: a prior
    that raises right boxes pushes those down the merged list (benchmarks/README.md, issue #22)."""
    truth = d["truth"]
    train = truth >= 0
    merged = np.array([others.get(k, 0.0) for k in keys])
    for kind in KINDS:
        merged = np.maximum(merged, scores[kind])
    out = {}
    for kind in (*KINDS, *OTHER_KINDS):
        sel = train & ((truth == 0) | (truth == TRUTH.index(kind)))
        y = truth[sel] == TRUTH.index(kind)
        if not y.any():
            continue
        if kind in KINDS:
            out[f"alone {kind}"] = ap(y, scores[kind][sel])
        out[f"merged {kind}"] = ap(y, merged[sel])
    out["false flags /100"] = 100.0 * float((merged[truth == 0] >= 0.5).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=Path, required=True, help="prior_rows.py's folder")
    parser.add_argument("--dump", type=Path, required=True, help="label_noise.py --dump's folder (same seed)")
    parser.add_argument("--datasets", type=Path, default=Path("/work/shared/datasets"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=1500)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--only", nargs="*", default=None, help="score only these datasets (all train the prior)")
    parser.add_argument(
        "--use",
        choices=("features", "blend", "reorder"),
        default="features",
        help="the prior's use: three more features of the dataset's model, its odds multiplied into the model's, or "
        "that blend's ranking with the model's own scores (what ships: prior.reordered)",
    )
    parser.add_argument("--weights", nargs="+", type=float, default=[0.25, 0.5], help="--use blend: the exponents")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    data = load_rows(args.rows)
    names = [str(n) for n in next(iter(data.values()))["names"]]
    cols = invariant(names)
    table = {}
    for name in args.only or list(data):  # in the order asked
        d = data[name]
        t0 = time.perf_counter()
        rng = np.random.default_rng(args.seed)
        parts = [prior_rows(e, cols, args.per_kind, rng) for other, e in data.items() if other != name]
        prior = fit_prior(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), args.iterations)
        p = prior.predict_proba(inputs(d, cols))
        keys = real_keys(args.datasets / name, args.seed)
        dump = args.dump / f"{name}-seed{args.seed}.pkl"
        while not dump.exists():  # label_noise.py --dump may still be running
            time.sleep(10)
        time.sleep(1)
        others = other_scores(dump)
        n_real = len(d["truth"])
        cached = args.rows / f"{name}-prob.npz"  # the box model without the prior: the same on every run
        if not cached.exists():
            np.savez(cached, **dict(zip(("prob", "y"), crossfit(d, None, args.seed))))
        prob, y = np.load(cached)["prob"], np.load(cached)["y"]
        before = evaluate(d, calibrated(prob, y, n_real), keys, others)
        if args.use == "features":
            scores_after = box_model(d, log_odds(p), args.seed)
            after = {"features": evaluate(d, scores_after, keys, others)}
            np.savez(args.out.with_name(f"{args.out.stem}-{name}.npz"), prior=log_odds(p), **scores_after)
        else:
            lo = log_odds(p)[d["rows0"]]
            own = calibrated(prob, y, n_real)
            after = {}
            for w in args.weights:
                mixed = calibrated(blended(prob, lo, w), y, n_real)
                scores_after = reordered(mixed, own) if args.use == "reorder" else mixed
                after[f"{args.use} {w}"] = evaluate(d, scores_after, keys, others)
        y0 = d["y0"]
        prior_alone = {}
        for i, kind in enumerate(KINDS):  # the prior by itself, on the held-out dataset's planted boxes
            sel = (d["truth"] == 0) | (d["truth"] == TRUTH.index(kind))
            prior_alone[kind] = ap(d["truth"][sel] == TRUTH.index(kind), log_odds(p[:n_real])[sel, i])
            synth = (y0 == 0) | (y0 == 1 + i)
            prior_alone[kind + " synthetic"] = ap(y0[synth] == 1 + i, log_odds(p[d["rows0"]])[synth, i])
        table[name] = {"before": before, "after": after, "prior": prior_alone, "seconds": time.perf_counter() - t0}
        print(name, json.dumps(table[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
