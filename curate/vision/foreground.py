"""Per-image salient-object masks (U²-Net-p via onnxruntime), cached on disk by image content.

Why not ``rembg.remove``: importing rembg costs ~45 s and it redoes work we cache; the bare ONNX session
is all we need. The graph's input is fixed at 1×3×320×320, so there is no cheaper input size and no
batching; a mask costs ~250 ms on 2 threads, which is why the box checks compute masks only on request
(``masks_for``) and otherwise read what is cached (``cached_mask``).

When the weights are absent we fall back to OpenCV GrabCut seeded with the central region (coarser,
and it says so: :attr:`ForegroundModel.method` is ``"grabcut"`` and a one-line warning is logged).
Masks are stored as uint8 at the model's 320×320 output (100 kB an image) under cache namespace ``fg``
(``fg-grabcut`` for the fallback, so a later run with weights does not reuse the coarse masks).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from curate.core import defaults
from curate.core.dataset import ImageRecord
from curate.io import cache
from curate.vision.decode import pixel_side

log = logging.getLogger(__name__)

_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def default_weights() -> Path:
    """Where the set-up puts U²-Net-p: ``$U2NETP_PATH``, ``$REMBG_HOME/models/u2netp/u2netp.onnx``, the checkout's
    ``.models/rembg``, else ``~/.u2net``."""
    if env := os.environ.get("U2NETP_PATH"):
        return Path(env)
    tail = Path("models") / "u2netp" / "u2netp.onnx"
    if home := os.environ.get("REMBG_HOME"):
        return Path(home) / tail
    local = Path(__file__).resolve().parents[2] / ".models" / "rembg" / tail  # a source checkout's set-up
    return local if local.exists() else Path.home() / ".u2net" / tail


def read_image(path: Path, *, max_side: int | None = None) -> np.ndarray | None:
    """BGR uint8 image, decoded at reduced size when ``max_side`` allows (JPEG DCT scaling: 2–4× faster).

    Returns None for an unreadable file (the image checks report those; pixel checks just skip them).
    """
    from curate.io.decode import imread, reduction

    factor = 1
    if max_side:
        try:
            from PIL import Image

            with Image.open(path) as im:
                side = max(im.size)
        except Exception:  # unreadable header: let cv2 try the full decode
            side = 0
        factor = reduction(side, max_side) if side else 1
    img = imread(path, factor)
    if img is None:
        return None
    if max_side and max(img.shape[:2]) > max_side:
        s = max_side / max(img.shape[:2])
        img = cv2.resize(
            img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))), interpolation=cv2.INTER_AREA
        )
    return img


class ForegroundModel:
    """U²-Net-p saliency on 2 intra-op threads, or GrabCut when the weights are missing.

    ``predict(bgr)`` returns a float32 mask in [0, 1] at 320×320 (the model's output grid); callers
    resize it to whatever they need.
    """

    side = defaults.FOREGROUND_INPUT

    def __init__(self, weights: Path | None = None, *, threads: int = 2) -> None:
        self.weights = Path(weights) if weights else default_weights()
        self.session = None
        self.method = "grabcut"
        if self.weights.exists():
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            # no memory arena: ONNX Runtime's kept 0.49 GB resident after a few 320x320 masks (0.05 GB without), the
            # largest single piece of the full audit's peak (issue #25); each mask takes ~0.75 s instead of ~0.58 s,
            # in the audit ~36 masks on a background thread
            opts.enable_cpu_mem_arena = False
            # its two threads sleep between operators instead of spinning: a mask runs on a background thread beside
            # the checks (missing, class_inconsistent), and the spin took ~0.17 CPU-s of a mask's ~0.8 from them for
            # the same mask to the bit (benchmarks/README.md, session 24); OMP_WAIT_POLICY does not reach this pool
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(self.weights), opts, providers=["CPUExecutionProvider"])
            self._input = self.session.get_inputs()[0].name
            self._output = self.session.get_outputs()[0].name
            self.method = "u2netp"
        else:
            log.warning("U²-Net-p weights not found at %s: using GrabCut for foreground masks (coarser)", self.weights)

    @property
    def namespace(self) -> str:
        return "fg" if self.method == "u2netp" else "fg-grabcut"

    def predict(self, bgr: np.ndarray) -> np.ndarray:
        if self.session is None:
            return grabcut_mask(bgr, side=self.side)
        rgb = cv2.cvtColor(cv2.resize(bgr, (self.side, self.side), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        x = rgb.astype(np.float32) / max(float(rgb.max()), 1.0)
        x = ((x - _MEAN) / _STD).transpose(2, 0, 1)[None]
        pred = self.session.run([self._output], {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0][0, 0]
        lo, hi = float(pred.min()), float(pred.max())
        return ((pred - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def grabcut_mask(bgr: np.ndarray, *, side: int = 320, iterations: int = 3) -> np.ndarray:
    """Foreground by GrabCut seeded with the image minus a 6 % border: the no-weights fallback."""
    small = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA)
    m = int(side * 0.06)
    mask = np.zeros((side, side), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(small, mask, (m, m, side - 2 * m, side - 2 * m), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # flat image: GrabCut cannot fit its colour models
        return np.zeros((side, side), np.float32)
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)


_MODEL: ForegroundModel | None = None


def get_model() -> ForegroundModel:
    """One shared model per process (the session holds ~20 MB and takes ~0.3 s to build)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = ForegroundModel()
    return _MODEL


def _resize(mask320: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """uint8/float 320×320 → float32 in [0, 1] at ``size`` = (w, h)."""
    m = mask320.astype(np.float32)
    if m.max() > 1.0:
        m /= 255.0
    if size is not None and (m.shape[1], m.shape[0]) != tuple(size):
        m = cv2.resize(m, tuple(size), interpolation=cv2.INTER_LINEAR)
    return m


def cached_mask(
    record: ImageRecord, *, size: tuple[int, int] | None = None, key: str | None = None
) -> np.ndarray | None:
    """The mask if it is already cached (U²-Net-p first, then GrabCut), else None — never computes.

    ``size`` = (w, h) of the returned mask; default the image's own size.
    """
    try:
        key = key or cache.file_hash(record.path)
    except OSError:
        return None
    for ns in ("fg", "fg-grabcut"):
        raw = cache.load_array(ns, key)
        if raw is not None:
            return _resize(raw, size or record.size)
    return None


def foreground_mask(
    record: ImageRecord, *, size: tuple[int, int] | None = None, model: ForegroundModel | None = None
) -> np.ndarray | None:
    """Float32 mask in [0, 1] at ``size`` (default the image's size); computed once, then cached.

    None when the image cannot be decoded.
    """
    model = model or get_model()
    key = cache.file_hash(record.path)
    raw = cache.load_array(model.namespace, key)
    if raw is None:
        bgr = read_image(record.path, max_side=2 * model.side)
        if bgr is None:
            return None
        raw = np.round(model.predict(bgr) * 255).astype(np.uint8)
        cache.save_array(model.namespace, key, raw)
    return _resize(raw, size or record.size)


def masks_for(
    records: Iterable[ImageRecord],
    *,
    max_side: int | None = None,
    progress: bool = True,
    model: ForegroundModel | None = None,
) -> dict[str, np.ndarray]:
    """``rel`` → mask for many images (float32, longest side ``max_side``, by default the side the box features
    decode that image at: :func:`~curate.vision.decode.pixel_side`), with a progress bar.

    Masks come back at the pixel checks' working size, not full size, so 2,000 of them fit in memory.
    Unreadable images are left out.
    """
    from rich.progress import Progress

    records = list(records)
    model = model or get_model()
    out: dict[str, np.ndarray] = {}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"foreground masks ({model.method})", total=len(records))
        for rec in records:
            try:
                w, h = rec.size
            except Exception:
                bar.advance(task)
                continue
            s = min(1.0, (max_side or pixel_side((w, h))) / max(w, h))
            mask = foreground_mask(rec, size=(max(1, round(w * s)), max(1, round(h * s))), model=model)
            if mask is not None:
                out[rec.rel] = mask
            bar.advance(task)
    return out
