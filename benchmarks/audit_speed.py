"""Audit speed (issue #3): the full audit cold, the same audit re-run with nothing changed, and `--fast`.

Run by hand (`make bench` or `python benchmarks/audit_speed.py [DATASET] [--runs N]`) on an otherwise idle
machine: every timing here is wall-clock, so another job on the cores shows up in it.

"Cold" means a fresh `CURATE_CACHE_DIR` and a fresh `FIFTYONE_DATABASE_DIR` (so mongod starts on an empty
database as well); each command is a new `curate audit` process, imports included. Targets: the full audit
of food-ingredients (1,901 images) in <= 180 s on 2 cores; a re-run with no change in seconds; `--fast`
at >= 400 images/s. For `--fast` the table gives images/s three ways: end to end (a new process, FiftyOne
included), end to end without FiftyOne (`--no-fiftyone`), and the checks alone (findings.json's timings,
without the imports, the dataset read, FiftyOne and the report).

``--scale K`` (2–8) times `--fast --no-fiftyone` on a K-times larger dataset made from the given one (made
once under ``--work``): each image also mirrored, flipped or transposed, its boxes moved with it, so the
copies are new images for the near-duplicate search and the box model alike (JPEG quality 75 gives food-ingredients'
own file sizes, 54 kB an image: decoding time follows the file size). The fixed costs (the
imports, the plots) then weigh less, as in a dataset of 10,000 images.
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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CHECK_KEYS_SKIPPED = ("total", "fiftyone")


def audit(dataset: Path, out: Path, env: dict[str, str], *extra: str) -> tuple[float, dict[str, float]]:
    """One `curate audit` process: (wall seconds, findings.json timings)."""
    cmd = [sys.executable, "-m", "curate.app.cli", "audit", str(dataset), "--out", str(out), *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"audit failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    timings = json.loads((out / "findings.json").read_text())["timings"]
    return wall, timings


#: The 8 symmetries of a square image: (transpose first, then flip x, flip y). Variant 0 is the original.
SYMMETRIES = [
    (False, False, False),
    (False, True, False),
    (False, False, True),
    (False, True, True),
    (True, False, False),
    (True, True, False),
    (True, False, True),
    (True, True, True),
]


def _moved(line: str, transpose: bool, fx: bool, fy: bool) -> str:
    """A label line after the image's symmetry: a box (5 fields) or a polygon's points; others unchanged."""
    parts = line.split()
    try:
        vals = [float(v) for v in parts[1:]]
    except ValueError:
        return line
    if len(vals) == 4:
        cx, cy, w, h = vals
        if transpose:
            cx, cy, w, h = cy, cx, h, w
        cx, cy = (1 - cx if fx else cx), (1 - cy if fy else cy)
        return f"{parts[0]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"
    if len(vals) >= 6 and len(vals) % 2 == 0:
        pts = []
        for x, y in zip(vals[::2], vals[1::2]):
            if transpose:
                x, y = y, x
            pts += [1 - x if fx else x, 1 - y if fy else y]
        return parts[0] + " " + " ".join(f"{v:.6f}" for v in pts)
    return line


def scaled_dataset(source: Path, k: int, work: Path) -> Path:
    """``source`` made ``k`` times larger (see the module's docstring); reused when already made."""
    import shutil

    import cv2
    import yaml

    from curate.io.yolo import load_yolo

    dest = work / f"{source.name}-x{k}"
    if (dest / "data.yaml").exists():
        return dest
    ds = load_yolo(source)
    tmp = work / f"{dest.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    split_dirs = {"train": "train", "val": "valid", "test": "test"}
    for rec in ds.images:
        img = cv2.imread(str(rec.path), cv2.IMREAD_COLOR)
        lines = (
            rec.label_path.read_text(encoding="utf-8", errors="replace").splitlines()
            if rec.label_path and rec.label_path.exists()
            else []
        )
        folder = split_dirs.get(rec.split, rec.split)
        for v in range(k):
            transpose, fx, fy = SYMMETRIES[v]
            out = img if img is not None else None
            if out is not None:
                out = out.transpose(1, 0, 2) if transpose else out
                out = out[:, ::-1] if fx else out
                out = out[::-1] if fy else out
            stem = f"v{v}_{rec.path.stem}"
            (tmp / folder / "images").mkdir(parents=True, exist_ok=True)
            (tmp / folder / "labels").mkdir(parents=True, exist_ok=True)
            if out is not None:
                cv2.imwrite(
                    str(tmp / folder / "images" / f"{stem}.jpg"),
                    np.ascontiguousarray(out),
                    [cv2.IMWRITE_JPEG_QUALITY, 75],
                )
            else:
                shutil.copyfile(rec.path, tmp / folder / "images" / f"{stem}{rec.path.suffix}")
            (tmp / folder / "labels" / f"{stem}.txt").write_text(
                "".join(_moved(ln, transpose, fx, fy) + "\n" for ln in lines), encoding="utf-8"
            )
    names = {"train": "train/images", "val": "valid/images", "test": "test/images"}
    cfg = {s: names[s] for s in ds.splits if s in names} | {"nc": len(ds.names), "names": ds.names}
    (tmp / "data.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    tmp.rename(dest)
    return dest


def checks_seconds(timings: dict[str, float]) -> float:
    return sum(v for k, v in timings.items() if k not in CHECK_KEYS_SKIPPED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset", nargs="?", default=str(REPO.parent / "shared" / "datasets" / "food-ingredients"))
    ap.add_argument("--runs", type=int, default=1, help="cold full audits (each with a fresh cache and database)")
    ap.add_argument("--skip-full", action="store_true", help="only the --fast rows")
    ap.add_argument(
        "--scale", type=int, default=0, help="also time --fast --no-fiftyone on a dataset this many times larger (2–8)"
    )
    ap.add_argument("--work", default=str(REPO / "reports" / "bench"), help="where --scale's dataset is made (once)")
    args = ap.parse_args()
    dataset = Path(args.dataset)
    if not 0 <= args.scale <= len(SYMMETRIES) or args.scale == 1:
        raise SystemExit(f"--scale must be 2–{len(SYMMETRIES)}")
    from curate.io.yolo import load_yolo

    n = len(load_yolo(dataset).images)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CURATE_CACHE_DIR", "FIFTYONE_DATABASE_DIR"))}
    base.update(FIFTYONE_DO_NOT_TRACK="true", MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="curate-speed-") as tmp:
        root = Path(tmp)
        if not args.skip_full:
            for r in range(args.runs):
                env = {
                    **base,
                    "CURATE_CACHE_DIR": str(root / f"cache{r}"),
                    "FIFTYONE_DATABASE_DIR": str(root / f"db{r}"),
                }
                wall, t = audit(dataset, root / f"full{r}", env)
                parts = ", ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total" and v >= 0.5)
                rows.append((f"full audit, cold (run {r + 1})", wall, parts))
            wall, t = audit(dataset, root / "rerun", env)
            rows.append(
                (
                    "full audit, re-run with no change",
                    wall,
                    f"checks {checks_seconds(t):.1f}, FiftyOne {t.get('fiftyone', 0):.1f}",
                )
            )
        env = {**base, "CURATE_CACHE_DIR": str(root / "fast-cache"), "FIFTYONE_DATABASE_DIR": str(root / "fast-db")}
        wall, t = audit(dataset, root / "fast", env, "--fast")
        rows.append(("--fast, cold", wall, f"{n / wall:.0f} images/s end to end"))
        env = {**base, "CURATE_CACHE_DIR": str(root / "fast-cache2"), "FIFTYONE_DATABASE_DIR": str(root / "fast-db2")}
        wall, t = audit(dataset, root / "fast2", env, "--fast", "--no-fiftyone")
        checks = checks_seconds(t)
        rows.append(
            (
                "--fast --no-fiftyone, cold",
                wall,
                f"{n / wall:.0f} images/s end to end; checks alone {checks:.1f} s = {n / checks:.0f} images/s",
            )
        )
        if args.scale:
            big = scaled_dataset(dataset, args.scale, Path(args.work))
            env = {
                **base,
                "CURATE_CACHE_DIR": str(root / "scale-cache"),
                "FIFTYONE_DATABASE_DIR": str(root / "scale-db"),
            }
            n_big = len(load_yolo(big).images)
            wall, t = audit(big, root / "scale", env, "--fast", "--no-fiftyone")
            checks = checks_seconds(t)
            rows.append(
                (
                    f"--fast --no-fiftyone, cold, {n_big:,} images (x{args.scale})",
                    wall,
                    f"{n_big / wall:.0f} images/s end to end; "
                    f"checks alone {checks:.1f} s = {n_big / checks:.0f} images/s",
                )
            )
    print(f"\n{dataset.name}: {n} images, {os.cpu_count()} cores\n")
    print("| run | seconds | notes |\n|---|---|---|")
    for name, wall, notes in rows:
        print(f"| {name} | {wall:.1f} | {notes} |")


if __name__ == "__main__":
    main()
