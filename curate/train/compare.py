"""`curate train-and-compare BEFORE AFTER`: identical training, one fixed test set, an honest verdict.

Both datasets are normalised with :func:`save_yolo` into clean Ultralytics folders under ``OUT/data``
(copies, since Ultralytics may re-save images in place), the same model is trained on each with identical
settings, and both are evaluated on ONE test set whose labels are mapped by class NAME onto each model's
classes. The verdict comes from a paired bootstrap over test images (:mod:`curate.train.bootstrap`), not from
eyeballing two mAPs.

Reliability, because users lost runs: a run folder that exists and has no ``done.json`` is resumed from
``last.pt`` (started over, with a note, when a kill truncated ``last.pt`` mid-write); a NaN/inf loss stops
the run and restarts it with ``amp=False``; CUDA out-of-memory halves the batch and retries; a loss
plateau is noted with the learning rate at the time. A run killed after its training finished (Ultralytics
has stripped ``last.pt`` of its optimizer, so it cannot be resumed) is taken as finished. ``OUT`` is
resumed in place, so it is never renamed into place whole: compare.json/.md/.html are each replaced
atomically and the completion marker (:mod:`curate.io.outputs`) is removed at the start and written last.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.train.bootstrap import BootstrapResult, ImageStats, paired_bootstrap

LOSSES = ("box_loss", "cls_loss", "dfl_loss")
#: Manifests other curate commands leave in the folders they write: "what changed".
MANIFESTS = ("changes.csv", "CHANGES.md", "rebalance.json", "backgrounds.json")


class CompareError(Exception):
    """Bad input for a comparison (no test split, no shared classes…): shown as one line."""


@dataclass
class TrainSettings:
    """Identical for BEFORE and AFTER; ``extra`` goes through to Ultralytics' ``train()`` untouched."""

    model: str = "yolov8n.yaml"
    epochs: int = 30
    imgsz: int = 640
    batch: int = 16
    seed: int = 0
    seeds: int = 1
    device: str | None = None  # None = auto: CUDA 0 when available, else CPU
    workers: int = 2
    resamples: int = 1000
    plateau_epochs: int = 5  # a loss flat (< plateau_tol relative change) for this many epochs is a plateau
    plateau_tol: float = 0.01
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """One training run: where it lives and what happened on the way."""

    side: str
    seed: int
    run_dir: Path
    best: Path
    batch: int
    amp: bool
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    epochs_done: int = 0


# ----------------------------------------------------------------------------------------------- data


def content_fingerprint(dataset: Dataset) -> str:
    """sha256 over class names and, per image, its split, image bytes hash and labels: equal = same data."""
    from curate.io.cache import file_hash

    h = hashlib.sha256("\0".join(dataset.names).encode() + b"\1")
    for r in sorted(dataset.images, key=lambda r: (r.split, r.rel)):
        h.update(f"{r.split}\0{file_hash(r.path)}\0".encode())
        h.update(
            b"\0".join(f"{l.class_id} {l.cx:.6f} {l.cy:.6f} {l.w:.6f} {l.h:.6f}".encode() for l in r.labels) + b"\2"
        )
    return h.hexdigest()[:16]


def is_segmentation(dataset: Dataset) -> bool:
    """Polygon labels in most labelled images → train the ``-seg`` model."""
    labelled = [r for r in dataset.images if r.labels]
    return bool(labelled) and sum(any(l.is_polygon for l in r.labels) for r in labelled) > len(labelled) / 2


def seg_model_name(model: str) -> str:
    """``yolov8n.yaml`` → ``yolov8n-seg.yaml`` (a name already ending -seg, or a .pt, is kept)."""
    p = Path(model)
    if p.suffix == ".yaml" and not p.stem.endswith("-seg"):
        return str(p.with_name(p.stem + "-seg.yaml"))
    return model


def with_val(dataset: Dataset, *, seed: int) -> tuple[Dataset, str | None]:
    """A train set needs a val split for Ultralytics; carve 10 % of train (by a fixed seed) when absent."""
    if dataset.split("val") or not dataset.split("train"):
        return dataset, None
    train = dataset.split("train")
    rng = np.random.default_rng(seed)
    k = max(1, len(train) // 10)
    chosen = {train[i].rel for i in rng.choice(len(train), size=k, replace=False)}
    images = [replace(r, split="val") if r.rel in chosen else r for r in dataset.images]
    return replace(
        dataset, images=images
    ), f"{dataset.name} has no val split: {k} train images (seed {seed}) used as val"


def training_folder(dataset: Dataset, out: Path) -> Path:
    """Normalise into ``out`` (Ultralytics layout, relative data.yaml); train/val only. Reused if present."""
    from curate.io.outputs import atomic_output, is_complete
    from curate.io.yolo import save_yolo

    yaml_path = out / "data.yaml"
    stamp = out / ".fingerprint"
    fp = content_fingerprint(dataset)
    if is_complete(out) and stamp.exists() and stamp.read_text() == fp:
        return yaml_path
    keep = [r for r in dataset.images if r.split in ("train", "val")]
    with atomic_output(out, "train-and-compare") as tmp:
        save_yolo(replace(dataset, images=keep), tmp)
        (tmp / ".fingerprint").write_text(fp)
    return yaml_path


def map_labels(labels: list[Label], src_names: list[str], dst_names: list[str]) -> tuple[list[Label], list[str]]:
    """Labels re-numbered by class NAME into ``dst_names``; returns the kept labels and the dropped names."""
    index = {n: i for i, n in enumerate(dst_names)}
    kept, dropped = [], []
    for l in labels:
        name = src_names[l.class_id] if 0 <= l.class_id < len(src_names) else str(l.class_id)
        if name in index:
            kept.append(replace(l, class_id=index[name]))
        else:
            dropped.append(name)
    return kept, dropped


def test_folder(
    test: list[ImageRecord], test_names: list[str], model_names: list[str], out: Path, *, root: Path
) -> tuple[Path, dict[str, int]]:
    """The fixed test images with labels mapped onto a model's classes; a data.yaml with train=val=test."""
    import yaml as pyyaml

    from curate.io.outputs import atomic_output
    from curate.io.yolo import save_yolo

    dropped: dict[str, int] = {}
    images = []
    for r in test:
        kept, gone = map_labels(r.labels, test_names, model_names)
        for n in gone:
            dropped[n] = dropped.get(n, 0) + 1
        images.append(replace(r, split="test", labels=kept, edited=True))
    ds = Dataset(root=root, name="test", names=list(model_names), images=images)
    cfg = {
        "train": "images/test",
        "val": "images/test",
        "test": "images/test",
        "nc": len(model_names),
        "names": {i: n for i, n in enumerate(model_names)},
    }
    with atomic_output(out, "train-and-compare") as tmp:
        save_yolo(ds, tmp)
        (tmp / "data.yaml").write_text(pyyaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out / "data.yaml", dropped


def resolve_test(path: Path, split: str | None, loader: Callable[[Path], Dataset]) -> tuple[Dataset, str]:
    """``--test`` is a dataset (its ``split``, default test) or a split folder of one (``food/valid``)."""
    aliases = {"valid": "val", "validation": "val"}
    name = path.name.lower()
    if path.is_dir() and name in ("train", "val", "valid", "test") and not (path / "data.yaml").exists():
        ds = loader(path.parent)
        return ds, aliases.get(name, name)
    ds = loader(path)
    return ds, aliases.get(split or "test", split or "test")


def leaks(test: list[ImageRecord], trains: dict[str, list[ImageRecord]]) -> list[str]:
    """Test images found in a training set: same bytes, or near-duplicates when :mod:`curate.vision.hashing` is
    there."""
    from curate.io.cache import file_hash

    found: list[str] = []
    test_hash = {file_hash(r.path): r.rel for r in test}
    for side, recs in trains.items():
        hits = sorted({test_hash[h] for h in (file_hash(r.path) for r in recs) if h in test_hash})
        if hits:
            found.append(f"{len(hits)} test image(s) are byte-identical to {side} training images (e.g. {hits[0]})")
    try:
        from curate.vision.hashing import image_signatures, near_duplicate_groups
    except ImportError:
        return found
    try:
        for side, recs in trains.items():
            tagged = [replace(r, rel=f"test/{r.rel}") for r in test] + [replace(r, rel=f"train/{r.rel}") for r in recs]
            ds = Dataset(root=Path("/"), name=f"leak-{side}", names=[], images=tagged)
            groups = near_duplicate_groups(ds, image_signatures(ds, progress=False))
            mixed = [
                g
                for g in groups
                if any(str(x).startswith("test/") for x in g) and any(str(x).startswith("train/") for x in g)
            ]
            if mixed:
                found.append(f"{len(mixed)} group(s) of near-duplicate images span the test set and {side} training")
    except Exception as exc:  # noqa: BLE001 — a leak check must never sink a comparison
        found.append(f"near-duplicate leak check skipped ({type(exc).__name__}: {exc})")
    return found


# ------------------------------------------------------------------------------------------- training


def auto_device(device: str | None) -> str:
    """CUDA device 0 when torch sees one, else CPU; an explicit value (``0,1`` for several GPUs) wins."""
    if device not in (None, "", "auto"):
        return str(device)
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def read_results(csv_path: Path) -> list[dict[str, float]]:
    """Ultralytics' results.csv as a list of rows, one per epoch (column names stripped, values float; bad
    cells NaN).

    An epoch may stand twice: a run killed after an epoch's row was written but before its checkpoint was
    resumes from the checkpoint before and appends that epoch again. The later row is the epoch that the
    resumed weights carry on from, so it is kept, in its place.
    """
    if not csv_path.exists():
        return []
    rows: dict[object, dict[str, float]] = {}
    with csv_path.open(newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            clean = {}
            for k, v in row.items():
                try:
                    clean[k.strip()] = float(v)
                except (TypeError, ValueError):
                    clean[k.strip()] = float("nan")
            epoch = clean.get("epoch")
            rows[epoch if epoch == epoch and epoch is not None else ("row", i)] = clean  # NaN epoch: kept as is
    return list(rows.values())


def nan_epochs(rows: list[dict[str, float]]) -> list[int]:
    """Epochs whose train or val loss is NaN or infinite."""
    bad = []
    for i, row in enumerate(rows):
        vals = [v for k, v in row.items() if k.endswith(LOSSES)]
        if any(not math.isfinite(v) for v in vals):
            bad.append(int(row.get("epoch", i + 1)))
    return bad


def find_plateau(rows: list[dict[str, float]], *, epochs: int, tol: float) -> dict[str, float] | None:
    """The first stretch of ``epochs`` epochs whose total train loss moved less than ``tol`` (relative).

    Returns the epoch it starts at and the learning rate (``lr/pg0``) then, or None.
    """
    total = [sum(r.get(f"train/{k}", 0.0) for k in LOSSES) for r in rows]
    for i in range(len(total) - epochs):
        window = total[i : i + epochs + 1]
        ref = max(abs(window[0]), 1e-9)
        if all(math.isfinite(v) for v in window) and (max(window) - min(window)) / ref < tol:
            return {
                "epoch": int(rows[i].get("epoch", i + 1)),
                "epochs": epochs,
                "lr": rows[i].get("lr/pg0", float("nan")),
                "loss": total[i],
            }
    return None


def loss_summary(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Final and best (lowest) train and val box/cls/dfl loss."""
    out: dict[str, dict[str, float]] = {}
    for part in ("train", "val"):
        for k in LOSSES:
            col = [r.get(f"{part}/{k}", float("nan")) for r in rows]
            finite = [v for v in col if math.isfinite(v)]
            out[f"{part}/{k}"] = {
                "final": col[-1] if col else float("nan"),
                "best": min(finite) if finite else float("nan"),
            }
    return out


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def _signature(data_yaml: Path, settings: TrainSettings, seed: int, model: str) -> dict:
    fp = (data_yaml.parent / ".fingerprint").read_text() if (data_yaml.parent / ".fingerprint").exists() else ""
    return {
        "data": fp,
        "model": model,
        "epochs": settings.epochs,
        "imgsz": settings.imgsz,
        "seed": seed,
        "extra": {k: str(v) for k, v in sorted(settings.extra.items())},
    }


def train_one(
    data_yaml: Path,
    run_dir: Path,
    settings: TrainSettings,
    *,
    side: str,
    seed: int,
    model: str,
    log: Callable[[str], None] = print,
    callbacks: dict[str, Callable[[Any], None]] | None = None,
) -> RunResult:
    """Train (or resume, or reuse) one model; NaN → restart with ``amp=False``; OOM → half the batch.

    The run folder holds ``curate-run.json`` (the settings it was started with) and, once finished,
    ``done.json``; a folder with other settings is started over, one without ``done.json`` is resumed.
    ``callbacks`` (Ultralytics event → function) run before curate's own checks.
    """
    from ultralytics import YOLO

    run_dir = run_dir.resolve()
    sig = _signature(data_yaml, settings, seed, model)
    done, started = run_dir / "done.json", run_dir / "curate-run.json"
    last, best = run_dir / "weights" / "last.pt", run_dir / "weights" / "best.pt"
    if done.exists() and started.exists() and json.loads(started.read_text()).get("signature") == sig:
        info = json.loads(done.read_text())
        log(f"{side} seed {seed}: already trained in {run_dir} — reusing it")
        return RunResult(
            side,
            seed,
            run_dir,
            Path(info["best"]),
            info["batch"],
            info["amp"],
            info.get("notes", []),
            info.get("seconds", 0.0),
            info.get("epochs_done", 0),
        )
    notes: list[str] = []
    batch, amp = settings.batch, bool(settings.extra.get("amp", True))
    resume = last.exists() and started.exists() and json.loads(started.read_text()).get("signature") == sig
    if resume and not checkpoint_complete(last):
        # Ultralytics writes last.pt in place: a kill during that write leaves a truncated file that cannot
        # be resumed. best.pt is no way back either (stripped at the end, or from an earlier epoch), so the
        # run starts over rather than failing every later attempt.
        log(f"{side} seed {seed}: {last} is truncated (killed while it was being written): starting this run over")
        notes.append("the checkpoint was truncated by a kill during its write: training started over")
        resume = False
    # Once training is over Ultralytics strips last.pt of its optimizer; a kill between that and done.json
    # leaves a finished training that cannot be resumed (``resume=True`` would start a NEW one with
    # Ultralytics' defaults: coco8.yaml, ./runs/detect/train). Its weights are final: they are used as they are.
    finished = resume and not resumable(last)
    if resume:
        state = json.loads(started.read_text())
        batch, amp = state.get("batch", batch), state.get("amp", amp)
    elif run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.time()
    for attempt in range(6):
        nan_seen: dict[str, Any] = {}

        def on_epoch_end(trainer: Any) -> None:
            finite = losses_finite(getattr(trainer, "tloss", None))
            if not finite:
                nan_seen["epoch"] = trainer.epoch + 1
                trainer.stop = True

        run_dir.mkdir(parents=True, exist_ok=True)
        started.write_text(json.dumps({"signature": sig, "batch": batch, "amp": amp}))
        try:
            if finished:
                log(f"{side} seed {seed}: training in {run_dir} had finished before the run was stopped — using it")
            elif resume:
                log(f"{side} seed {seed}: resuming from {last}")
                yolo = YOLO(str(last))
                _add_callbacks(yolo, callbacks, on_epoch_end)
                yolo.train(resume=True, workers=settings.workers, device=auto_device(settings.device))
            else:
                yolo = YOLO(model)
                _add_callbacks(yolo, callbacks, on_epoch_end)
                args = {"deterministic": True, "plots": True, "verbose": False, **settings.extra}
                args.update(
                    data=str(data_yaml),
                    epochs=settings.epochs,
                    imgsz=settings.imgsz,
                    batch=batch,
                    seed=seed,
                    device=auto_device(settings.device),
                    workers=settings.workers,
                    amp=amp,
                    project=str(run_dir.parent),
                    name=run_dir.name,
                    exist_ok=True,
                )
                yolo.train(**args)
        except Exception as exc:  # noqa: BLE001 — only OOM is retried; the rest goes up as it is
            if _is_oom(exc) and batch > 1:
                batch = max(1, batch // 2)
                notes.append(f"CUDA out of memory: batch halved to {batch} and training restarted")
                log(f"{side} seed {seed}: {notes[-1]}")
                _free_cuda()
                shutil.rmtree(run_dir, ignore_errors=True)
                resume = False
                continue
            raise
        rows = read_results(run_dir / "results.csv")
        bad = nan_epochs(rows)
        if nan_seen or bad:
            epoch = nan_seen.get("epoch") or bad[0]
            if amp:
                amp = False
                notes.append(f"NaN/inf loss at epoch {epoch}: restarted with amp=False")
                log(f"{side} seed {seed}: {notes[-1]}")
                shutil.rmtree(run_dir, ignore_errors=True)
                resume = finished = False
                continue
            notes.append(f"NaN/inf loss at epoch {epoch} even with amp=False: results of this run are unreliable")
        break
    rows = read_results(run_dir / "results.csv")
    weights = best if best.exists() and checkpoint_complete(best) else last
    result = RunResult(side, seed, run_dir, weights, batch, amp, notes, time.time() - t0, len(rows))
    done.write_text(
        json.dumps(
            {
                "best": str(weights),
                "batch": batch,
                "amp": amp,
                "notes": notes,
                "seconds": result.seconds,
                "epochs_done": len(rows),
            }
        )
    )
    return result


def checkpoint_complete(path: Path) -> bool:
    """A torch checkpoint is a zip archive whose central directory is written last: a file cut short
    by a kill has none (checked without unpickling anything)."""
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def resumable(path: Path) -> bool:
    """Ultralytics' own test for ``resume=True``: the checkpoint still has its epoch and optimizer state
    (``strip_optimizer`` sets epoch -1 and drops the optimizer when training ends)."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return isinstance(ckpt, dict) and ckpt.get("epoch", -1) >= 0 and ckpt.get("optimizer") is not None


def losses_finite(loss: Any) -> bool:
    """The trainer's mean epoch loss (a tensor, or a dict of tensors in Ultralytics 8.4) has no NaN/inf."""
    if loss is None:
        return True
    values = list(loss.values()) if isinstance(loss, dict) else [loss]
    try:
        return all(
            bool(np.isfinite(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=float)).all())
            for v in values
        )
    except (TypeError, ValueError):
        return True


def _add_callbacks(
    yolo: Any, callbacks: dict[str, Callable[[Any], None]] | None, on_epoch_end: Callable[[Any], None]
) -> None:
    for event, fn in (callbacks or {}).items():
        yolo.add_callback(event, fn)
    yolo.add_callback("on_train_epoch_end", on_epoch_end)


def _free_cuda() -> None:
    try:
        import torch

        torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass


# ----------------------------------------------------------------------------------------- evaluation


def evaluate(
    weights: Path, test_yaml: Path, save_dir: Path, settings: TrainSettings, *, segment: bool
) -> tuple[dict, list[ImageStats]]:
    """Ultralytics' own val on the fixed test set (plots included) and the per-image stats for the bootstrap."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    captured: dict[str, Any] = {}

    def grab(validator: Any) -> None:  # get_stats() clears them: keep a shallow copy after every batch
        captured["stats"] = {k: list(v) for k, v in validator.metrics.stats.items()}

    model.add_callback("on_val_batch_end", grab)
    metrics = model.val(
        data=str(test_yaml),
        split="test",
        imgsz=settings.imgsz,
        batch=settings.batch,
        device=auto_device(settings.device),
        workers=settings.workers,
        plots=True,
        verbose=False,
        project=str(save_dir.parent.resolve()),
        name=save_dir.name,
        exist_ok=True,
    )
    names = dict(metrics.names)
    out = {"box": _det_metrics(metrics.box, names)}
    if segment and hasattr(metrics, "seg"):
        out["mask"] = _det_metrics(metrics.seg, names)
    out["plots"] = {p.name: str(p) for p in sorted(Path(metrics.save_dir).glob("*.png"))}
    stats = captured.get("stats", {})
    images = [
        ImageStats(np.asarray(tp, bool), np.asarray(c, float), np.asarray(pc, int), np.asarray(tc, int))
        for tp, c, pc, tc in zip(
            stats.get("tp", []), stats.get("conf", []), stats.get("pred_cls", []), stats.get("target_cls", [])
        )
    ]
    return out, images


def _det_metrics(m: Any, names: dict[int, str]) -> dict:
    """mAP50, mAP50-95, P, R, F1 at the F1-best confidence, per-class AP — from an Ultralytics Metric."""
    f1, conf = 0.0, 0.0
    curve = np.asarray(getattr(m, "f1_curve", []))
    if curve.size:
        mean = curve.mean(0)
        i = int(mean.argmax())
        f1, conf = (
            float(mean[i]),
            float(np.asarray(m.px)[i]) if len(getattr(m, "px", [])) else i / max(len(mean) - 1, 1),
        )
    per_class = {
        names[int(c)]: {"AP50": float(m.ap50[k]), "AP50-95": float(m.ap[k])} for k, c in enumerate(m.ap_class_index)
    }
    return {
        "mAP50": float(m.map50),
        "mAP50-95": float(m.map),
        "precision": float(m.mp),
        "recall": float(m.mr),
        "F1": f1,
        "F1_conf": conf,
        "per_class": per_class,
    }


def remap_stats(images: list[ImageStats], names: list[str], common: list[str]) -> list[ImageStats]:
    """Class ids of one model → indices into ``common`` (classes both models know); others dropped."""
    index = {n: i for i, n in enumerate(common)}
    lut = np.array([index.get(n, -1) for n in names] or [-1])
    out = []
    for im in images:
        pc = lut[im.pred_cls] if len(im.pred_cls) else im.pred_cls
        tc = lut[im.target_cls] if len(im.target_cls) else im.target_cls
        keep = pc >= 0
        out.append(ImageStats(im.tp[keep] if im.tp.ndim == 2 else im.tp, im.conf[keep], pc[keep], tc[tc >= 0]))
    return out


# -------------------------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    """Everything compare.json holds (see :func:`to_json`)."""

    out: Path
    before: dict
    after: dict
    test: dict
    settings: dict
    bootstrap: BootstrapResult
    runs: list[RunResult]
    warnings: list[str]
    task: str

    def to_json(self) -> dict:
        b = self.bootstrap
        return {
            "before": self.before,
            "after": self.after,
            "test": self.test,
            "settings": self.settings,
            "task": self.task,
            "delta": {
                k: self.after["metrics"]["box"][k] - self.before["metrics"]["box"][k]
                for k in ("mAP50", "mAP50-95", "precision", "recall", "F1")
            },
            "bootstrap": {
                "resamples": b.resamples,
                "classes": self.test["common_classes"],
                "before": b.before,
                "after": b.after,
                "delta": b.delta,
                "ci95": {k: list(v) for k, v in b.ci95.items()},
                "verdicts": b.verdicts,
            },
            "verdict": b.verdict,
            "runs": [{**asdict(r), "run_dir": str(r.run_dir), "best": str(r.best)} for r in self.runs],
            "warnings": self.warnings,
        }


def _mean_metrics(all_metrics: list[dict]) -> dict:
    """Mean over seeds of every number (per-class too); plots from the first seed."""
    if len(all_metrics) == 1:
        return all_metrics[0]

    def merge(items: list[Any]) -> Any:
        if isinstance(items[0], dict):
            keys = set.intersection(*(set(i) for i in items)) if all(isinstance(i, dict) for i in items) else set()
            return {k: merge([i[k] for i in items]) for k in items[0] if k in keys}
        if isinstance(items[0], (int, float)):
            return float(np.mean(items))
        return items[0]

    merged = merge(all_metrics)
    merged["plots"] = all_metrics[0].get("plots", {})
    return merged


def manifests(root: Path) -> dict[str, Any]:
    """What changed, from manifests other curate commands write into their output folders."""
    found: dict[str, Any] = {}
    for name in MANIFESTS:
        p = root / name
        if not p.exists():
            continue
        if name == "changes.csv":
            with p.open(newline="", encoding="utf-8") as fh:
                kinds: dict[str, int] = {}
                for row in csv.DictReader(fh):
                    kinds[row.get("kind", "?")] = kinds.get(row.get("kind", "?"), 0) + 1
            found[name] = kinds
        elif name.endswith(".json"):
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found[name] = (
                {
                    k: v
                    for k, v in data.items()
                    if isinstance(v, (str, int, float, bool))
                    or (isinstance(v, (list, dict)) and len(json.dumps(v)) < 200)
                }
                if isinstance(data, dict)
                else {}
            )
        else:
            found[name] = p.read_text(encoding="utf-8").splitlines()[:1]
    return found


def describe(dataset: Dataset) -> dict:
    return {
        "name": dataset.name,
        "path": str(dataset.root),
        "fingerprint": content_fingerprint(dataset),
        "images": {s: len(dataset.split(s)) for s in dataset.splits},
        "boxes": dataset.num_boxes,
        "classes": len(dataset.names),
        "changes": manifests(dataset.root),
    }


def compare(
    before: Dataset,
    after: Dataset,
    out: Path,
    *,
    settings: TrainSettings,
    test: tuple[Dataset, str] | None = None,
    log: Callable[[str], None] = print,
) -> Comparison:
    """Train both sides with identical settings, evaluate on one test set, bootstrap the difference."""
    from curate.io.outputs import remove_leftovers, unmark
    from curate.io.yolo import WriteError, check_outside_inputs
    from curate.runtime import env

    env.configure()
    out = Path(out).resolve()
    try:
        check_outside_inputs(out, [before.root, after.root] + ([test[0].root] if test else []))
    except WriteError as exc:
        raise CompareError(f"{exc} (run from another folder or pass --out)") from None
    out.mkdir(parents=True, exist_ok=True)
    unmark(out)  # rewritten from here on: not a finished result until write_outputs marks it again
    remove_leftovers(out)
    warnings: list[str] = []
    if test is None:
        if not after.split("test"):
            raise CompareError(
                f"AFTER ({after.root}) has no test split: pass --test PATH (a dataset or a split of one)"
            )
        test_ds, test_split = after, "test"
        log(f"test set: AFTER's test split ({len(after.split('test'))} images) — both models are scored on it")
    else:
        test_ds, test_split = test
    test_recs = test_ds.split(test_split)
    if not test_recs:
        raise CompareError(f"the test set {test_ds.root} has no images in split {test_split!r}")
    segment = is_segmentation(before) or is_segmentation(after)
    model = seg_model_name(settings.model) if segment else settings.model
    task = "segment" if segment else "detect"

    folders = {}
    for side, ds in (("before", before), ("after", after)):
        ds, note = with_val(ds, seed=settings.seed)
        if note:
            warnings.append(note)
        if not ds.split("train"):
            raise CompareError(f"{side.upper()} ({ds.root}) has no train split")
        folders[side] = (ds, training_folder(ds, out / "data" / side))
    warnings += leaks(test_recs, {"BEFORE": before.split("train"), "AFTER": after.split("train")})

    test_info: dict[str, Any] = {
        "path": str(test_ds.root),
        "split": test_split,
        "images": len(test_recs),
        "boxes": sum(len(r.labels) for r in test_recs),
        "default": test is None,
    }
    test_yamls = {}
    for side in ("before", "after"):
        names = folders[side][0].names
        y, dropped = test_folder(test_recs, test_ds.names, names, out / "data" / f"test-{side}", root=test_ds.root)
        test_yamls[side] = y
        test_info[f"dropped_for_{side}"] = dropped
        if dropped:
            warnings.append(
                f"{sum(dropped.values())} test box(es) of {len(dropped)} class(es) {side.upper()}'s model "
                f"does not know are left out of its evaluation: {', '.join(sorted(dropped))}"
            )
    present = {test_ds.class_name(l.class_id) for r in test_recs for l in r.labels}
    common = [n for n in folders["before"][0].names if n in set(folders["after"][0].names) and n in present]
    if not common:
        raise CompareError("BEFORE, AFTER and the test set share no class name: nothing to compare on")
    test_info["common_classes"] = common

    runs: list[RunResult] = []
    metrics: dict[str, list[dict]] = {"before": [], "after": []}
    stats: dict[str, list[list[ImageStats]]] = {"before": [], "after": []}
    seeds = [settings.seed + k for k in range(max(1, settings.seeds))]
    for seed in seeds:
        for side in ("before", "after"):
            ds, data_yaml = folders[side]
            run = train_one(
                data_yaml, out / "runs" / f"{side}-seed{seed}", settings, side=side, seed=seed, model=model, log=log
            )
            rows = read_results(run.run_dir / "results.csv")
            plateau = find_plateau(rows, epochs=settings.plateau_epochs, tol=settings.plateau_tol)
            if plateau:
                run.notes.append(
                    f"loss plateau from epoch {plateau['epoch']} ({plateau['epochs']} epochs within "
                    f"{settings.plateau_tol:.0%}) at learning rate {plateau['lr']:.2e}"
                )
            runs.append(run)
            m, per_image = evaluate(
                run.best, test_yamls[side], out / "eval" / f"{side}-seed{seed}", settings, segment=segment
            )
            m["losses"] = loss_summary(rows)
            m["train_plots"] = {p.name: str(p) for p in sorted(run.run_dir.glob("results.png"))}
            metrics[side].append(m)
            stats[side].append(remap_stats(per_image, ds.names, common))
            for n in run.notes:
                log(f"{side} seed {seed}: {n}")
    boot = paired_bootstrap(
        list(zip(stats["before"], stats["after"])),
        np.arange(len(common)),
        resamples=settings.resamples,
        seed=settings.seed,
    )
    sides = {
        s: {
            **describe(folders[s][0]),
            "metrics": _mean_metrics(metrics[s]),
            "seeds": metrics[s] if len(seeds) > 1 else None,
        }
        for s in ("before", "after")
    }
    sset = {**asdict(settings), "model": model, "device": auto_device(settings.device), "seeds_used": seeds}
    return Comparison(out, sides["before"], sides["after"], test_info, sset, boot, runs, warnings, task)


def write_outputs(c: Comparison) -> dict[str, Path]:
    """compare.json, compare.md, compare.html in ``c.out``, each whole; then ``c.out`` is marked complete."""
    from curate.io.outputs import mark_complete, write_text_atomic
    from curate.report.compare import render_html, render_md

    data = c.to_json()
    paths = {"json": c.out / "compare.json", "md": c.out / "compare.md", "html": c.out / "compare.html"}
    write_text_atomic(paths["json"], json.dumps(data, indent=2, default=_json_default) + "\n")
    write_text_atomic(paths["md"], render_md(data))
    write_text_atomic(paths["html"], render_html(data))
    mark_complete(c.out, "train-and-compare")
    return paths


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def parse_extras(items: list[str]) -> dict[str, Any]:
    """``["lr0=0.005", "mosaic=0"]`` → typed values for Ultralytics (YAML scalars)."""
    import yaml as pyyaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CompareError(f"extra argument {item!r} is not key=value (e.g. lr0=0.005)")
        k, v = item.split("=", 1)
        out[k.strip()] = pyyaml.safe_load(v)
    return out
