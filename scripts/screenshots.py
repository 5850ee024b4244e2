"""Regenerate the README's screenshots of curate's own pages from the current code.

Runs the README's guided tour on the bundled sample (no review: the export is the unreviewed copy) in a work
folder, plus the default recipe under its ``ci`` profile, then photographs each page with Debian's headless
chromium (the browser the tests use; never a downloaded one):

- ``docs/audit-report.png``  ← ``reports/food-mini-<key>/audit/report.html``
- ``docs/compare-report.png`` ← the tour's ``compare.html`` (its tiny 1-epoch, 64-px training)
- ``docs/run-summary.png``   ← the recipe run's ``summary.html``

Not the FiftyOne App pictures (``docs/review-*.png``: tests/fiftyone/test_review_app.py drives the App) nor
the backgrounds contact sheet (a file ``curate backgrounds`` writes itself). About 3 minutes on 2 CPU cores.
Usage: ``python scripts/screenshots.py [--work DIR] [--docs DIR]`` (``--work`` keeps the tour's folders).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curate.report.browser import OFFLINE_FLAGS  # noqa: E402

SAMPLE = REPO / "curate" / "sample" / "food-mini"
CURATE = [sys.executable, "-m", "curate.app.cli"]
#: (page, picture, window width × height): the sizes the README's pictures have had.
SHOTS = (
    ("audit", "audit-report.png", (1280, 1600)),
    ("compare", "compare-report.png", (1280, 1050)),
    ("summary", "run-summary.png", (1280, 560)),
)
CHROMIUM_FLAGS = [*OFFLINE_FLAGS, "--hide-scrollbars"]


def curate(work: Path, *args: str) -> None:
    """One tour command in ``work``, as a user runs it; stops the script with its output when it fails.

    Its own FiftyOne database and cache under ``work/.state``: making pictures never touches a review.
    """
    state = work / ".state"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "YOLO_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "FIFTYONE_DATABASE_DIR": str(state / "fiftyone-db"),
        "FIFTYONE_DEFAULT_DATASET_DIR": str(state / "fiftyone-data"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "CURATE_CACHE_DIR": str(state / "cache"),
    }
    env.pop("FIFTYONE_DATABASE_URI", None)
    r = subprocess.run([*CURATE, *args], cwd=work, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"curate {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def tour(work: Path) -> dict[str, Path]:
    """The pages to photograph, made by the README's own commands on the sample."""
    sample = str(SAMPLE)
    curate(work, "audit", sample)
    curate(work, "export", sample, "--out", "food-mini-reviewed")
    curate(work, "rebalance", "food-mini-reviewed", "--out", "food-mini-6",
           "--keep-classes", "chicken,onion,potato,egg,tomato,carrot", "--split", "80/10/10")  # fmt: skip
    curate(work, "backgrounds", "food-mini-6", "--out", "food-mini-6-bg", "--fraction", "0.10")
    curate(work, "train-and-compare", sample, "food-mini-6-bg",
           "--imgsz", "64", "--epochs", "1", "--batch", "8", "--workers", "0", "--device", "cpu")  # fmt: skip
    curate(work, "run", str(REPO / "pipelines" / "default.yaml"), sample, "--profile", "ci")
    reports = work / "reports"
    return {
        "audit": next(reports.glob("food-mini-*/audit/report.html")),
        "compare": next(reports.glob("compare/*/compare.html")),
        "summary": next(reports.glob("default-ci-food-mini-*/summary.html")),
    }


def screenshot(page: Path, picture: Path, size: tuple[int, int], profile: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed (make chromium, or apt-get install chromium)")
    cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={picture}",
           f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if r.returncode or not picture.exists():
        sys.exit(f"chromium could not photograph {page}:\n{r.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for the tour's outputs (kept); default: a temporary one")
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="where the pictures go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-shots-") as tmp:
        work = (args.work or Path(tmp) / "work").resolve()
        work.mkdir(parents=True, exist_ok=True)
        pages = tour(work)
        args.docs.mkdir(parents=True, exist_ok=True)
        for key, name, size in SHOTS:
            screenshot(pages[key], args.docs / name, size, Path(tmp) / "profile")
            print(f"{args.docs / name}  ← {pages[key]}")


if __name__ == "__main__":
    main()
