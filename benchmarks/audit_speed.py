"""Audit speed (issue #3): the full audit cold, the same audit re-run with nothing changed, and `--fast`.

Run by hand (`make bench` or `python benchmarks/audit_speed.py [DATASET] [--runs N]`) on an otherwise idle
machine: every timing here is wall-clock, so another job on the cores shows up in it.

"Cold" means a fresh `CURATE_CACHE_DIR` and a fresh `FIFTYONE_DATABASE_DIR` (so mongod starts on an empty
database as well); each command is a new `curate audit` process, imports included. Targets: the full audit
of food-ingredients (1,901 images) in <= 180 s on 2 cores; a re-run with no change in seconds; `--fast`
at >= 400 images/s. For `--fast` the table gives images/s three ways: end to end (a new process, FiftyOne
included), end to end without FiftyOne (`--no-fiftyone`), and the checks alone (findings.json's timings,
without the imports, the dataset read, FiftyOne and the report).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECK_KEYS_SKIPPED = ("total", "fiftyone")


def audit(dataset: Path, out: Path, env: dict[str, str], *extra: str) -> tuple[float, dict[str, float]]:
    """One `curate audit` process: (wall seconds, findings.json timings)."""
    cmd = [sys.executable, "-m", "curate.cli", "audit", str(dataset), "--out", str(out), *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"audit failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    timings = json.loads((out / "findings.json").read_text())["timings"]
    return wall, timings


def checks_seconds(timings: dict[str, float]) -> float:
    return sum(v for k, v in timings.items() if k not in CHECK_KEYS_SKIPPED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset", nargs="?", default=str(REPO.parent / "shared" / "datasets" / "food-ingredients"))
    ap.add_argument("--runs", type=int, default=1, help="cold full audits (each with a fresh cache and database)")
    ap.add_argument("--skip-full", action="store_true", help="only the --fast rows")
    args = ap.parse_args()
    dataset = Path(args.dataset)
    from curate.formats.yolo import load_yolo

    n = len(load_yolo(dataset).images)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CURATE_CACHE_DIR", "FIFTYONE_DATABASE_DIR"))}
    base.update(FIFTYONE_DO_NOT_TRACK="true", MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="curate-speed-") as tmp:
        root = Path(tmp)
        if not args.skip_full:
            for r in range(args.runs):
                env = {**base, "CURATE_CACHE_DIR": str(root / f"cache{r}"), "FIFTYONE_DATABASE_DIR": str(root / f"db{r}")}
                wall, t = audit(dataset, root / f"full{r}", env)
                parts = ", ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total" and v >= 0.5)
                rows.append((f"full audit, cold (run {r + 1})", wall, parts))
            wall, t = audit(dataset, root / "rerun", env)
            rows.append(("full audit, re-run with no change", wall, f"checks {checks_seconds(t):.1f}, FiftyOne {t.get('fiftyone', 0):.1f}"))
        env = {**base, "CURATE_CACHE_DIR": str(root / "fast-cache"), "FIFTYONE_DATABASE_DIR": str(root / "fast-db")}
        wall, t = audit(dataset, root / "fast", env, "--fast")
        rows.append(("--fast, cold", wall, f"{n / wall:.0f} images/s end to end"))
        env = {**base, "CURATE_CACHE_DIR": str(root / "fast-cache2"), "FIFTYONE_DATABASE_DIR": str(root / "fast-db2")}
        wall, t = audit(dataset, root / "fast2", env, "--fast", "--no-fiftyone")
        checks = checks_seconds(t)
        rows.append(("--fast --no-fiftyone, cold", wall, f"{n / wall:.0f} images/s end to end; checks alone {checks:.1f} s = {n / checks:.0f} images/s"))
    print(f"\n{dataset.name}: {n} images, {os.cpu_count()} cores\n")
    print("| run | seconds | notes |\n|---|---|---|")
    for name, wall, notes in rows:
        print(f"| {name} | {wall:.1f} | {notes} |")


if __name__ == "__main__":
    main()
