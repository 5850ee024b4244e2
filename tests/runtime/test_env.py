"""curate.runtime.env: offline defaults that never override the user, weights lookup, the Ultralytics font."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.runtime import env

MB = 1024 * 1024

OFFLINE_VARS = ("YOLO_OFFLINE", "FIFTYONE_DO_NOT_TRACK", "YOLO_CONFIG_DIR", "REMBG_HOME", "U2NET_HOME", "MPLBACKEND")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No offline variables set and HOME in tmp_path, so nothing is written to the real home."""
    for var in OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_configure_sets_offline_defaults(clean_env: Path) -> None:
    env.configure()
    assert os.environ["YOLO_OFFLINE"] == "1"
    assert os.environ["FIFTYONE_DO_NOT_TRACK"] == "true"
    assert os.environ["MPLBACKEND"] == "Agg"
    yolo = Path(os.environ["YOLO_CONFIG_DIR"])
    assert yolo.name in {".yolo", "yolo"}
    assert (yolo / "Ultralytics" / "Arial.ttf").is_file()
    # rembg's U2NET_HOME must be where u2netp.onnx lies (rembg looks for $U2NET_HOME/u2netp.onnx).
    assert Path(os.environ["U2NET_HOME"]) == Path(os.environ["REMBG_HOME"]) / "models" / "u2netp"


@pytest.mark.parametrize("var", OFFLINE_VARS)
def test_configure_keeps_user_values(clean_env: Path, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, str(clean_env / "mine"))
    env.configure()
    assert os.environ[var] == str(clean_env / "mine")


def test_u2netp_path_none_then_found(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = clean_env / "rembg"
    monkeypatch.setenv("REMBG_HOME", str(home))
    assert env.u2netp_path() is None
    weights = home / "models" / "u2netp" / "u2netp.onnx"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"onnx")
    assert env.u2netp_path() == weights


def test_ensure_font_copies_dejavu_and_keeps_existing(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(clean_env / "yolo"))
    target = clean_env / "yolo" / "Ultralytics"
    target.mkdir(parents=True)
    (target / "Arial.ttf").write_bytes(b"user font")
    env.ensure_font()
    dejavu = (Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf").read_bytes()
    assert (target / "Arial.ttf").read_bytes() == b"user font"
    assert (target / "Arial.Unicode.ttf").read_bytes() == dejavu


def test_ultralytics_finds_the_font_without_network(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ultralytics' own check_font must resolve to our copy (it downloads Arial.ttf otherwise)."""
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(clean_env / "yolo"))
    env.ensure_font()
    code = "from ultralytics.utils.checks import check_font; print(check_font('Arial.Unicode.ttf'))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ.copy()
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip().splitlines()[-1]) == clean_env / "yolo" / "Ultralytics" / "Arial.Unicode.ttf"


def test_fit_side_by_side_keeps_order_limits_openmp_and_raises():
    """Fold fits run at once: results come back in job order, each job sees its share of OpenMP threads
    (set inside its own thread: OpenMP limits are per thread), ``done`` ticks once per job, errors surface."""
    import time

    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    from curate.runtime.env import fit_side_by_side, workers

    ticks: list[int] = []

    def job(k: int):
        time.sleep(0.05 * (3 - k))  # finish in reverse order
        return k, _openmp_effective_n_threads()

    out = fit_side_by_side([lambda k=k: job(k) for k in range(3)], done=lambda: ticks.append(1))
    assert [k for k, _ in out] == [0, 1, 2]
    assert {n for _, n in out} == {max(1, workers() // 3)}
    assert len(ticks) == 3

    def boom():
        raise ValueError("fold 1 failed")

    with pytest.raises(ValueError, match="fold 1 failed"):
        fit_side_by_side([lambda: 1, boom])


def test_fit_side_by_side_runs_at_most_at_once_jobs_together():
    """``at_once`` caps the fits running together (each holds a copy of its training rows: the box model's 9
    fits at once held 9), keeps the job order and every job's OpenMP share of all the jobs."""
    import threading
    import time

    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    from curate.runtime.env import fit_side_by_side, workers

    running, most, lock = [0], [0], threading.Lock()

    def job(k: int):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)  # long enough for the pool to start every worker it may
        with lock:
            running[0] -= 1
        return k, _openmp_effective_n_threads()

    out = fit_side_by_side([lambda k=k: job(k) for k in range(9)], at_once=3)
    assert [k for k, _ in out] == list(range(9))
    assert most[0] == 3
    assert {n for _, n in out} == {max(1, workers() // 9)}


TRIM_PROBE = """
import threading

import numpy as np
import psutil

from curate.runtime.env import release_freed_memory


def work():
    arrays = [np.ones(12_500) for _ in range(2_000)]  # 100 KB each, below the mmap threshold: 200 MB a thread
    del arrays


me = psutil.Process()
release_freed_memory()
baseline = me.memory_info().rss
threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
held = me.memory_info().rss - baseline
release_freed_memory()
print(held, me.memory_info().rss - baseline)
"""


def test_release_freed_memory_gives_back_what_threads_freed():
    """Arrays freed by worker threads stay resident in glibc's per-thread heaps until trimmed (the box model's
    fits left ~0.3 GB so): after :func:`release_freed_memory` the process's RSS drops by most of them.

    In a fresh interpreter: heaps that earlier tests grew and freed would lend the threads memory that is
    already resident, and the precondition (the threads' frees stay resident) would depend on test order.
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("malloc_trim is glibc's")
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, check=True, timeout=120)
    held, after = (int(v) for v in out.stdout.split())
    assert held > 100 * 1024 * 1024  # most of what the threads freed (400 MB) was still resident
    assert after < held / 3


def test_no_all_nan_columns_zeroes_only_empty_columns():
    """Only a column with no value at all is filled (scikit-learn 1.9 cannot bin it); partly missing stays NaN."""
    import numpy as np

    from curate.runtime.env import no_all_nan_columns

    X = np.array([[1.0, np.nan, np.nan], [2.0, np.nan, 3.0]])
    out = no_all_nan_columns(X)
    assert out[:, 1].tolist() == [0.0, 0.0]
    assert np.isnan(out[0, 2]) and out[1, 2] == 3.0
    assert np.isnan(X[0, 1])  # the input is not modified
    full = np.ones((2, 2))
    assert no_all_nan_columns(full) is full


def test_fits_at_once_holds_as_many_copies_as_the_budget_allows():
    """As many fits at once as the budget holds copies of their rows: at least one, at most ``most`` or all."""
    from curate.runtime.env import FIT_ROWS_BUDGET, fits_at_once

    assert fits_at_once(3, 10 * MB, budget=512 * MB) == 3
    assert fits_at_once(9, 10 * MB, most=3, budget=512 * MB) == 3
    assert fits_at_once(9, 227 * MB, most=3, budget=512 * MB) == 2
    assert fits_at_once(3, 385 * MB, budget=512 * MB) == 1
    assert fits_at_once(3, 2048 * MB, budget=512 * MB) == 1  # one fit always runs
    assert fits_at_once(3, FIT_ROWS_BUDGET // 3) == 3  # the module's budget by default
    assert fits_at_once(3, FIT_ROWS_BUDGET // 3 + 1) == 2
