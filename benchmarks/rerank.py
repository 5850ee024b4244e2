"""Re-rank a full label-noise run with ONE check's findings replaced: the merged list without re-running the rest.

    python benchmarks/label_noise.py --dataset D ... --seeds 0 --dump --out reports/full        # every check
    python benchmarks/label_noise.py --dataset D ... --seeds 0 --checks class_inconsistent \\
        --dump --out reports/one                                                               # the changed one
    python benchmarks/rerank.py --full reports/full --new reports/one --check class_inconsistent

Why: a change to one check moves the merged worst-first list (its scores push other kinds' planted boxes down
or up), but a full run of every check on the seven pool datasets takes 30–50 minutes. The same seed plants the
same errors (``planted_noise.plant_errors``), so the changed check's rows from ``--new`` replace its rows in
``--full``'s dump and both are scored with label_noise.py's own functions (:func:`label_noise.rank_metrics`,
:func:`label_noise.box_scores`, the same merge as :func:`label_noise.score_seed`). Prints per dataset and kind
the merged AP before → after, the check alone before → after for its own kind, false flags per 100 untouched
boxes, and the mean and the worst dataset.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import label_noise as ln  # noqa: E402

from curate.core.findings import NOTE_CHECKS, Finding  # noqa: E402
from planted_noise import PlantedTruth  # noqa: E402


def load_dump(path: Path) -> tuple[list[tuple[str, int]], PlantedTruth, list[Finding]]:
    """A ``label_noise.py --dump`` pickle: the train boxes' keys, their planted truth and the findings."""
    dump = pickle.loads(Path(path).read_bytes())
    keys = list(dump["boxes"])
    truth = PlantedTruth(boxes={k: t for k, (_, _, t) in dump["boxes"].items() if t is not None})
    truth.counts = {t: sum(v == t for v in truth.boxes.values()) for t in set(truth.boxes.values())}
    return keys, truth, [Finding.from_row(r) for r in dump["findings"]]


def replace_check(findings: list[Finding], new: list[Finding], check: str) -> list[Finding]:
    """``findings`` with ``check``'s rows swapped for those of ``new``."""
    return [f for f in findings if f.check != check] + [f for f in new if f.check == check]


def measure(keys: list[tuple[str, int]], truth: PlantedTruth, findings: list[Finding]) -> dict[str, float]:
    """Per planted kind ``merged <kind>`` and ``alone <kind>`` AP, and ``false flags /100`` (merged ≥ 0.5)."""
    per_check = ln.box_scores(findings)
    merged: dict[tuple[str, int], float] = {}
    for check, scores in per_check.items():
        if check in NOTE_CHECKS:
            continue
        for k, v in scores.items():
            merged[k] = max(merged.get(k, 0.0), v)
    out: dict[str, float] = {}
    for kind in ln.BOX_TYPES:
        if not truth.counts.get(kind):
            continue
        out[f"merged {kind}"] = ln.rank_metrics(keys, truth, kind, merged)["ap"]
        out[f"alone {kind}"] = ln.rank_metrics(keys, truth, kind, per_check.get(ln.TYPE_TO_CHECK[kind], {}))["ap"]
    untouched = [k for k in keys if truth.truth(*k) is None]
    out["false flags /100"] = 100.0 * sum(merged.get(k, 0.0) >= ln.FLAG_SCORE for k in untouched) / len(untouched)
    return out


COLUMNS = [f"merged {k}" for k in ln.BOX_TYPES] + ["alone swapped", "false flags /100"]


def table(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> str:
    """Markdown: one row per dataset, ``before → after`` per column, then the mean and the worst (lowest AP,
    most false flags)."""
    lines = ["| dataset | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    cell = lambda a, b: "—" if a is None or np.isnan(a) else f"{a:.2f} → {b:.2f}"  # noqa: E731
    for name in before:
        lines.append(f"| {name} | " + " | ".join(cell(before[name].get(c), after[name].get(c)) for c in COLUMNS) + " |")
    for label, agg in (("mean", np.mean), ("worst", None)):
        cells = []
        for c in COLUMNS:
            pairs = [(before[n][c], after[n][c]) for n in before if c in before[n] and not np.isnan(before[n][c])]
            if not pairs:
                cells.append("—")
                continue
            b, a = np.array(pairs).T
            if agg is None:
                pick = np.max if c == "false flags /100" else np.min
                cells.append(f"{pick(b):.2f} → {pick(a):.2f}")
            else:
                cells.append(f"{agg(b):.2f} → {agg(a):.2f}")
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", type=Path, required=True, help="label_noise.py --dump folder of a run of every check")
    parser.add_argument("--new", type=Path, required=True, help="--dump folder of a run of the changed check only")
    parser.add_argument("--check", default="class_inconsistent", help="the check whose rows are replaced")
    args = parser.parse_args(argv)
    before: dict[str, dict[str, float]] = {}
    after: dict[str, dict[str, float]] = {}
    for path in sorted(args.new.glob("*-seed*.pkl")):
        full = args.full / path.name
        if not full.exists():
            print(f"skipped {path.name}: not in {args.full}", file=sys.stderr)
            continue
        keys, truth, findings = load_dump(full)
        _, _, new = load_dump(path)
        before[path.stem] = measure(keys, truth, findings)
        after[path.stem] = measure(keys, truth, replace_check(findings, new, args.check))
    print(table(before, after))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
