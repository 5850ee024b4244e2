"""Evaluation of a trained model on the one test set: metrics, per-image statistics for the bootstrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from curate.train.bootstrap import ImageStats
from curate.train.compare.training import auto_device
from curate.train.options import TrainOptions


def evaluate(
    weights: Path, test_yaml: Path, save_dir: Path, settings: TrainOptions, *, segment: bool
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
