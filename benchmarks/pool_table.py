"""One table over the pool datasets from label_noise.py's JSON: per dataset, the mean and the WORST.

    python benchmarks/pool_table.py reports/bench/label_noise.json [more.json ...] > table.md

Several JSONs of the same datasets (one run a seed) give one row a dataset, the mean over all their seeds.

Why a table of its own: a check tuned on one dataset can lose on another (issue #22), so every change is
judged on the worst dataset, not on the mean or on food-ingredients. Columns, each the mean over the seeds
in the JSON: AP of the merged worst-first list (every train box ranked by its best error score over all
checks, notes left out, as ``audit/all``) per planted type; the same per type ranked by its own check
alone; missing recall and the regions flagged per 100 train boxes; false flags per 100 untouched boxes
(any check, score ≥ 0.5); and the naive geometry baseline's AP for every kind. "worst" is the lowest AP /
recall and the highest false flags / regions over the datasets. A merged cell below the baseline's AP (the
house rule: the merged list must never lose to the naive geometry, on any dataset, for any kind) reads
"0.86 < 0.88", the baseline after the "<", and is listed under the table; where label_noise.py ran with
``--known``, with both APs again with the dataset's own errors checked by eye set aside.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TYPES = ("grouped", "loose", "shifted", "swapped", "duplicate", "ambiguous")


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(vals)) if vals else None


def dataset_row(res: dict) -> dict[str, float | None]:
    """The table's numbers for one dataset (means over its seeds)."""
    seeds = res["per_seed"]
    row: dict[str, float | None] = {}
    for kind in TYPES:
        per = [s["types"].get(kind) for s in seeds if kind in s["types"]]
        for src, col in (
            ("any", "merged"),
            ("check", "alone"),
            ("baseline", "base"),
            ("any_known", "known_merged"),
            ("baseline_known", "known_base"),
        ):
            row[f"{col}_{kind}"] = _mean([p[src]["ap"] if p and p.get(src) else None for p in per])
    miss = [s["missing"] for s in seeds if "missing" in s]
    row["missing_recall"] = _mean([m.get("recall") for m in miss])
    row["regions_per_100"] = _mean([100.0 * m["regions"] / res["train_boxes"] for m in miss if "regions" in m])
    row["false_flags"] = _mean([s["false_flags_per_100"] for s in seeds])
    row["base_false_flags"] = _mean([s["baseline_false_flags_per_100"] for s in seeds])
    return row


def _cell(v: float | None, digits: int = 2, baseline: float | None = None) -> str:
    """The number; a merged AP under the baseline's (compared as printed) also shows the baseline after "<"."""
    if v is None:
        return "—"
    if baseline is not None and round(v, digits) < round(baseline, digits):
        return f"{v:.{digits}f} < {baseline:.{digits}f}"
    return f"{v:.{digits}f}"


def _base_of(col: str) -> str | None:
    """The baseline column a merged column is held against."""
    return "base_" + col[len("merged_") :] if col.startswith("merged_") else None


def _loss(name: str, row: dict, kind: str) -> str:
    """A merged AP under the baseline's; with ``--known`` (the dataset's own errors checked by eye), the same
    two with those errors set aside: a real error ranked above the planted ones is no false flag."""
    merged, base = row.get(f"known_merged_{kind}"), row.get(f"known_base_{kind}")
    if merged is None or base is None:
        return f"{name} {kind}"
    return f"{name} {kind} (own errors checked by eye set aside: {merged:.2f} vs {base:.2f})"


def table(results: list[dict]) -> str:
    rows = [(r["name"], dataset_row(r)) for r in results]
    cols = [f"merged_{k}" for k in TYPES] + [f"alone_{k}" for k in TYPES]
    cols += ["missing_recall", "regions_per_100", "false_flags"]
    cols += [f"base_{k}" for k in TYPES] + ["base_false_flags"]
    head = (
        [f"merged {k}" for k in TYPES]
        + [f"alone {k}" for k in TYPES]
        + ["missing recall", "regions /100 boxes", "false flags /100"]
        + [f"baseline {k}" for k in TYPES]
        + ["baseline false flags"]
    )
    higher_worse = {"regions_per_100", "false_flags", "base_false_flags"}
    out = ["| dataset | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for name, row in rows:
        cells = [_cell(row[c], baseline=row.get(_base_of(c)) if _base_of(c) else None) for c in cols]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    mean, worst = [], []
    for c in cols:
        vals = [row[c] for _, row in rows if row[c] is not None]
        mean.append(_cell(float(np.mean(vals)) if vals else None))
        worst.append(_cell((max(vals) if c in higher_worse else min(vals)) if vals else None))
    losses = [
        _loss(name, row, c[len("merged_") :])
        for name, row in rows
        for c in cols
        if " < " in _cell(row[c], baseline=row.get(_base_of(c)) if _base_of(c) else None)
    ]
    out.append("| **mean** | " + " | ".join(mean) + " |")
    out.append("| **worst** | " + " | ".join(worst) + " |")
    out.append("")
    out.append("merged below the naive baseline: " + (", ".join(losses) if losses else "none"))
    return "\n".join(out)


def merged_by_dataset(paths: list[str]) -> list[dict]:
    """Each dataset once, with the seeds of every JSON that holds it (one run a seed, e.g. seeds 0, 1 and 2 run
    apart): a row is then the mean over all of them."""
    by_name: dict[str, dict] = {}
    for path in paths:
        for res in json.loads(Path(path).read_text())["results"]:
            if res["name"] in by_name:
                by_name[res["name"]]["per_seed"] = by_name[res["name"]]["per_seed"] + res["per_seed"]
            else:
                by_name[res["name"]] = dict(res)
    return list(by_name.values())


def main(argv: list[str]) -> int:
    print(table(merged_by_dataset(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
