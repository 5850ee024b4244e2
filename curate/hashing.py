"""Per-image signatures (content hash, perceptual hash, thumbnail, decode status) and near-duplicate search.

Decoding uses OpenCV's reduced-resolution JPEG decode (1/8 scale): a near-duplicate descriptor needs
only a 16×16 thumbnail, so decoding full pixels would waste most of the time. Signatures are cached on
disk by file content (:mod:`curate.cache`), so a re-run reads bytes and hashes them, nothing more.

Similarity is the correlation of mean/std-normalised, lightly blurred 16×16 grayscale thumbnails:
normalisation makes it blind to brightness/contrast shifts, the blur makes it tolerant to small crops
and shifts, and a dot product on unit vectors lets numpy/BLAS compare thousands of images at once.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate import cache
from curate.dataset import Dataset

NAMESPACE = "signature-v1"
THUMB = 16  # thumbnail side for the near-duplicate descriptor
NEAR_DUPLICATE_SIMILARITY = 0.97  # thumbnail correlation at or above this = near-duplicate

_MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF8", "gif"), (b"BM", "bmp"),
          (b"RIFF", "webp"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"))
_EXT = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "gif": "gif", "bmp": "bmp", "webp": "webp",
        "tif": "tiff", "tiff": "tiff"}


@dataclass
class Signature:
    """What the image checks need from one file; everything but ``ext_ok`` depends on content only."""

    content_hash: str
    status: str  # ok | truncated | unreadable | zero_bytes
    format: str  # by magic bytes: jpeg, png, … or "unknown"
    width: int = 0
    height: int = 0
    orientation: int = 1  # EXIF orientation tag (1 = upright)
    phash: str = ""  # imagehash pHash hex, for reports and exact-ish matching
    thumb: list[float] | None = None  # unit-norm THUMB×THUMB descriptor
    ext_ok: bool = True  # file extension agrees with the magic bytes


def _magic(data: bytes) -> str:
    for sig, name in _MAGIC:
        if data.startswith(sig):
            return name
    return "unknown"


def _truncated(data: bytes, fmt: str) -> bool:
    """JPEG must end with EOI (what Ultralytics checks), PNG with IEND."""
    if fmt == "jpeg":
        return b"\xff\xd9" not in data.rstrip(b"\x00\r\n")[-2:]
    if fmt == "png":
        return b"IEND" not in data[-16:]
    return False


def _compute(data: bytes) -> dict:
    import cv2
    import imagehash
    from PIL import Image

    key = hashlib.blake2b(data, digest_size=16).hexdigest()  # == cache.file_hash(path)
    if not data:
        return {"content_hash": key, "status": "zero_bytes", "format": "unknown"}
    fmt = _magic(data)
    out: dict = {"content_hash": key, "status": "ok", "format": fmt}
    try:
        with Image.open(io.BytesIO(data)) as im:
            out["width"], out["height"] = im.size
            out["orientation"] = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return {**out, "status": "unreadable"}
    buf = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None or img.size == 0:
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None or img.size == 0:
        return {**out, "status": "unreadable"}
    if _truncated(data, fmt):
        out["status"] = "truncated"
    out["phash"] = str(imagehash.phash(Image.fromarray(img)))
    t = cv2.resize(img, (THUMB * 2, THUMB * 2), interpolation=cv2.INTER_AREA).astype(np.float32)
    t = cv2.resize(cv2.GaussianBlur(t, (0, 0), 1.5), (THUMB, THUMB), interpolation=cv2.INTER_AREA).ravel()
    t -= t.mean()
    out["thumb"] = [round(float(v), 5) for v in t / (np.linalg.norm(t) + 1e-6)]
    return out


def signature(path: Path) -> Signature:
    """The signature of one file, from the disk cache when its bytes were seen before."""
    data = Path(path).read_bytes()
    key = hashlib.blake2b(data, digest_size=16).hexdigest()
    d = cache.load_json(NAMESPACE, key)
    if d is None:
        d = _compute(data)
        cache.save_json(NAMESPACE, key, d)
    sig = Signature(**d)
    ext = _EXT.get(Path(path).suffix.lower().lstrip("."))
    sig.ext_ok = sig.format == "unknown" or ext is None or ext == sig.format
    return sig


def image_signatures(dataset: Dataset, *, workers: int | None = None, progress: bool = True) -> dict[str, Signature]:
    """Signatures of every image, keyed by ``record.rel``; OpenCV releases the GIL, so threads parallelise."""
    import cv2
    from rich.progress import track

    cv2.setNumThreads(1)
    records = dataset.images
    with ThreadPoolExecutor(max_workers=workers or 2) as ex:
        it = ex.map(lambda r: signature(r.path), records)
        if progress:
            it = track(it, total=len(records), description="hashing images")
        sigs = list(it)
    return {r.rel: s for r, s in zip(records, sigs)}


def near_duplicate_pairs(sigs: dict[str, Signature], *, threshold: float | None = None,
                         block: int = 2048) -> list[tuple[str, str, float]]:
    """``(a, b, similarity)`` for every pair at or above ``threshold`` (exact duplicates get 1.0).

    Block-wise matrix products of unit descriptors: O(n²) multiply-adds, but in BLAS, not Python.
    """
    thr = NEAR_DUPLICATE_SIMILARITY if threshold is None else threshold
    keys = [k for k, s in sigs.items() if s.thumb is not None]
    pairs: dict[tuple[str, str], float] = {}
    by_hash: dict[str, list[str]] = {}
    for k, s in sigs.items():
        by_hash.setdefault(s.content_hash, []).append(k)
    for group in by_hash.values():
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                pairs[(group[i], group[j])] = 1.0
    if keys:
        X = np.asarray([sigs[k].thumb for k in keys], dtype=np.float32)
        for start in range(0, len(keys), block):
            S = X[start:start + block] @ X.T
            ii, jj = np.nonzero(S >= thr)
            for i, j in zip(ii + start, jj):
                if j > i:
                    pairs.setdefault((keys[i], keys[j]), float(min(1.0, S[i - start, j])))
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))


def near_duplicate_groups(dataset: Dataset, sigs: dict[str, Signature], *,
                          threshold: float | None = None) -> list[list[str]]:
    """Connected components (size ≥ 2) of the near-duplicate graph, for group-aware re-splitting."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in near_duplicate_pairs(sigs, threshold=threshold):
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for r in dataset.images:
        if r.rel in parent:
            groups.setdefault(find(r.rel), []).append(r.rel)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])
