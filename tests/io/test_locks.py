"""Per-dataset locks: two commands on one dataset never run at once; the second names the first and waits.

Real processes (``python -m curate.app.cli``), a real FiftyOne database in a fresh folder, real files.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.io.locks import LockTimeout, dataset_lock_path, hold
from curate.io.yolo import load_yolo

REPO = Path(__file__).resolve().parents[2]
#: Cheap checks with no child process: the test is about the lock, not the checks.
CHECKS = "duplicate,ambiguous"


def _tree(make_yolo_tree, root: Path) -> Path:
    return make_yolo_tree(
        root,
        {
            "train/a.jpg": ["0 0.5 0.5 0.3 0.3", "0 0.5 0.5 0.3 0.3", "1 0.2 0.2 0.1 0.1"],
            "train/b.jpg": ["1 0.4 0.4 0.2 0.2"],
            "val/c.jpg": ["0 0.6 0.6 0.2 0.2"],
            "val/d.jpg": [],
        },
    )


def _env(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: this checkout first, a fresh FiftyOne database folder, a shared cache root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_DATABASE")}
    env.update(
        PYTHONPATH=str(REPO),
        FIFTYONE_DATABASE_DIR=str(tmp_path / "fiftyone-db"),
        FIFTYONE_DATABASE_VALIDATION="false",
        CURATE_CACHE_DIR=str(tmp_path / "cache"),
    )
    return env


def _start(args: list[str], tmp_path: Path, log: str) -> tuple[subprocess.Popen, Path, Path]:
    out, err = tmp_path / f"{log}.out", tmp_path / f"{log}.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.app.cli", *args],
        cwd=tmp_path, env=_env(tmp_path), stdout=out.open("w"), stderr=err.open("w"),
    )  # fmt: skip
    return proc, out, err


def _finish(proc: subprocess.Popen, err: Path, timeout: float = 300) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    assert rc == 0, err.read_text()[-2000:]


def test_second_command_waits_and_names_the_first(tmp_path: Path, make_yolo_tree, monkeypatch) -> None:
    root = _tree(make_yolo_tree, tmp_path / "shop")
    ds = load_yolo(root)
    monkeypatch.setenv("CURATE_CACHE_DIR", _env(tmp_path)["CURATE_CACHE_DIR"])
    with hold(dataset_lock_path(ds.slug), command="curate export"):  # this test process plays the first command
        args = ["audit", str(root), "--no-fiftyone", "--fast", "--checks", CHECKS, "--out", "a"]
        proc, _, err = _start(args, tmp_path, "a")
        deadline = time.time() + 120
        while "waiting for" not in err.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        line = err.read_text().strip()
        assert f"waiting for `curate export` (PID {os.getpid()}) on {ds.root}" in line, line
        time.sleep(1)
        assert proc.poll() is None, "the audit ran while the dataset was locked"
        assert not (tmp_path / "a" / "findings.csv").exists()
    _finish(proc, err)
    assert (tmp_path / "a" / "findings.csv").is_file()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from curate.io.locks import hold\nwith hold({str(lock)!r}, command='curate audit'):\n"
         "    print('held', flush=True)\n    import time; time.sleep(600)"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout, match=rf"`curate audit` \(PID {holder.pid}\)"):
            with hold(lock, timeout=0.5):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    t = time.perf_counter()
    with hold(lock, timeout=5):
        assert '"pid": %d' % os.getpid() in lock.read_text()
    assert time.perf_counter() - t < 1


def _findings_rows(out: Path) -> str:
    return (out / "findings.csv").read_text()


def test_two_audits_of_one_dataset_at_once(tmp_path: Path, make_yolo_tree) -> None:
    """Both succeed with a lone run's findings; when they overlapped, the second waited naming the first."""
    root = _tree(make_yolo_tree, tmp_path / "shop")
    args = ["audit", str(root), "--fast", "--checks", CHECKS]
    lone, _, lone_err = _start([*args, "--out", "lone"], tmp_path, "lone")
    _finish(lone, lone_err)
    (a, a_out, a_err), (b, b_out, b_err) = (_start(args, tmp_path, n) for n in ("a", "b"))
    _finish(a, a_err)
    _finish(b, b_err)
    slug = load_yolo(root).slug
    fast_out = tmp_path / "reports" / slug / "audit-fast"  # --fast writes beside the full audit
    assert _findings_rows(fast_out) == _findings_rows(tmp_path / "lone")
    for out in (a_out, b_out):
        assert f"FiftyOne: dataset 'curate-{slug}'" in " ".join(out.read_text().split())  # rich wraps at 80 columns
    for err, other in ((a_err, b), (b_err, a)):
        waited = re.search(r"waiting for `curate audit` \(PID (\d+)\)", err.read_text())
        if waited:
            assert int(waited.group(1)) == other.pid


def test_two_audits_of_different_datasets_at_once(tmp_path: Path, make_yolo_tree) -> None:
    """Different datasets do not wait for each other, and both start or join the one local database."""
    roots = [_tree(make_yolo_tree, tmp_path / name) for name in ("shop", "farm")]
    runs = [
        _start(["audit", str(r), "--fast", "--checks", CHECKS, "--out", f"{r.name}-audit"], tmp_path, r.name)
        for r in roots
    ]
    for proc, out, err in runs:
        _finish(proc, err)
        assert "waiting for" not in err.read_text()
    for r, (_, out, _) in zip(roots, runs):
        assert f"FiftyOne: dataset 'curate-{load_yolo(r).slug}'" in " ".join(out.read_text().split())
        assert (tmp_path / f"{r.name}-audit" / "findings.csv").is_file()


def test_export_while_review_serves_does_not_wait(tmp_path: Path, make_yolo_tree) -> None:
    """`curate review` holds the dataset only while it prepares: an export while the App serves runs at once."""
    import socket

    root = _tree(make_yolo_tree, tmp_path / "shop")
    audit, _, audit_err = _start(
        ["audit", str(root), "--fast", "--checks", CHECKS, "--out", "audit"], tmp_path, "audit"
    )
    _finish(audit, audit_err)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    review, review_out, review_err = _start(["review", str(root), "--port", str(port)], tmp_path, "review")
    try:
        deadline = time.time() + 240
        while "curate export" not in review_out.read_text():  # the instructions, printed once the App serves
            assert review.poll() is None and time.time() < deadline, review_err.read_text()[-2000:]
            time.sleep(0.5)
        export, _, export_err = _start(["export", str(root), "--out", "exported"], tmp_path, "export")
        _finish(export, export_err, timeout=120)
        assert "waiting for" not in export_err.read_text()
        assert review.poll() is None, "the App stopped"
    finally:
        review.send_signal(signal.SIGINT)
        try:
            review.wait(timeout=30)
        except subprocess.TimeoutExpired:
            review.kill()
            review.wait()
