"""Killed runs leave nothing half-written: each writer is killed with SIGKILL at seeded random points (real
processes), then re-run; the output is either absent or whole, and the re-run's equals an uninterrupted
run's byte for byte where the command is deterministic."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.io.outputs import is_complete
from curate.runtime import env

CURATE = [sys.executable, "-m", "curate.app.cli"]
#: Parts of a file that differ between two identical runs: backgrounds.json's wall-clock seconds.
VOLATILE = {"backgrounds.json": ("seconds",)}


def _env(tmp: Path) -> dict:
    return {**os.environ, "COLUMNS": "200", "CURATE_CACHE_DIR": str(tmp / "cache"), "YOLO_OFFLINE": "1"}


def _digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (dot files included) → sha256 of its bytes (volatile JSON keys left out)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name in VOLATILE:
                doc = json.loads(data)
                data = json.dumps({k: v for k, v in doc.items() if k not in VOLATILE[p.name]}, sort_keys=True).encode()
            out[p.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def _leftovers(parent: Path) -> list[str]:
    """Temporary folders and files of a writer (curate.io.outputs) in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if ".curate-tmp-" in p.name or ".curate-old-" in p.name)


def _kill_at(
    cmd: list[str], tmp: Path, *, delay: float | None, parent: Path, prefix: str = "", settle: float = 0.03
) -> None:
    """Start ``cmd``; SIGKILL it after ``delay`` seconds, or (``delay`` None) up to ``settle`` seconds after it
    starts writing: when an entry whose name starts with ``prefix`` or ``.prefix`` (its temporary folder, or
    the target itself) appears in ``parent``."""
    p = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(tmp), start_new_session=True
    )
    t0 = time.time()

    def writing() -> bool:
        try:
            return any(n.startswith((prefix, f".{prefix}")) for n in os.listdir(parent))
        except FileNotFoundError:
            return False

    if delay is not None:
        while p.poll() is None and time.time() - t0 < delay:
            time.sleep(0.005)
    else:
        while p.poll() is None and time.time() - t0 < 120 and not writing():
            time.sleep(0.002)
        time.sleep(random.uniform(0.0, settle))
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def _check_kills(
    args: list[str], tmp: Path, *, seed: int, delays: int, mid_write: int, ref_seconds: float, ref: dict
) -> None:
    """Kill ``curate ARGS --out OUT`` at ``delays`` random times and ``mid_write`` times during the write;
    after each kill OUT is absent or whole, and a re-run (when OUT is absent) writes exactly ``ref``."""
    rng = random.Random(seed)
    points = [rng.uniform(0.1, 1.0) * ref_seconds for _ in range(delays)] + [None] * mid_write
    for k, delay in enumerate(points):
        parent = tmp / f"kill{k}"
        parent.mkdir()
        out = parent / "out"
        cmd = CURATE + args + ["--out", str(out)]
        random.seed(seed + k)
        _kill_at(cmd, tmp, delay=delay, parent=parent)
        if out.exists():  # killed after the rename: the result is whole
            assert is_complete(out) and _digest(out) == ref, f"kill point {k} ({delay}): a partial output folder"
            continue
        if delay is None:  # the kill landed while the temporary folder was being written
            assert _leftovers(parent), f"kill point {k}: not killed during the write"
        r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp), timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert _digest(out) == ref, f"kill point {k} ({delay}): the re-run differs from an uninterrupted run"
        assert _leftovers(parent) == [], "the killed run's temporary folder was not cleaned up"


def _reference(args: list[str], tmp: Path) -> tuple[dict, float]:
    out = tmp / "ref" / "out"
    t0 = time.time()
    r = subprocess.run(CURATE + args + ["--out", str(out)], capture_output=True, text=True, env=_env(tmp), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert is_complete(out) and _leftovers(out.parent) == []
    return _digest(out), time.time() - t0


def test_rebalance_killed(sample_dir: Path, tmp_path: Path) -> None:
    args = ["rebalance", str(sample_dir), "--split", "70/20/10", "--oversample", "median", "--seed", "3"]
    ref, secs = _reference(args, tmp_path)
    _check_kills(args, tmp_path, seed=1, delays=2, mid_write=2, ref_seconds=secs, ref=ref)


def test_run_killed(sample_dir: Path, tmp_path: Path) -> None:
    """`curate run` with export and rebalance stages: killed anywhere, a re-run's stage folders equal an
    uninterrupted run's, and a stage whose folder was half-written is run again, not taken as done."""
    from curate.io.outputs import is_complete
    from curate.io.yolo import load_yolo

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: k\nstages:\n  review: {skip: true}\n  export: {}\n  rebalance: {split: 70/20/10, seed: 2}\n"
    )
    slug = load_yolo(sample_dir).slug

    def run(reports: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            CURATE + ["run", str(recipe), str(sample_dir), "--reports", str(reports)],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=300,
        )

    reports = tmp_path / "reports"  # one place for every run: rebalance.json names its input folder
    t0 = time.time()
    r = run(reports)
    assert r.returncode == 0, r.stderr[-2000:]
    secs = time.time() - t0
    ref = {s: _digest(reports / f"k-{slug}" / s / "dataset") for s in ("export", "rebalance")}
    rng = random.Random(6)
    half_written = []
    for k, (delay, stage) in enumerate([(rng.uniform(0.2, 1.0) * secs, None), (None, "export"), (None, "rebalance")]):
        shutil.rmtree(reports)
        folder = reports / f"k-{slug}" / (stage or "export")
        random.seed(k)
        _kill_at(
            CURATE + ["run", str(recipe), str(sample_dir), "--reports", str(reports)],
            tmp_path,
            delay=delay,
            parent=folder,
            prefix="dataset",
            settle=0.0,  # at once: a small stage (80 images) may otherwise finish before the kill lands
        )
        finished = is_complete(folder / "dataset") and (folder / "manifest.json").is_file()
        r = run(reports)
        assert r.returncode == 0, r.stderr[-2000:]
        if stage and not finished:
            half_written.append(stage)
            assert f"{stage}: running" in r.stdout, f"kill point {k}: the half-written {stage} stage was taken as done"
        for s in ("export", "rebalance"):
            assert _digest(reports / f"k-{slug}" / s / "dataset") == ref[s], f"kill point {k}: {s} differs"
    assert half_written, "no kill landed while a stage was writing: the test checked nothing"


def test_stage_folder_without_marker_is_not_done(tmp_path: Path) -> None:
    """A manifest that says ok is not enough: its dataset folder must hold the completion marker."""
    from curate.app.pipeline import why_run
    from curate.io.outputs import mark_complete

    folder = tmp_path / "rebalance" / "dataset"
    folder.mkdir(parents=True)
    (folder / "data.yaml").write_text("nc: 1\nnames: [a]\n")
    manifest = {"status": "ok", "input": {"fingerprint": "f"}, "params": {}, "outputs": {"dataset": str(folder)}}
    assert why_run(manifest, "f", {}) == "output unfinished: dataset"
    mark_complete(folder, "rebalance")
    assert why_run(manifest, "f", {}) is None


def test_export_killed(sample_dir: Path, tmp_path: Path) -> None:
    import fiftyone as fo

    from curate.fiftyone.load import to_fiftyone
    from curate.io.yolo import load_yolo

    fo.list_datasets()  # a client in this process keeps the database up between the commands (4 s each)
    to_fiftyone(load_yolo(sample_dir))  # export needs the dataset's FiftyOne copy (`curate audit` makes it)
    args = ["export", str(sample_dir)]
    ref, secs = _reference(args, tmp_path)
    _check_kills(args, tmp_path, seed=2, delays=1, mid_write=1, ref_seconds=secs, ref=ref)


@pytest.mark.skipif(env.u2netp_path() is None, reason="U²-Net-p weights not fetched (make models)")
def test_backgrounds_killed(make_yolo_tree, tmp_path: Path) -> None:
    boxes = ["0 0.3 0.3 0.2 0.2", "1 0.7 0.65 0.25 0.3"]
    images = {f"train/t{i}.jpg": boxes[: 1 + i % 2] for i in range(12)}
    images.update({f"val/v{i}.jpg": boxes[:1] for i in range(2)})
    root = make_yolo_tree(tmp_path / "ds", images, size=(160, 120))
    args = ["backgrounds", str(root), "--fraction", "0.25", "--instances", "1", "--seed", "5"]
    ref, secs = _reference(args, tmp_path)
    _check_kills(args, tmp_path, seed=3, delays=1, mid_write=1, ref_seconds=secs, ref=ref)


def _tiny_pair(sample_dir: Path, out: Path) -> Path:
    """The smallest training set tests/train/test_compare.py uses: 8 train, 4 val, 4 test images of the sample."""
    from dataclasses import replace

    from curate.io.yolo import load_yolo, save_yolo

    ds = load_yolo(sample_dir)
    return save_yolo(replace(ds, images=ds.split("train")[:8] + ds.split("val")[:4] + ds.split("test")[:4]), out)


def _start(cmd: list[str], tmp: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp), cwd=tmp, start_new_session=True
    )


def test_train_and_compare_killed(sample_dir: Path, tmp_path: Path, tiny_training) -> None:
    """Killed right after BEFORE's training finished (issue #26 item 2: every re-run then failed with "not a
    resumable training checkpoint", tried to download coco8.yaml and left ./runs/detect/train), then at a
    seeded random point: the re-runs finish, nothing lands outside --out, and the folder is marked complete
    only at the end."""
    from curate.train.compare import checkpoint_complete, read_results, resumable

    before = _tiny_pair(sample_dir, tmp_path / "before")
    out = tmp_path / "out"
    cmd = CURATE + tiny_training(before, before, out, epochs=1)
    run = out / "runs" / "before-seed0"
    p = _start(cmd, tmp_path)
    for line in p.stdout:  # Ultralytics' final validation: last.pt and best.pt are stripped, done.json not written yet
        if line.startswith("Validating") and "before-seed0" in line:
            os.killpg(p.pid, signal.SIGKILL)
            break
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run ended before the kill point"
    last = run / "weights" / "last.pt"
    assert checkpoint_complete(last) and not resumable(last) and not (run / "done.json").exists()
    assert not is_complete(out) and not (out / "compare.json").exists()

    p = _start(cmd, tmp_path)
    time.sleep(random.Random(4).uniform(1.0, 12.0))
    os.killpg(p.pid, signal.SIGKILL)
    killed_text = p.communicate()[0]
    assert is_complete(out) == (out / "compare.json").exists()  # the marker is written last, after compare.json

    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=600)
    text = killed_text + r.stdout + r.stderr
    assert r.returncode == 0, text[-3000:]
    assert "had finished before the run was stopped" in text
    assert "not a resumable training checkpoint" not in text and "coco8" not in text  # no training with defaults
    assert [int(x["epoch"]) for x in read_results(run / "results.csv")] == [1]  # not trained again
    data = json.loads((out / "compare.json").read_text())
    assert is_complete(out) and data["runs"][0]["best"].startswith(str(run))
    assert _leftovers(out) == [] and _leftovers(out / "data") == []


def test_atomic_output_replaces_whole_and_cleans_only_dead_leftovers(tmp_path: Path) -> None:
    from curate.io.outputs import atomic_output

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = dead.stdout.strip()
    (tmp_path / f".x.curate-tmp-{dead}").mkdir()  # a killed writer's
    (tmp_path / f".y.json.curate-tmp-{dead}").write_text("{")
    live = tmp_path / f".z.curate-tmp-{os.getppid()}"  # a writer still running
    live.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target, "test") as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("killed here")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]  # an error leaves the old folder as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "out"])
    with atomic_output(target, "test") as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [".curate-complete", "new.txt"] and is_complete(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "out"])
