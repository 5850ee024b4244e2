"""Audit memory (issue #25): peak RSS of the whole process tree, time and cache size, as the dataset grows and
for one dense label file; projected to 100,000 images.

Run by hand (`make bench`, or `python benchmarks/memory.py [--scales 1 4 16] [--dense 10000] [--fast]`) on an
otherwise idle machine; ``--stages K`` instead runs one full audit at scale K in this process and gives each
check's peak and seconds (where the memory goes). Each audit is a new `curate audit --no-fiftyone` process with a fresh
`CURATE_CACHE_DIR` (cold). The audit spawns children (the box model's process, the report's plots, worker
pools), so the peak is of the sum of RSS over the process and all its descendants, polled every 0.1 s by
psutil (a child that lives less than that can be missed). A run whose tree passes ``--max-rss`` is killed and
reported as ``> max`` rather than left to take the shared host down (the old code passed 24 GB on 10,000 boxes).

- ``--scales``: food-ingredients made K times larger by :func:`audit_speed.scaled_dataset` (each image also
  mirrored, flipped or transposed and re-encoded: new images for every check); K up to 8 from the 8
  symmetries of a square, and above 8 the symmetries again at JPEG qualities 85, 95 (re-encoded copies,
  distinct bytes; the near-duplicate check pairs them, as it should).
- ``--dense N``: the bundled sample with one train label file replaced by N boxes (a jittered grid of objects
  of a few classes that overlap their neighbours a little, plus a few exact and near duplicates).

Targets: peak ≤ 2 GB at every size and for the 10,000-box file; time linear in the images; the full audit of
100,000 images projected ≤ 30 min on 2 cores (a straight line through the two largest scales; ×8 is among the
defaults because ×4's 19,044 boxes still get `class_inconsistent`'s crop embeddings, which ×8, ×16 and 100,000
images skip (``EMBED_MAX_BOXES``), so a line from ×4 would be too flat).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_speed import SYMMETRIES, scaled_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "curate" / "sample" / "food-mini"
GB = 1024**3


def tree_rss(proc) -> int:
    """Bytes of RSS of ``proc`` and all its descendants now (processes that end meanwhile count 0)."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict[str, str], *, max_rss: int, poll: float = 0.1) -> tuple[int, float, int]:
    """Run ``cmd``: (return code, wall seconds, peak tree RSS in bytes). Killed (rc -9) past ``max_rss``."""
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        if peak > max_rss:
            for p in [*ps.children(recursive=True), ps]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            proc.wait()
            return -9, time.perf_counter() - t, peak
        time.sleep(poll)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        print(f"  rc {proc.returncode}: {err.strip().splitlines()[-1:] if err.strip() else ''}", file=sys.stderr)
    return proc.returncode, time.perf_counter() - t, peak


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def check_seconds(findings_json: Path) -> dict[str, float]:
    """The audit's seconds per check from its findings.json, largest first, with ``other`` the rest of its total
    (the proposals and their resize search, the report): the stage shares of a run, read after it ends."""
    import json

    try:
        timings = json.loads(findings_json.read_text(encoding="utf-8"))["timings"]
    except (OSError, ValueError, KeyError):
        return {}
    total = timings.pop("total", 0.0)
    timings["other"] = total - sum(timings.values())
    return dict(sorted(timings.items(), key=lambda kv: -kv[1]))


def dense_boxes(n: int, seed: int = 0, classes: int = 4) -> list[str]:
    """``n`` YOLO label lines: a jittered grid of boxes that overlap their neighbours a little, a few classes,
    and about 1 % exact or near duplicates of an earlier line (so the pair checks have pairs to find)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    cell = 1.0 / side
    lines = []
    for k in range(n):
        r, c = divmod(k, side)
        w, h = cell * rng.uniform(0.7, 1.4, size=2)
        cx = min(max((c + 0.5) * cell + rng.normal(0, 0.1 * cell), w / 2), 1 - w / 2)
        cy = min(max((r + 0.5) * cell + rng.normal(0, 0.1 * cell), h / 2), 1 - h / 2)
        cls = int(rng.integers(classes))
        if k and rng.random() < 0.01:  # a duplicate of an earlier line, exact or shifted a little
            cls, cx, cy, w, h = (float(v) for v in lines[int(rng.integers(k))].split())
            cls = int(cls) if rng.random() < 0.7 else int(rng.integers(classes))
            cx += rng.normal(0, 0.05 * w) if rng.random() < 0.5 else 0.0
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def dense_dataset(n: int, work: Path) -> Path:
    """The bundled sample with its first train label file replaced by ``n`` boxes (made once under ``work``)."""
    dest = work / f"food-mini-dense{n}"
    if (dest / "data.yaml").exists():
        return dest
    tmp = work / f"{dest.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(SAMPLE, tmp)
    label = sorted((tmp / "train" / "labels").glob("*.txt"))[0]
    label.write_text("\n".join(dense_boxes(n)) + "\n", encoding="utf-8")
    tmp.rename(dest)
    return dest


def big_scaled_dataset(source: Path, k: int, work: Path) -> Path:
    """``source`` made ``k`` times larger: :func:`scaled_dataset`'s 8 symmetries, and above 8 copies of those
    re-encoded at JPEG quality 85, 95 (different bytes, the same pictures)."""
    if k <= len(SYMMETRIES):
        return scaled_dataset(source, k, work)
    import cv2

    base = scaled_dataset(source, len(SYMMETRIES), work)
    dest = work / f"{source.name}-x{k}"
    if (dest / "data.yaml").exists():
        return dest
    tmp = work / f"{dest.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp)
    rounds = -(-k // len(SYMMETRIES))
    for img in sorted(base.glob("*/images/*.jpg")):
        pixels = cv2.imread(str(img), cv2.IMREAD_COLOR)
        label = img.parent.parent / "labels" / f"{img.stem}.txt"
        for r in range(1, rounds):
            out = tmp / img.parent.relative_to(base) / f"q{r}_{img.name}"
            cv2.imwrite(str(out), pixels, [cv2.IMWRITE_JPEG_QUALITY, min(95, 75 + 10 * r)])
            shutil.copyfile(label, out.parent.parent / "labels" / f"{out.stem}.txt")
    tmp.rename(dest)
    return dest


def stage_peaks(dataset: Path, out: Path, poll: float = 0.05) -> list[tuple[str, float, float, int]]:
    """The full audit of ``dataset`` in this process, the process tree's RSS polled every ``poll`` s: (stage,
    seconds, CPU seconds, peak bytes) per check, in the order they ran (``--stages``: which check holds the peak,
    which one grows with the data, and which keeps only one core busy). The box model runs inside ``grouped``, the
    first check that needs it."""
    import threading

    import psutil

    from curate.audit.runner import run_audit
    from curate.io.yolo import load_yolo
    from curate.runtime.env import configure

    configure()
    me, done = psutil.Process(), threading.Event()
    stages = [["read", time.perf_counter(), 0, sum(me.cpu_times()[:4])]]

    def watch() -> None:
        while not done.is_set():
            stage = stages[-1]
            stage[2] = max(stage[2], tree_rss(me))
            time.sleep(poll)

    def mark(name: str) -> None:
        stages.append([name, time.perf_counter(), tree_rss(me), sum(me.cpu_times()[:4])])
        wall, cpu = stages[-1][1] - stages[-2][1], stages[-1][3] - stages[-2][3]
        print(f"  {stages[-2][0]}: {wall:.1f} s, {cpu:.1f} s CPU, peak {stages[-2][2] / GB:.2f} GB", flush=True)

    threading.Thread(target=watch, daemon=True).start()
    ds = load_yolo(dataset)
    mark("start")
    run_audit(ds, out_dir=out, fiftyone=False, on_check=mark)
    mark("end")
    done.set()
    return [(n, stages[k + 1][1] - t, stages[k + 1][3] - cpu, peak) for k, (n, t, peak, cpu) in enumerate(stages[:-1])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default=str(REPO.parent / "shared" / "datasets" / "food-ingredients"))
    ap.add_argument(
        "--scales", type=int, nargs="*", default=[1, 4, 8, 16], help="dataset sizes, as multiples of --dataset"
    )
    ap.add_argument("--dense", type=int, nargs="*", default=[10000], help="boxes in the one dense label file")
    ap.add_argument("--fast", action="store_true", help="time `--fast` audits instead of full ones")
    ap.add_argument("--max-rss", type=float, default=8.0, help="GB: a run past this is killed and reported as such")
    ap.add_argument("--work", default=str(REPO / "reports" / "bench"), help="where the scaled datasets are made (once)")
    ap.add_argument(
        "--stages", type=int, metavar="K", help="instead: the peak RSS and seconds of each check at scale K, in process"
    )
    args = ap.parse_args()
    from curate.io.yolo import load_yolo

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.stages:
        dataset = big_scaled_dataset(Path(args.dataset), args.stages, work) if args.stages > 1 else Path(args.dataset)
        with tempfile.TemporaryDirectory(prefix="curate-stages-") as tmp:
            os.environ["CURATE_CACHE_DIR"] = str(Path(tmp) / "cache")  # cold, as the audits below
            rows = stage_peaks(dataset, Path(tmp) / "out")
        print(f"\n{dataset.name}, full audit in process, cold cache\n")
        print("| stage | seconds | CPU s (user+sys, children too) | cores busy | peak RSS |\n|---|---|---|---|---|")
        for name, sec, cpu, peak in rows:
            print(f"| {name} | {sec:.1f} | {cpu:.1f} | {cpu / max(sec, 1e-9):.2f} | {peak / GB:.2f} GB |")
        return
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CURATE_CACHE_DIR", "FIFTYONE_DATABASE_DIR"))}
    base.update(FIFTYONE_DO_NOT_TRACK="true", MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    runs = [
        (
            f"{Path(args.dataset).name} ×{k}",
            lambda k=k: big_scaled_dataset(Path(args.dataset), k, work) if k > 1 else Path(args.dataset),
        )
        for k in args.scales
    ]
    runs += [
        (f"one label file with {n:,} boxes (+ the sample's 80 images)", lambda n=n: dense_dataset(n, work))
        for n in args.dense
    ]
    rows = []
    for name, make in runs:
        dataset = make()
        ds = load_yolo(dataset)
        images, boxes = len(ds.images), sum(len(r.labels) for r in ds.images)
        with tempfile.TemporaryDirectory(prefix="curate-memory-") as tmp:
            env = {**base, "CURATE_CACHE_DIR": str(Path(tmp) / "cache")}
            cmd = [
                sys.executable,
                "-m",
                "curate.app.cli",
                "audit",
                str(dataset),
                "--no-fiftyone",
                "--out",
                str(Path(tmp) / "out"),
            ]
            rc, wall, peak = measure(cmd + (["--fast"] if args.fast else []), env, max_rss=int(args.max_rss * GB))
            cache = folder_bytes(Path(tmp) / "cache")
            seconds = check_seconds(Path(tmp) / "out" / "findings.json")
        rows.append((name, images, boxes, rc, wall, peak, cache))
        print(
            f"{name}: {images} images, {boxes} boxes, rc {rc}, {wall:.1f} s, "
            f"peak {peak / GB:.2f} GB, cache {cache / 1e6:.0f} MB",
            flush=True,
        )
        if seconds:  # where the time went: the audit's own seconds per check, the rest (proposals, report) after
            print("  " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), flush=True)
    mode = "--fast" if args.fast else "full"
    print(f"\n{mode} audit, --no-fiftyone, cold cache, {os.cpu_count()} cores\n")
    print("| data | images | boxes | seconds | peak RSS (all processes) | cache |\n|---|---|---|---|---|---|")
    for name, images, boxes, rc, wall, peak, cache in rows:
        peak_s = (
            f"> {args.max_rss:g} GB (killed)"
            if rc == -9
            else f"{peak / GB:.2f} GB" + ("" if rc == 0 else f" (rc {rc})")
        )
        print(f"| {name} | {images:,} | {boxes:,} | {wall:.1f} | {peak_s} | {cache / 1e6:.0f} MB |")
    scaled = [r for r in rows if "×" in r[0] and r[3] == 0]
    if len(scaled) >= 2:  # a straight line through the two largest sizes
        (_, n1, _, _, t1, p1, c1), (_, n2, _, _, t2, p2, c2) = sorted(scaled, key=lambda r: r[1])[-2:]
        per = lambda a, b: (b - a) / (n2 - n1)  # noqa: E731
        at = lambda a, b: b + per(a, b) * (100_000 - n2)  # noqa: E731
        print(
            f"\nprojected to 100,000 images (line through {n1:,} and {n2:,}): {at(t1, t2) / 60:.1f} min, "
            f"peak {at(p1, p2) / GB:.1f} GB, cache {at(c1, c2) / 1e9:.1f} GB"
        )


if __name__ == "__main__":
    main()
