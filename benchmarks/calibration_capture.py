"""Capture the box model's calibration inputs on a label-noise run, so any map from its cross-fitted
probabilities to scores is recomputed offline and spliced into a full run's dump (issue #22).

    python benchmarks/calibration_capture.py --dataset ../shared/datasets/potholes-road --seeds 0 1 2 \\
        --out reports/cal

For each seed it plants the errors as ``label_noise.py`` does (:func:`planted_noise.plant_errors`, same seed and
rate: the same planted boxes as a ``label_noise.py --dump``), runs the three box checks only, and pickles
``<name>-seed<N>.cal.pkl``: every call of :func:`curate.audit.boxmodel.model.calibrate_heldout` (its ``prob``,
``y``, ``prior``, ``real``: the first on the dataset's own probabilities, the second on the cross-dataset prior's
blend, whose calibrated scores only rank), the scores the run gave, and the key ``(split, image, line)`` of each
real row.

Why: the box model's fit is the slow part of a run (minutes on food or football); the map after it takes
milliseconds. With the inputs kept, :func:`rescore` gives each box check's scores under another map exactly as a
re-run would (:func:`curate.audit.boxmodel.prior.reordered`, as :func:`curate.audit.boxmodel.model.score_boxes`
does), and :func:`splice` puts them into a full ``label_noise.py --dump``'s findings for ``rerank.py``'s
:func:`rerank.measure`.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import label_noise as ln  # noqa: E402

from curate.audit.boxmodel import child, model  # noqa: E402
from curate.audit.boxmodel.corruptions import KINDS  # noqa: E402
from curate.audit.checks.base import AuditContext  # noqa: E402
from curate.core.findings import Finding  # noqa: E402
from planted_noise import plant_errors  # noqa: E402

#: the box check that reports each of the box model's kinds (label_noise.py's own mapping)
CHECK_OF_KIND = {kind: ln.TYPE_TO_CHECK[kind] for kind in KINDS}
Calibration = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray]]


def capture(dataset_dir: Path, seed: int, rate: float) -> dict[str, Any]:
    """One seed's calibration inputs, scores and row keys (see the module's docstring)."""
    dataset = ln.load_dataset(dataset_dir)
    noisy, _ = plant_errors(dataset, rate=rate, seed=seed)
    calls: list[tuple[np.ndarray, ...]] = []
    results: list[Any] = []
    original_cal, original_score = model.calibrate_heldout, child.score_boxes

    def recording_cal(prob, y, prior, real):
        calls.append((prob.copy(), y.copy(), prior.copy(), real.copy()))
        return original_cal(prob, y, prior, real)

    def recording_score(*args, **kwargs):
        bs = original_score(*args, **kwargs)
        results.append(bs)
        return bs

    model.calibrate_heldout, child.score_boxes = recording_cal, recording_score
    try:
        ctx = AuditContext(noisy, params={}, seed=seed)
        ln.run_selected(ctx, set(CHECK_OF_KIND.values()))
    finally:
        model.calibrate_heldout, child.score_boxes = original_cal, original_score
    if len(results) != 1 or len(calls) not in (1, 2):
        raise SystemExit(f"{dataset.name} seed {seed}: {len(results)} box model runs, {len(calls)} calibrations")
    bs = results[0]
    keys = [(rec.split, rec.rel, rec.labels[j].line) for rec, j in bs.records]
    scores = {k: np.asarray(v) for k, v in bs.scores.items()}
    return {"name": dataset.name, "calls": calls, "scores": scores, "keys": keys}


def rescore(
    cap: dict[str, Any], calibrate: Calibration = model.calibrate_heldout, order: Calibration | None = None
) -> dict[str, np.ndarray]:
    """Each kind's scores of the real rows under ``calibrate``, as :func:`model.score_boxes` combines its calls:
    handed out in the order the prior's blend gets under ``order`` (default: ``calibrate`` itself)."""
    from curate.audit.boxmodel.prior import reordered

    scores = calibrate(*cap["calls"][0])
    if len(cap["calls"]) == 2:
        scores = reordered((order or calibrate)(*cap["calls"][1]), scores)
    return scores


def splice(findings: list[Finding], cap: dict[str, Any], scores: dict[str, np.ndarray]) -> list[Finding]:
    """``findings`` (a full dump's) with each box check's train scores replaced by ``scores``."""
    row = {(split, image, line): n for n, (split, image, line) in enumerate(cap["keys"])}
    kind_of_check = {c: k for k, c in CHECK_OF_KIND.items()}
    out = []
    for f in findings:
        kind = kind_of_check.get(f.check)
        n = row.get((f.split, f.image, f.line)) if kind else None
        out.append(f if n is None else replace(f, score=float(np.clip(scores[kind][n], 0.0, 1.0))))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rate", type=float, default=0.03, help="as label_noise.py's --rate")
    parser.add_argument("--out", type=Path, default=Path("reports/cal"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for source in args.dataset:
        for seed in args.seeds:
            t0 = time.perf_counter()
            cap = capture(source, seed, args.rate)
            path = args.out / f"{cap['name']}-seed{seed}.cal.pkl"
            path.write_bytes(pickle.dumps(cap))
            print(f"wrote {path} ({len(cap['keys'])} boxes, {time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
