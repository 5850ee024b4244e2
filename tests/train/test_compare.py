"""train-and-compare: real tiny training through the CLI, the bootstrap on known answers, resume after a kill."""

from __future__ import annotations

import html
import json
import math
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from curate.core.dataset import Label
from curate.train.bootstrap import ImageStats, flatten, paired_bootstrap, weighted_aps
from curate.train.compare import checkpoint_complete, find_plateau, map_labels, nan_epochs, read_results

REPO = Path(__file__).resolve().parents[2]
CURATE = [str(REPO / ".venv" / "bin" / "curate")]


def _tiny(sample_dir: Path, out: Path, *, rename: bool = False, n_train: int = 8, n_test: int = 4) -> Path:
    """A handful of sample images; ``rename`` reverses the class list (ids remapped) and drops 'tomato'."""
    from curate.io.yolo import load_yolo, save_yolo

    ds = load_yolo(sample_dir)
    imgs = ds.split("train")[:n_train] + ds.split("val")[:4] + ds.split("test")[:n_test]
    if rename:
        names = [n for n in reversed(ds.names) if n != "tomato"]
        imgs = [replace(r, labels=map_labels(r.labels, ds.names, names)[0], edited=True) for r in imgs]
        ds = replace(ds, names=names)
    save_yolo(replace(ds, images=imgs), out)
    return out


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env.update(YOLO_OFFLINE="1", MPLBACKEND="Agg", COLUMNS="220", CURATE_CACHE_DIR=str(tmp / "cache"))
    return env


TINY = ["--epochs", "1", "--imgsz", "64", "--batch", "8", "--workers", "0", "--resamples", "200"]


def test_cli_end_to_end(sample_dir: Path, tmp_path: Path) -> None:
    before = _tiny(sample_dir, tmp_path / "before")
    after = _tiny(sample_dir, tmp_path / "after", rename=True)
    # leak: one of AFTER's test images is also in BEFORE's train split (same bytes)
    leak = next((before / "images" / "train").iterdir())
    os.link(leak, after / "images" / "test" / ("leak" + leak.suffix))
    (after / "labels" / "test" / "leak.txt").write_text("")
    (after / "changes.csv").write_text("image,line,kind,before,after\na.jpg,1,deleted,x,\n")
    out = tmp_path / "reports" / "cmp"
    r = subprocess.run(
        CURATE + ["train-and-compare", str(before), str(after), "--out", str(out), *TINY, "mosaic=0"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=600,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads((out / "compare.json").read_text())
    for side in ("before", "after"):
        m = data[side]["metrics"]["box"]
        for k in ("mAP50", "mAP50-95", "precision", "recall", "F1", "F1_conf"):
            assert 0.0 <= m[k] <= 1.0, (side, k)
        assert isinstance(m["per_class"], dict)
        losses = data[side]["metrics"]["losses"]
        for k in ("train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss"):
            assert math.isfinite(losses[k]["final"]) and losses[k]["best"] <= losses[k]["final"] + 1e-9
        assert any(p.startswith("confusion_matrix") for p in data[side]["metrics"]["plots"])
    assert data["verdict"] in ("better", "no significant difference", "worse")
    lo, hi = data["bootstrap"]["ci95"]["mAP50-95"]
    assert lo <= hi and data["bootstrap"]["resamples"] == 200
    assert "tomato" not in data["bootstrap"]["classes"]
    # the default test set: AFTER's test photos neither side trained on (leak.jpg is in both train sets)
    t = data["test"]
    assert t["default"] is True and t["left_out"] >= 1 and t["images"] == 5 - t["left_out"]
    assert t["leaked"] == {"BEFORE": 0, "AFTER": 0} and "none of them trained on by either side" in r.stderr
    assert "NOT A FAIR TEST" not in r.stdout
    assert data["settings"]["extra"] == {"mosaic": 0}
    page = (out / "compare.html").read_text()
    assert "data:image/png;base64," in page and data["verdict"] in page
    assert data["verdict"] in (out / "compare.md").read_text()
    # the project's one history (reports/ where curate runs, whatever --out), readable by `curate history`
    hist = tmp_path / "reports" / "history.jsonl"
    line = json.loads(hist.read_text().splitlines()[-1])
    assert line["after"]["changes"]["changes.csv"] == {"deleted": 1} and line["verdict"] == data["verdict"]
    h = subprocess.run(CURATE + ["history"], capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path)
    assert h.returncode == 0 and "review: 1 deleted" in h.stdout
    # the same training again (both finished runs reused), scored on a test set both sides trained on: the
    # verdict line says so, with the count; no Δ of losses (each side's own data) nor of overall numbers
    # over different boxes (AFTER's model does not know tomato)
    test = ["--test", str(before), "--test-split", "train"]
    r2 = subprocess.run(
        CURATE + ["train-and-compare", str(before), str(after), "--out", str(out), *TINY, "mosaic=0", *test],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=600,
    )
    assert r2.returncode == 0 and r2.stderr.count("reusing it") == 2, r2.stderr[-3000:]
    verdict = "NOT A FAIR TEST: 8 of 8 test images were trained on (8 in BEFORE's and 8 in AFTER's train/val)"
    assert any(line.startswith(verdict) for line in r2.stdout.splitlines())
    assert f"<p class='verdict'>{html.escape(verdict)}" in (out / "compare.html").read_text()
    data = json.loads((out / "compare.json").read_text())
    assert data["test"]["leaked"] == {"BEFORE": 8, "AFTER": 8}
    md = (out / "compare.md").read_text()
    assert "| train/box_loss (final, own data) |" in md
    assert all(row.endswith(" |  |") for row in md.splitlines() if "own data" in row)


def test_default_test_set_is_photos_neither_side_trained_on(sample_dir: Path, tmp_path: Path) -> None:
    """A re-split moved BEFORE's train photos into AFTER's test split: they stay test photos and BEFORE trains
    without them; a test photo AFTER trained on leaves the test set; --test as given is scored as it is, with
    its leaks counted."""
    from curate.io.cache import file_hash
    from curate.io.yolo import load_yolo, save_yolo
    from curate.train.compare.data import choose_test_set

    before = load_yolo(sample_dir)
    moved = before.split("train")[:3]
    test = [replace(r, split="test") for r in moved + before.split("test")[:2]]
    rest = [r for r in before.images if r.split in ("train", "val") and r not in moved]
    rest.append(replace(before.split("test")[0], split="train"))  # AFTER also trained on one of its test photos
    after = load_yolo(save_yolo(replace(before, images=rest + test), tmp_path / "after"))
    logged: list[str] = []
    chosen = choose_test_set(before, after, None, logged.append)
    assert chosen.left_out == 1 and len(chosen.images) == 4 and chosen.leaked == {"BEFORE": 0, "AFTER": 0}
    assert chosen.held_out >= 3 and len(chosen.before.images) == len(before.images) - chosen.held_out
    trained = {file_hash(r.path) for r in chosen.before.images + after.images if r.split in ("train", "val")}
    assert not {file_hash(r.path) for r in chosen.images} & trained
    assert "4 of AFTER's 5 test images" in logged[0] and "BEFORE trains without the" in logged[0]
    given = choose_test_set(before, after, (after, "test"), logged.append)
    assert len(given.images) == 5 and given.leaked["BEFORE"] >= 3 and given.leaked["AFTER"] == 1
    assert given.before is before and any("are in BEFORE's train/val" in n for n in given.notes)


def test_cli_errors(sample_dir: Path, tmp_path: Path) -> None:
    before = _tiny(sample_dir, tmp_path / "b", n_test=0)
    r = subprocess.run(
        CURATE + ["train-and-compare", str(before), str(before), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
    )
    assert r.returncode == 1 and "no test split" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        CURATE + ["history", str(tmp_path / "none.jsonl")], capture_output=True, text=True, env=_env(tmp_path)
    )
    assert r.returncode == 1 and "no history" in r.stderr


def test_resume_after_kill(sample_dir: Path, tmp_path: Path, tiny_training) -> None:
    before = _tiny(sample_dir, tmp_path / "before", n_train=16)
    out = tmp_path / "out"
    cmd = CURATE + tiny_training(before, before, out, epochs=4)
    last = out / "runs" / "before-seed0" / "weights" / "last.pt"
    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(tmp_path), start_new_session=True
    )
    t0 = time.time()
    # a complete checkpoint (a kill during its write is the other test's case)
    while not (last.exists() and checkpoint_complete(last)) and time.time() - t0 < 300 and p.poll() is None:
        time.sleep(0.2)
    assert last.exists(), "no checkpoint was written"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done_rows = len(read_results(last.parent.parent / "results.csv"))
    assert done_rows < 4 and not (out / "runs" / "before-seed0" / "done.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout + r.stderr
    assert "resuming from" in text and "Resuming training" in text
    rows = read_results(out / "runs" / "before-seed0" / "results.csv")
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3, 4]


def test_truncated_checkpoint_starts_over(sample_dir: Path, tmp_path: Path, tiny_training) -> None:
    """Killed while last.pt was being written: the next run says so and trains again instead of failing."""
    before = _tiny(sample_dir, tmp_path / "before", n_train=8)
    out = tmp_path / "out"
    cmd = CURATE + tiny_training(before, before, out, epochs=1)
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    run = out / "runs" / "before-seed0"
    last = run / "weights" / "last.pt"
    assert checkpoint_complete(last)
    (run / "done.json").unlink()  # as if the process died before finishing
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    assert not checkpoint_complete(last)
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "is truncated" in r.stdout + r.stderr
    assert checkpoint_complete(last) and [int(x["epoch"]) for x in read_results(run / "results.csv")] == [1]


def test_a_finished_run_killed_before_it_was_recorded_is_reused(
    sample_dir: Path, tmp_path: Path, tiny_training
) -> None:
    """Killed right after BEFORE finished (its weights final, done.json not yet written): every re-run failed with
    "not a resumable training checkpoint", tried to download coco8.yaml and left ./runs/detect/train behind."""
    before = _tiny(sample_dir, tmp_path / "before", n_train=8)
    out = tmp_path / "out"
    cmd = CURATE + tiny_training(before, before, out, epochs=1)
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = out / "runs" / "before-seed0"
    (run / "done.json").unlink()  # the kill came after the last epoch, before the run was recorded
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "finished before" in r.stdout + r.stderr
    assert (run / "done.json").is_file() and [int(x["epoch"]) for x in read_results(run / "results.csv")] == [1]
    assert not (tmp_path / "runs").exists() and "coco8" not in r.stdout + r.stderr


# ---------------------------------------------------------------------------------------------- bootstrap


def _perfect(n_img: int, per: int = 2) -> tuple[list[ImageStats], list[ImageStats]]:
    good = [
        ImageStats(np.ones((per, 10), bool), np.linspace(0.9, 0.8, per), np.arange(per) % 2, np.arange(per) % 2)
        for _ in range(n_img)
    ]
    empty = [
        ImageStats(np.zeros((0, 10), bool), np.zeros(0), np.zeros(0, int), np.arange(per) % 2) for _ in range(n_img)
    ]
    return good, empty


def test_identical_predictions_no_difference() -> None:
    rng = np.random.default_rng(1)
    imgs = [
        ImageStats(rng.random((5, 10)) > 0.5, rng.random(5), rng.integers(0, 3, 5), rng.integers(0, 3, 3))
        for _ in range(30)
    ]
    res = paired_bootstrap([(imgs, imgs)], np.arange(3), resamples=1000)
    assert res.delta == {"mAP50": 0.0, "mAP50-95": 0.0}
    assert res.ci95["mAP50-95"] == (0.0, 0.0) and res.verdict == "no significant difference"


@pytest.mark.parametrize("flip, verdict", [(False, "better"), (True, "worse")])
def test_perfect_vs_empty(flip: bool, verdict: str) -> None:
    good, empty = _perfect(20)
    pair = (good, empty) if flip else (empty, good)
    res = paired_bootstrap([pair, pair], np.arange(2), resamples=1000)
    assert res.verdict == verdict and res.resamples == 2000
    lo, hi = res.ci95["mAP50"]
    assert (lo > 0) if verdict == "better" else (hi < 0)
    assert abs(abs(res.delta["mAP50"]) - 1.0) < 0.02


def test_per_class_intervals() -> None:
    """Each shared class gets its own AP50-95 Δ and interval: one class AFTER finds and BEFORE misses is better,
    one both find equally is no difference, one without ground truth has none."""

    def image(classes: list[int]) -> ImageStats:
        n = len(classes)
        return ImageStats(np.ones((n, 10), bool), np.linspace(0.9, 0.8, n), np.array(classes, int), np.array([0, 1]))

    before, after = [image([0]) for _ in range(20)], [image([0, 1]) for _ in range(20)]
    res = paired_bootstrap([(before, after)], np.arange(3), resamples=300)
    same, found, absent = res.per_class
    assert same == {"delta": 0.0, "ci95": [0.0, 0.0], "verdict": "no significant difference"}
    assert found["verdict"] == "better" and found["ci95"][0] > 0.9 and abs(found["delta"] - 1.0) < 0.02
    assert absent is None


def test_ap_by_hand() -> None:
    """One class, 2 GT in 2 images; predictions TP(0.9), FP(0.8), TP(0.7).

    Recall/precision: (0.5, 1), (0.5, 0.5), (1, 2/3). Envelope: 1 up to recall 0.5, 2/3 up to 1.
    101-point trapezoid: ≈ 0.5·1 + 0.5·2/3 = 0.8333 (± the trapezoid step at recall 0.5).
    """
    a = ImageStats(np.array([[True] * 10, [False] * 10]), np.array([0.9, 0.8]), np.array([0, 0]), np.array([0]))
    b = ImageStats(np.array([[True] * 10]), np.array([0.7]), np.array([0]), np.array([0]))
    from ultralytics.utils.metrics import ap_per_class

    tp = np.concatenate([a.tp, b.tp])
    conf = np.concatenate([a.conf, b.conf])
    pc = np.array([0, 0, 0])
    ref = ap_per_class(tp, conf, pc, np.array([0, 0]))[5]  # Ultralytics' own AP (1, 10)
    m50 = weighted_aps(flatten([a, b], np.array([0])), np.ones(2))[0, 0]  # the one class, IoU 0.5
    assert m50 == pytest.approx(float(ref[0, 0]), abs=1e-9) and m50 == pytest.approx(0.5 + 0.5 * 2 / 3, abs=0.01)
    # image b drawn twice: 3 GT, TP .9, FP .8, TP .7 ×2 → recall 1/3,1/3,1; precision 1, .5, .75
    m50w = weighted_aps(flatten([a, b], np.array([0])), np.array([1.0, 2.0]))[0, 0]
    assert m50w == pytest.approx(1 / 3 + 2 / 3 * 0.75, abs=0.01)


def test_nan_detection_and_plateau(tmp_path: Path) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text(
        "epoch,train/box_loss,train/cls_loss,train/dfl_loss,val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0\n"
        "1,1.0,2.0,1.5,1.1,2.1,1.6,0.01\n2,nan,2.0,1.5,1.1,2.1,1.6,0.01\n3,1.0,inf,1.5,1.1,2.1,1.6,0.009\n"
    )
    assert nan_epochs(read_results(csv)) == [2, 3]
    flat = [
        {
            "epoch": i + 1,
            "train/box_loss": 1.0,
            "train/cls_loss": 1.0 + (0.5 if i < 3 else 0.0),
            "train/dfl_loss": 1.0,
            "lr/pg0": 0.01 - i * 0.001,
        }
        for i in range(10)
    ]
    p = find_plateau(flat, epochs=5, tol=0.01)
    assert p is not None and p["epoch"] == 4 and p["lr"] == pytest.approx(0.007)
    falling = [{**r, "train/box_loss": 3.0 - 0.2 * i} for i, r in enumerate(flat)]
    assert find_plateau(falling, epochs=5, tol=0.01) is None


def test_segmentation_picks_seg_model() -> None:
    from curate.core.dataset import Dataset, ImageRecord
    from curate.train.compare import is_segmentation, seg_model_name

    poly = Label(0, 0.5, 0.5, 0.2, 0.2, 1, polygon=(0.4, 0.4, 0.6, 0.4, 0.5, 0.6))
    box = Label(0, 0.5, 0.5, 0.2, 0.2, 1)
    seg = Dataset(
        Path("/x"), "s", ["a"], [ImageRecord("train", Path(f"/x/{i}.jpg"), f"{i}.jpg", labels=[poly]) for i in range(3)]
    )
    det = Dataset(
        Path("/x"), "d", ["a"], [ImageRecord("train", Path(f"/x/{i}.jpg"), f"{i}.jpg", labels=[box]) for i in range(3)]
    )
    assert is_segmentation(seg) and not is_segmentation(det)
    assert seg_model_name("yolov8n.yaml") == "yolov8n-seg.yaml"
    assert seg_model_name("yolov8n-seg.yaml") == "yolov8n-seg.yaml" and seg_model_name("my.pt") == "my.pt"


@pytest.mark.parametrize("sub, split", [("valid", "val"), ("test", "test"), ("", "test")])
def test_resolve_test_dataset_or_split_folder(sample_dir: Path, sub: str, split: str) -> None:
    from curate.io.yolo import load_yolo
    from curate.train.compare import resolve_test

    ds, s = resolve_test(sample_dir / sub if sub else sample_dir, None, load_yolo)
    assert s == split and ds.split(s)


def test_map_labels_by_name() -> None:
    labels = [Label(0, 0.5, 0.5, 0.1, 0.1, 1), Label(2, 0.5, 0.5, 0.1, 0.1, 2)]
    kept, dropped = map_labels(labels, ["a", "b", "c"], ["c", "a"])
    assert [l.class_id for l in kept] == [1, 0] and dropped == []
    kept, dropped = map_labels(labels, ["a", "b", "c"], ["a"])
    assert [l.class_id for l in kept] == [0] and dropped == ["c"]


def test_nan_loss_restarts_without_amp(sample_dir: Path, tmp_path: Path) -> None:
    """A real 1-epoch training whose loss turns NaN while amp is on: curate restarts it with amp=False."""
    import torch

    from curate.io.yolo import load_yolo
    from curate.train.compare import train_one, training_folder
    from curate.train.options import TrainOptions

    data = training_folder(load_yolo(_tiny(sample_dir, tmp_path / "ds", n_test=0)), tmp_path / "norm")

    def poison(trainer) -> None:  # what an AMP overflow does to the epoch's mean loss
        if trainer.args.amp:
            trainer.tloss = {k: torch.full_like(v, float("nan")) for k, v in trainer.tloss.items()}

    settings = TrainOptions(epochs=1, imgsz=64, batch=8, workers=0, extra={"plots": False})
    run = train_one(
        data,
        tmp_path / "run",
        settings,
        side="before",
        seed=0,
        model="yolov8n.yaml",
        log=lambda m: None,
        callbacks={"on_train_epoch_end": poison},
    )
    assert run.amp is False and any("restarted with amp=False" in n for n in run.notes)
    assert run.best.exists() and nan_epochs(read_results(run.run_dir / "results.csv")) == []


def test_an_epoch_written_twice_by_a_resume_is_read_once(tmp_path: Path) -> None:
    """Killed after epoch 2's row but before its checkpoint: the resumed run writes epoch 2 again."""
    csv_path = tmp_path / "results.csv"
    csv_path.write_text("epoch, metrics/mAP50(B)\n1, 0.1\n2, 0.2\n2, 0.25\n3, 0.3\n", encoding="utf-8")
    rows = read_results(csv_path)
    assert [(int(r["epoch"]), r["metrics/mAP50(B)"]) for r in rows] == [(1, 0.1), (2, 0.25), (3, 0.3)]


def _planted_duplicate(after: Path) -> tuple[str, str]:
    """A second copy of the first box of AFTER's first test image: the audit's `duplicate` check flags it.
    Returns the image's file name and its label file's original text."""
    label = sorted((after / "labels" / "test").iterdir())[0]
    text = label.read_text()
    first = text.splitlines()[0].split()
    first[1] = f"{float(first[1]) + 0.002:.6f}"
    label.write_text(text.rstrip("\n") + "\n" + " ".join(first) + "\n")
    image = next(p for p in (after / "images" / "test").iterdir() if p.stem == label.stem)
    return image.name, text


def _reviewed_copy(after: Path, out: Path, fixed: dict[str, str], *, drop: str | None = None) -> Path:
    """A reviewed copy of AFTER's test split as `curate export` leaves it (images copied, labels corrected), its
    images renamed (matched by content) and one left out (``drop``)."""
    import shutil

    for sub in ("images", "labels"):
        (out / sub / "test").mkdir(parents=True)
    for image in sorted((after / "images" / "test").iterdir()):
        if image.name == drop:
            continue
        label = after / "labels" / "test" / f"{image.stem}.txt"
        shutil.copy(image, out / "images" / "test" / f"r-{image.name}")
        (out / "labels" / "test" / f"r-{image.stem}.txt").write_text(fixed.get(image.name, label.read_text()))
    (out / "data.yaml").write_text((after / "data.yaml").read_text())
    return out


def test_test_labels_audited_and_scored_on_a_reviewed_copy(sample_dir: Path, tmp_path: Path, tiny_training) -> None:
    """The test set's labels are audited (a planted duplicate box is a suspect test label), and with --test-labels
    both models are scored on the reviewed labels too, side by side; the training curves are on the page."""
    before = _tiny(sample_dir, tmp_path / "before")
    after = _tiny(sample_dir, tmp_path / "after")
    image, original = _planted_duplicate(after)
    reviewed = _reviewed_copy(after, tmp_path / "reviewed", {image: original})
    out = tmp_path / "cmp"
    args = tiny_training(before, after, out) + ["--test-labels", str(reviewed)]
    r = subprocess.run(CURATE + args, capture_output=True, text=True, env=_env(tmp_path), timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads((out / "compare.json").read_text())
    audit = data["test"]["audit"]
    assert audit["suspect"] >= 1 and audit["kinds"].get("duplicate") == 1
    assert audit["labels"] == data["test"]["boxes"] and audit["share"] == audit["suspect"] / audit["labels"]
    assert image in (out / "test-audit" / "test-findings.csv").read_text()
    assert f"test labels: {audit['suspect']} of {audit['labels']} test labels" in r.stderr
    c = data["corrected"]
    assert c["test"]["removed"] == 1 and c["test"]["added"] == 0 and c["test"]["boxes"] == data["test"]["boxes"] - 1
    assert c["test"]["images"] == data["test"]["images"] and c["bootstrap"]["resamples"] == 100
    for side in ("before", "after"):
        assert 0.0 <= c[side]["metrics"]["box"]["mAP50-95"] <= 1.0
        assert data[side]["metrics"]["curve"]["epoch"] == [1]
    md = (out / "compare.md").read_text()
    assert "| metric (test set) | BEFORE | AFTER | Δ | BEFORE, reviewed labels | AFTER, reviewed labels | Δ |" in md
    assert "On the reviewed test labels (1 removed or changed, 0 added or changed into)" in md
    page = (out / "compare.html").read_text()
    assert "look wrong to the audit" in page and "reviewed labels</th>" in page
    assert "alt='loss per epoch'" in page and "alt='mAP50-95 per epoch'" in page
    line = json.loads((tmp_path / "reports" / "history.jsonl").read_text().splitlines()[-1])
    assert line["suspect_test_labels"] == audit["suspect"]
    assert line["on_reviewed_test_labels"]["verdict"] == c["verdict"]


def test_test_labels_that_miss_a_test_image_stop_before_training(sample_dir: Path, tmp_path: Path) -> None:
    before = _tiny(sample_dir, tmp_path / "before")
    after = _tiny(sample_dir, tmp_path / "after")
    gone = sorted((after / "images" / "test").iterdir())[-1].name
    reviewed = _reviewed_copy(after, tmp_path / "reviewed", {}, drop=gone)
    out = tmp_path / "cmp"
    args = ["train-and-compare", str(before), str(after), "--out", str(out), "--test-labels", str(reviewed)]
    r = subprocess.run(CURATE + args, capture_output=True, text=True, env=_env(tmp_path), timeout=600, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: --test-labels {reviewed}: 1 of ") and error.endswith(f"test/{gone}")
    assert not (out / "runs").exists()


def test_a_box_cut_by_the_border_is_a_note_not_a_suspect_test_label(sample_dir, tmp_path):
    """A sliver along the image edge is a partly visible object that should have its box (``border_cut``, a
    note): it is listed in test-findings.csv but not counted among the suspect test labels."""
    import shutil
    from collections import Counter

    from curate.io.yolo import load_yolo
    from curate.train.compare.ground_truth import audit_labels

    root = tmp_path / "ds"
    shutil.copytree(sample_dir, root)
    ds = load_yolo(root)
    cls, n = Counter(lb.class_id for _, lb in ds.boxes()).most_common(1)[0]
    assert n >= 8  # the border test compares with the class's whole boxes
    label = sorted((root / "test" / "labels").glob("*.txt"))[0]
    label.write_text(label.read_text().rstrip("\n") + f"\n{cls} 0.004 0.5 0.008 0.2\n")  # 0.8 % wide, on the left
    ds = load_yolo(root)
    test = [r for r in ds.images if r.split == "test"]
    audit = audit_labels(ds, test, tmp_path / "audit")
    rows = (tmp_path / "audit" / "test-findings.csv").read_text()
    assert "border_cut" in rows  # noted
    assert "border_cut" not in audit["kinds"]
