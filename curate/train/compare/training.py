"""One training, resumable: resume from ``last.pt``, start over after a truncated checkpoint, restart with
``amp=False`` on a NaN/inf loss, halve the batch on CUDA out-of-memory; results.csv read back."""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curate.train.compare.settings import LOSSES, RunResult
from curate.train.options import TrainOptions


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


def training_curve(rows: list[dict[str, float]], plateau: dict[str, float] | None = None) -> dict[str, Any]:
    """Per epoch: the total train and val loss (box + cls + dfl) and the val mAP50-95, with the plateau's first
    epoch and the NaN/inf epochs: what compare.html draws (None for a NaN, which JSON cannot hold)."""

    def col(values: list[float]) -> list[float | None]:
        return [v if math.isfinite(v) else None for v in values]

    return {
        "epoch": [int(r.get("epoch", i + 1)) for i, r in enumerate(rows)],
        "train_loss": col([sum(r.get(f"train/{k}", float("nan")) for k in LOSSES) for r in rows]),
        "val_loss": col([sum(r.get(f"val/{k}", float("nan")) for k in LOSSES) for r in rows]),
        "mAP50-95": col([r.get("metrics/mAP50-95(B)", float("nan")) for r in rows]),
        "plateau": int(plateau["epoch"]) if plateau else None,
        "nan": nan_epochs(rows),
    }


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def _signature(data_yaml: Path, settings: TrainOptions, seed: int, model: str) -> dict:
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
    settings: TrainOptions,
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
