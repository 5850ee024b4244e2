"""Score a ``label_noise.py --dump`` offline, with some checks' rows swapped for a re-run's: which boxes outrank
the planted ones in the merged worst-first list, and the APs ``label_noise.py`` would report.

    python benchmarks/merged_splice.py /work/s16/pool-main/bccd-blood-cells-seed0.pkl \\
        --new /tmp/dup/bccd-blood-cells-seed0.pkl --checks duplicate ambiguous --kinds duplicate ambiguous \\
        --known benchmarks/known/bccd-blood-cells.csv --dataset ../shared/datasets/bccd-blood-cells

Why: a full audit of the seven takes 30–50 min on the shared host, while a change to one geometry check re-runs
in seconds (``label_noise.py --checks duplicate ambiguous --dump`` plants the same errors for the same seed).
The rows of ``--checks`` in the base dump are replaced by those of ``--new``; every other check's rows are the
base's. Scoring is ``label_noise.py``'s own (:func:`label_noise.rank_metrics`, :func:`label_noise.box_scores`,
the merged list without the notes), so the numbers equal a full run's for the same findings.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label_noise import BOX_TYPES, TYPE_TO_CHECK, box_scores, load_dataset, load_known, rank_metrics  # noqa: E402

from curate.core.findings import NOTE_CHECKS, Finding  # noqa: E402


class DumpTruth:
    """The planted truth of a dump's boxes, read as ``label_noise.rank_metrics`` reads a ``PlantedTruth``."""

    def __init__(self, boxes: dict[tuple[str, int], tuple]):
        self.boxes = boxes

    def truth(self, rel: str, line: int) -> str | None:
        return self.boxes[(rel, line)][2]


def load_dump(path: Path) -> dict[str, Any]:
    return pickle.loads(Path(path).read_bytes())


def splice(base: dict[str, Any], new: dict[str, Any] | None, checks: set[str]) -> list[Finding]:
    """The base dump's findings with those of ``checks`` replaced by ``new``'s (same seed, same planted boxes)."""
    if new is not None and set(new["boxes"]) != set(base["boxes"]):
        raise SystemExit("the two dumps hold different boxes: not the same dataset, seed and rate")
    rows = [r for r in base["findings"] if new is None or r[2] not in checks]
    if new is not None:
        rows += [r for r in new["findings"] if r[2] in checks]
    return [Finding.from_row(r) for r in rows]


def merged(per_check: dict[str, dict]) -> dict[tuple[str, int], float]:
    """Each box's best score over every check but the notes: the list ``audit/all`` and findings.csv show."""
    out: dict[tuple[str, int], float] = {}
    for check, scores in per_check.items():
        if check in NOTE_CHECKS:
            continue
        for key, value in scores.items():
            out[key] = max(out.get(key, 0.0), value)
    return out


def known_in_dump(dataset_dir: Path, csv: Path, boxes: dict) -> set[tuple[str, int]]:
    """The dump's keys of the known real errors (``--known`` CSV of the unmodified dataset), matched on image,
    class and coordinates as :func:`label_noise.known_keys` does (a planted box may renumber a file's lines)."""
    known = set().union(*load_known(csv).values())
    dataset = load_dataset(dataset_dir)
    where = {(rel, cls, tuple(np.round(xyxy, 9))): (rel, line) for (rel, line), (cls, xyxy, _) in boxes.items()}
    out = set()
    for rec in dataset.split("train"):
        for lab in rec.labels:
            if (rec.rel, lab.line) in known:
                hit = where.get((rec.rel, lab.class_id, tuple(np.round(lab.xyxy, 9))))
                if hit is not None:
                    out.add(hit)
    return out


def score(
    dump: dict[str, Any], findings: list[Finding], kinds: tuple[str, ...], known: set | None = None
) -> dict[str, dict[str, float]]:
    """Per kind: AP of the merged list, of the kind's own check, of the baseline (and with ``known`` set aside)."""
    keys = list(dump["boxes"])
    truth = DumpTruth(dump["boxes"])
    per_check = box_scores(findings)
    any_check = merged(per_check)
    out = {}
    for kind in kinds:
        if not any(t == kind for _, _, t in dump["boxes"].values()):
            continue
        row = {
            "merged": rank_metrics(keys, truth, kind, any_check)["ap"],
            "alone": rank_metrics(keys, truth, kind, per_check.get(TYPE_TO_CHECK[kind], {}))["ap"],
            "baseline": rank_metrics(keys, truth, kind, dump["baseline"])["ap"],
        }
        if known:
            row["merged_known"] = rank_metrics(keys, truth, kind, any_check, exclude=known)["ap"]
            row["baseline_known"] = rank_metrics(keys, truth, kind, dump["baseline"], exclude=known)["ap"]
        out[kind] = row
    return out


def outranking(
    dump: dict[str, Any], findings: list[Finding], kind: str, known: set | None = None
) -> list[tuple[float, str, tuple[str, int], str]]:
    """Untouched boxes whose merged score is at least the lowest planted box of ``kind``'s: (score, check, key,
    message), best first. Each one costs the merged AP."""
    per_check = box_scores(findings)
    any_check = merged(per_check)
    planted = [any_check.get(k, 0.0) for k, (_, _, t) in dump["boxes"].items() if t == kind]
    if not planted:
        return []
    floor = min(planted)
    best_check: dict[tuple[str, int], tuple[float, str, str]] = {}
    for f in findings:
        if f.split != "train" or f.line is None or f.check in NOTE_CHECKS:
            continue
        key = (f.image, f.line)
        if key not in best_check or f.score > best_check[key][0]:
            best_check[key] = (f.score, f.check, f.message)
    out = []
    for key, (_, _, t) in dump["boxes"].items():
        if t is None and any_check.get(key, 0.0) >= floor:
            s, check, msg = best_check[key]
            out.append((s, check, key, msg + (" [known real error]" if known and key in known else "")))
    return sorted(out, key=lambda r: -r[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", type=Path, help="a label_noise.py --dump pickle (every check)")
    parser.add_argument("--new", type=Path, default=None, help="a dump of the same seed with --checks re-run")
    parser.add_argument("--checks", nargs="+", default=["duplicate", "ambiguous"])
    parser.add_argument("--kinds", nargs="+", default=list(BOX_TYPES))
    parser.add_argument("--known", type=Path, default=None, help="the dataset's --known CSV (needs --dataset)")
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--show", nargs="*", default=[], help="kinds whose outranking boxes to list")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    base = load_dump(args.base)
    findings = splice(base, load_dump(args.new) if args.new else None, set(args.checks))
    known = known_in_dump(args.dataset, args.known, base["boxes"]) if args.known else None
    for kind, row in score(base, findings, tuple(args.kinds), known).items():
        print(kind, " ".join(f"{k} {v:.3f}" for k, v in row.items()))
    for kind in args.show:
        planted = sorted(
            (max(f.score for f in findings if (f.image, f.line) == k and f.check not in NOTE_CHECKS), k)
            for k, (_, _, t) in base["boxes"].items()
            if t == kind
        )
        rows = outranking(base, findings, kind, known)
        print(
            f"\n{kind}: {len(planted)} planted, merged scores {[round(s, 3) for s, _ in planted[:8]]} ...;"
            f" {len(rows)} untouched at or above the lowest"
        )
        for s, check, key, msg in rows[: args.top]:
            print(f"  {s:.3f} {check:18s} {key[0].split('/')[-1][:40]}:{key[1]} {msg[:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
