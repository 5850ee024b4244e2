"""objectlab: cleanlab's ObjectLab label-quality scores from a user's trained YOLO model (``--model best.pt``).

Only runs when ``ctx.model`` is set. Ultralytics predicts every image at a low confidence floor
(``defaults.OBJECTLAB_CONF``; ObjectLab wants the low-confidence boxes too) at the model's own ``imgsz``,
and labels plus predictions are converted to cleanlab's ``object_detection`` format (pixel ``x1y1x2y2``;
per image, one ``(M_k, 5)`` array of ``[x1, y1, x2, y2, conf]`` per class).

Scores, chosen to name a line where possible:

- **per box** (line findings): ``1 − min(swap, badloc)`` from cleanlab's public per-box helpers
  ``compute_swap_box_scores`` and ``compute_badloc_box_scores`` (each in [0, 1], low = likely wrong);
  a box cleanlab leaves unscored (NaN: no confident prediction near it) gets 0. The message says which
  of the two (wrong class / badly located) drove the score.
- **per overlooked prediction** (region findings): ``1 − compute_overlooked_box_scores`` for confident
  predictions that no label covers — ObjectLab's "missing box".
- the image's ``1 − get_label_quality_scores`` (cleanlab's aggregate) goes into every finding's
  ``data["image_score"]`` for sorting images.

Caveat: a model that was trained on these very images has memorised their labels and scores them as clean;
ObjectLab works best with out-of-fold predictions (train on other folds). We use the model as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord
from curate.core.findings import Finding

NAME = "objectlab"
BATCH = 16  # images per Ultralytics predict call


def _label_dict(rec: ImageRecord, size: tuple[int, int]) -> dict[str, np.ndarray]:
    w, h = size
    boxes = np.array([lab.xyxy for lab in rec.labels], dtype=float).reshape(-1, 4) * [w, h, w, h]
    return {"bboxes": boxes, "labels": np.array([lab.class_id for lab in rec.labels], dtype=int)}


def _prediction_arrays(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, num_classes: int) -> np.ndarray:
    """cleanlab's per-image prediction: an object array of ``num_classes`` arrays of shape (M_k, 5)."""
    out = np.empty(num_classes, dtype=object)
    for k in range(num_classes):
        sel = cls == k
        out[k] = np.hstack([xyxy[sel], conf[sel, None]]).astype(np.float32).reshape(-1, 5)
    return out


def predict(
    model_path: str | Path, records: list[ImageRecord], *, num_classes: int, conf: float, seed: int = 0
) -> list[np.ndarray]:
    """Ultralytics predictions for ``records`` (CPU), in cleanlab's format, in the records' order."""
    from rich.progress import Progress
    from ultralytics import YOLO

    model = YOLO(str(model_path))
    imgsz = int(model.overrides.get("imgsz") or getattr(model.model, "args", {}).get("imgsz", 640) or 640)
    preds: list[np.ndarray] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("objectlab: predicting", total=len(records))
        for start in range(0, len(records), BATCH):
            chunk = records[start : start + BATCH]
            results = model.predict(
                [str(r.path) for r in chunk], conf=conf, imgsz=imgsz, device="cpu", verbose=False, max_det=300
            )
            for res in results:
                b = res.boxes
                preds.append(
                    _prediction_arrays(
                        b.xyxy.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy().astype(int), num_classes
                    )
                )
            progress.advance(task, len(chunk))
    return preds


def _model_class_names(model_path: str | Path) -> list[str]:
    """The model's class names in index order (Ultralytics stores them as {index: name})."""
    from ultralytics import YOLO

    names = YOLO(str(model_path)).names
    return [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def score(
    dataset: Dataset,
    records: list[ImageRecord],
    labels: list[dict[str, np.ndarray]],
    predictions: list[np.ndarray],
    *,
    threshold: float,
) -> list[Finding]:
    """Findings from labels and cleanlab-format predictions (split out from :func:`run` for testing)."""
    from cleanlab.object_detection.rank import (
        compute_badloc_box_scores,
        compute_overlooked_box_scores,
        compute_swap_box_scores,
        get_label_quality_scores,
    )

    image_q = get_label_quality_scores(labels, predictions, verbose=False)
    swap = compute_swap_box_scores(labels=labels, predictions=predictions)
    badloc = compute_badloc_box_scores(labels=labels, predictions=predictions)
    overlooked = compute_overlooked_box_scores(labels=labels, predictions=predictions)
    out: list[Finding] = []
    for i, rec in enumerate(records):
        image_score = round(float(1.0 - image_q[i]), 4)
        w, h = rec.size
        for k, lab in enumerate(rec.labels):
            s_swap = float(np.nan_to_num(swap[i][k], nan=1.0))
            s_bad = float(np.nan_to_num(badloc[i][k], nan=1.0))
            value = float(np.clip(1.0 - min(s_swap, s_bad), 0.0, 1.0))
            name = dataset.class_name(lab.class_id)
            if value < threshold:
                msg = f"'{name}' agrees with the model"
            elif s_swap <= s_bad:
                msg = f"'{name}': the model sees another class here (swap score {s_swap:.2f})"
            else:
                msg = f"'{name}': badly located per the model (location score {s_bad:.2f})"
            data: dict[str, Any] = {
                "class": name,
                "swap": round(s_swap, 4),
                "badloc": round(s_bad, 4),
                "image_score": image_score,
            }
            out.append(Finding(rec.split, rec.rel, NAME, value, msg, line=lab.line, data=data))
        pred = predictions[i]
        boxes = np.concatenate([pred[c][:, :4] for c in range(len(pred))]) if len(pred) else np.zeros((0, 4))
        classes = np.concatenate([[c] * len(pred[c]) for c in range(len(pred))]) if len(pred) else np.zeros(0)
        for j, s in enumerate(np.asarray(overlooked[i], dtype=float)):
            if np.isnan(s):
                continue
            x1, y1, x2, y2 = boxes[j]
            region = ((x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
            region = tuple(float(np.clip(v, 0.0, 1.0)) for v in region)
            name = dataset.class_name(int(classes[j]))
            out.append(
                Finding(
                    rec.split,
                    rec.rel,
                    NAME,
                    float(np.clip(1.0 - s, 0.0, 1.0)),
                    f"the model sees an unlabelled '{name}' here (overlooked score {s:.2f})",
                    region=region,
                    data={"class": name, "image_score": image_score},
                )
            )
    return out


def _readable(rec: ImageRecord) -> bool:
    """Unreadable images are the image checks' findings; ObjectLab just leaves them out."""
    try:
        return rec.path.is_file() and min(rec.size) > 0
    except Exception:
        return False


def skipped(ctx: AuditContext) -> str | None:
    """Needs the user's trained model."""
    return "needs --model" if ctx.model is None else None


def run(ctx: AuditContext) -> list[Finding]:
    """ObjectLab findings for every labelled box (and overlooked predictions); [] without ``ctx.model``."""
    if ctx.model is None:
        return []
    dataset = ctx.dataset
    if not Path(ctx.model).is_file():
        dataset.warnings.append(f"objectlab skipped: model weights {ctx.model} not found")
        return []
    model_names = _model_class_names(ctx.model)
    if len(model_names) != len(dataset.names):
        dataset.warnings.append(
            f"objectlab skipped: the model has {len(model_names)} classes, the dataset {len(dataset.names)}"
        )
        return []
    differ = [
        (i, m, d)
        for i, (m, d) in enumerate(zip(model_names, dataset.names))
        if m.strip().lower() != str(d).strip().lower()
    ]
    if differ:  # same count, other names: a model of another dataset (or a re-ordered one) scores by index anyway
        shown = ", ".join(f"{i}: model '{m}' vs dataset '{d}'" for i, m, d in differ[:3]) + (
            " …" if len(differ) > 3 else ""
        )
        dataset.warnings.append(
            f"objectlab: the model's class names differ from the dataset's ({shown}); classes are matched by index"
        )
    records = [r for r in dataset.images if _readable(r)]
    conf = float(ctx.param(NAME, "conf", defaults.OBJECTLAB_CONF))
    predictions = predict(ctx.model, records, num_classes=len(dataset.names), conf=conf, seed=ctx.seed)
    labels = [_label_dict(r, r.size) for r in records]
    return score(dataset, records, labels, predictions, threshold=ctx.threshold(NAME))


class ObjectLab(Check):
    names = (NAME,)
    description = "cleanlab ObjectLab label-quality scores from a user's trained YOLO model (--model)"
    kind = "box"
    order = 120
    display = {
        "objectlab": Display(110, "#db2777"),
    }
    options = {"conf": defaults.OBJECTLAB_CONF}

    def skipped(self, ctx: AuditContext) -> str | None:
        return skipped(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
