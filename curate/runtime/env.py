"""Offline environment for curate: set before Ultralytics, FiftyOne or rembg are imported.

``configure()`` only sets what the user has not set (``os.environ.setdefault``), so a user's own
FiftyOne/Ultralytics configuration always wins.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

#: The checkout holding the package in an editable install (where `make` puts .models/ and .yolo/).
REPO = Path(__file__).resolve().parents[2]


def workers(limit: int = 4) -> int:
    """Threads worth running at once here: the machine's cores, at most ``limit`` (thread pools, OpenMP)."""
    return max(1, min(limit, os.cpu_count() or 1))


def fit_side_by_side(
    jobs: Sequence[Callable[[], T]], done: Callable[[], None] | None = None, *, at_once: int | None = None
) -> list[T]:
    """Run independent scikit-learn fits (the folds of a cross-fit) at once, in threads; their results in order.

    Why not one fit after another on every core: a HistGradientBoosting fit on 2 OpenMP threads meets an
    OpenMP barrier at every tree node. On this 2-core VM, with passive waiting (needed so that a busy core
    does not make spinning threads collapse), the barriers cost more than the second thread saved: one
    fold took 14–21 s on 2 threads and 9–11 s on one. Independent fits side by side need no barrier, and
    scikit-learn's histogram and split code releases the GIL. Each job gets its share of the cores as
    OpenMP threads (one on 2 cores); OpenMP limits are per thread, so they are set inside the job's thread.
    ``done`` is called after each job finishes (a progress bar). ``at_once`` caps the jobs running together
    (default: all): each fit holds its own float64 copy of its training rows, so the box model's 9 fits at once
    held 9 copies (issue #25); the OpenMP share stays that of all the jobs, so every fit is the same as before.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import sklearn.ensemble  # noqa: F401  (OpenMP must be loaded before threadpool_limits can limit it)
    from threadpoolctl import threadpool_limits

    omp = max(1, workers() // max(len(jobs), 1))

    def run(job: Callable[[], T]) -> T:
        with threadpool_limits(limits=omp, user_api="openmp"):
            return job()

    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), at_once or len(jobs)))) as pool:
        futures = [pool.submit(run, job) for job in jobs]
        for future in as_completed(futures):
            future.result()  # an error surfaces here, not silently
            if done is not None:
                done()
    return [f.result() for f in futures]


#: Bytes that the fits running at once may hold in copies of their training rows (:func:`fits_at_once`).
FIT_ROWS_BUDGET = 512 * 2**20


def fits_at_once(jobs: int, rows_bytes: int, *, most: int | None = None, budget: int | None = None) -> int:
    """How many of ``jobs`` fits to run at once when each holds ``rows_bytes`` of copies of its training rows:
    as many as ``budget`` (default :data:`FIT_ROWS_BUDGET`) holds, at least one, at most ``most`` (default: all).

    Why: each fit's copies grow with the dataset, so a fixed number at once does not bound memory. The three
    folds of the missing check's final fit, side by side, hold about 3 × 0.39 GB at 30,000 images (issue #25);
    one after another, one of them. Below the budget nothing changes; above it, :func:`fit_side_by_side` keeps each
    fit's OpenMP share, so every fit, and what it predicts, is the same as side by side, only later."""
    budget = FIT_ROWS_BUDGET if budget is None else budget
    return max(1, min(jobs if most is None else min(most, jobs), budget // max(int(rows_bytes), 1)))


def release_freed_memory() -> None:
    """Give the pages the C heap holds free back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Why: glibc keeps freed blocks below its mmap threshold (which grows to 32 MB as large arrays are freed) in
    the heap of the thread that allocated them, so after the box model's fits in threads ~0.3 GB of memory no
    longer in use stayed resident through the later checks (food-ingredients; more with more boxes; issue #25).
    The runner calls it between checks: a few milliseconds.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # no C library to open, or one without malloc_trim (musl)
        pass


def no_all_nan_columns(X: "np.ndarray") -> "np.ndarray":
    """``X`` with every column that is NaN in all rows set to 0 (a copy only when there is one).

    Why: scikit-learn 1.9's HistGradientBoosting raises "window shape cannot be larger than input array
    shape" while binning a feature that has no non-missing value at all. On a small dataset a whole
    fold's training rows can lack a feature (no image with three same-class boxes leaves the sibling
    ratios NaN everywhere). A constant column gets no split, so the model and its predictions are what
    the fit would give if it ignored the feature, as older scikit-learn did.
    """
    import numpy as np

    empty = np.isnan(X).all(axis=0) if X.ndim == 2 and len(X) else np.zeros(0, bool)
    if not empty.any():
        return X
    X = X.copy()
    X[:, empty] = 0
    return X


def _home(sub: str) -> Path:
    local = REPO / sub
    return local if local.exists() else Path.home() / ".cache" / "curate" / sub.lstrip(".")


def configure() -> None:
    """Offline defaults: no telemetry, no downloads, fonts and model homes in known places."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault(
        "FIFTYONE_DATABASE_VALIDATION", "false"
    )  # the bundled mongod 6.0 is supported; silence the nag
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(_home(".yolo")))
    os.environ.setdefault("REMBG_HOME", str(_home(".models/rembg")))
    os.environ.setdefault("U2NET_HOME", str(Path(os.environ["REMBG_HOME"]) / "models" / "u2netp"))
    ensure_font()


def u2netp_path() -> Path | None:
    """Where the U²-Net-p weights are, or None when the set-up has not fetched them."""
    p = Path(os.environ.get("REMBG_HOME", _home(".models/rembg"))) / "models" / "u2netp" / "u2netp.onnx"
    return p if p.is_file() else None


def ensure_font() -> None:
    """Ultralytics downloads Arial.ttf on first plot unless it is there: copy matplotlib's DejaVuSans."""
    target = Path(os.environ.get("YOLO_CONFIG_DIR", _home(".yolo"))) / "Ultralytics"
    names = ("Arial.ttf", "Arial.Unicode.ttf")
    if all((target / n).exists() for n in names):
        return
    try:
        import matplotlib

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        target.mkdir(parents=True, exist_ok=True)
        for n in names:
            if not (target / n).exists():
                shutil.copyfile(src, target / n)
    except (ImportError, OSError):
        pass  # plots then fall back; training still works
