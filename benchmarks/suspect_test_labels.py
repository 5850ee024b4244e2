"""How many wrong test labels does train-and-compare's test-set audit find? (issue #24)

``train-and-compare`` runs the audit's ``--fast`` checks on the test set's dataset and counts the suspect labels of
the test images (:func:`curate.train.compare.ground_truth.audit_labels`). This plants label errors into a copy of
each dataset's test split (the pool's generator, :mod:`planted_noise`, ``--rate`` of the test boxes per kind; the
other splits as they are) and counts, per planted kind, the planted boxes flagged, and the suspect labels of the
clean and of the noisy test split.

    python benchmarks/suspect_test_labels.py ../shared/datasets/bccd-blood-cells ../shared/datasets/epicureai
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path


def measure(root: Path, *, rate: float, seed: int) -> str:
    from curate.io.yolo import load_yolo
    from curate.train.compare.ground_truth import audit_labels
    from planted_noise import SOURCE, plant_errors

    ds = load_yolo(root)
    split = "test" if ds.split("test") else "val"
    test = [replace(r, split="train") for r in ds.split(split)]  # plant_errors plants into train
    noisy, truth = plant_errors(replace(ds, images=test), rate=rate, seed=seed)
    noisy_test = [replace(r, split=split) for r in noisy.images]
    whole = replace(ds, images=[r for r in ds.images if r.split != split] + noisy_test, findings=[])
    with tempfile.TemporaryDirectory() as tmp:
        clean = audit_labels(ds, ds.split(split), Path(tmp) / "clean")
        t0 = time.perf_counter()
        found = audit_labels(whole, noisy_test, Path(tmp) / "noisy")
        seconds = time.perf_counter() - t0
        flagged = _flagged(Path(found["findings"]))
    planted = Counter(k for k in truth.boxes.values() if k != SOURCE)
    caught = Counter(k for key, k in truth.boxes.items() if k != SOURCE and key in flagged)
    false = sum(1 for key in flagged if truth.truth(*key) is None)
    per_kind = ", ".join(f"{k} {caught[k]}/{n}" for k, n in sorted(planted.items()))
    return (
        f"| {root.name} | {split} | {len(test)} | {clean['labels']:,} | {clean['suspect']} ({clean['share']:.1%}) "
        f"| {sum(truth.counts.values())} | {found['suspect']} ({found['share']:.1%}) "
        f"| {sum(caught.values())}/{sum(planted.values())} ({per_kind}; missing {truth.counts.get('missing', 0)}: "
        f"not run) | {false} | {seconds:.1f} |"
    )


def _flagged(findings_csv: Path) -> set[tuple[str, int]]:
    import csv

    with findings_csv.open(newline="", encoding="utf-8") as fh:
        return {(row["image"], int(row["line"])) for row in csv.DictReader(fh) if row["line"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--rate", type=float, default=0.025, help="planted errors per kind, share of the test boxes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        "| dataset | split | images | labels | suspect, clean | planted | suspect, noisy | planted boxes flagged "
        "| flagged, not planted | s |\n|---|---|---:|---:|---:|---:|---:|---|---:|---:|"
    )
    for root in args.datasets:
        print(measure(root, rate=args.rate, seed=args.seed), flush=True)


if __name__ == "__main__":
    main()
