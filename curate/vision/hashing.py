"""Per-image signatures: content hash, decode status, EXIF orientation and a perceptual thumbnail.

Why a normalised thumbnail and not only pHash: near-duplicates in real exports are the same photo
re-compressed, resized, slightly cropped or brightened. A 32×32 grey thumbnail with its mean removed and
its norm set to 1 makes the dot product of two thumbnails their correlation: brightness and contrast
shifts cancel out, a 5 % crop moves content by under a pixel, and the search is one matrix product
(blockwise), not a Python loop over pairs. Decoding uses OpenCV's reduced-resolution JPEG path, so a
640-px image costs a fraction of a full decode. Signatures are cached on disk by content hash.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from curate.core.dataset import Dataset, ImageRecord
from curate.io import cache, image_files
from curate.io.decode import imdecode
from curate.runtime import env
from curate.vision.quality import QUALITY_STATS, quality_stats

THUMB = 32  # thumbnail side: 1,024 numbers per image
#: 2: a sound image's signature is one array file; 3: no name-dependent status cached; 4: PNG/WebP EXIF orientation;
#: 5: in one SQLite file; 6: image-quality statistics; 7: bytes after a JPEG's end marker are no longer truncation
#: (image_files.cut_short)
SIGNATURE_VERSION = 7
#: Similarity (correlation of thumbnails) at or above which two images are near-duplicates.
NEAR_DUPLICATE_SIMILARITY = (
    0.90  # checked by eye on food-ingredients: >= 0.90 is the same shot, < 0.85 starts pairing different objects
)
SAME_SCENE_SIMILARITY = 0.85  # looser: still the same scene (missing's label transfer, the box model's scenes)
DCT_KEEP = 8  # low DCT frequencies per axis that bound a pair's correlation before it is computed
BOUND_SLACK = 1e-4  # float32 rounding of the bound: a pair this close below it is still checked
BLOCK_CELLS = 25_000_000  # pairs bounded per block (float32: 100 MB)
CORR_CHUNK = 8192  # candidate pairs whose rows are gathered at once (2 × 32 MB)
_SUFFIX_KIND = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
    ".bmp": "bmp",
    ".webp": "webp",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".gif": "gif",
    ".mpo": "jpeg",
}


@dataclass
class Signature:
    """What the image-level checks need to know about one image file."""

    rel: str
    content: str  # blake2b of the bytes ("" when unreadable)
    status: str  # "ok", "empty", "unreadable", "truncated", "wrong_extension"
    detail: str  # one line for the user when status != "ok"
    width: int
    height: int
    orientation: int  # EXIF orientation (1 = as stored)
    thumb: np.ndarray | None  # float32 THUMB*THUMB, zero-mean, unit norm; None when undecodable
    quality: dict[str, float] | None = None  # :data:`QUALITY_STATS` of the decoded pixels; None when undecodable


#: Byte strings that open an EXIF block: JPEG's APP1 ``Exif``, PNG's ``eXIf`` chunk, WebP's ``EXIF`` chunk.
_EXIF_MARKERS = (b"Exif\x00\x00", b"eXIf", b"EXIF")


def _may_have_exif(data: bytes, kind: str | None) -> bool:
    """Whether the file can hold an EXIF orientation: a marker in its first 64 KB, or a TIFF (its own tags).

    Why not only JPEG's ``Exif`` marker: OpenCV and Ultralytics also turn PNG and WebP photos by their
    EXIF orientation, which PNG (``eXIf``) and WebP (``EXIF``) store under other names.

    Every marker lower-cased holds ``exif``, so one search of the lower-cased head rules out all three in
    most files (no EXIF): 50 µs where the three searches took 90 µs on food-ingredients' 54-KB JPEGs,
    whose compressed bytes hold many ``\\x00`` that the ``Exif\\x00\\x00`` search stops at.
    """
    if kind == "tiff":
        return True
    head = data[:65536]
    return b"exif" in head.lower() and any(m in head for m in _EXIF_MARKERS)


def _header(data: bytes) -> tuple[tuple[int, int] | None, int]:
    """(width, height) of the upright image and its EXIF orientation (1 = as stored), without decoding.

    EXIF is parsed only when the file holds an EXIF block (most exports strip it): a PIL EXIF read costs
    more than a reduced decode.
    """
    import io

    from PIL import Image

    from curate.core.dataset import exif_orientation, oriented_size

    image_files.quiet_pil()  # an oversized image is the reader's finding, not PIL's warning
    try:
        with Image.open(io.BytesIO(data)) as im:
            orientation = exif_orientation(im)  # parsed once, for the size and the orientation alike
            return oriented_size(im.size, orientation), orientation
    except Exception:  # noqa: BLE001 — an unreadable header or bad EXIF block: the decode decides
        return None, 1


def _thumb(
    data: bytes, *, full_size: tuple[int, int] | None
) -> tuple[np.ndarray | None, tuple[int, int], dict[str, float] | None]:
    """The normalized thumbnail, the image size and its :func:`quality_stats`; decoded at 1/4 (JPEG DCT
    scaling), else in full.

    (1/8 is 25 % faster but its smoother thumbnails raise correlations: 244 → 269 near-duplicate images
    on food-ingredients at the same threshold, which was set by eye on the 1/4 thumbnails.) The decode is
    in colour, for the quality statistics: on food-ingredients a reduced colour decode costs what a
    reduced grey one does (1.73 vs 1.68 ms), and its grey conversion gives the same thumbnails.
    """
    import cv2

    buf = np.frombuffer(data, np.uint8)
    img, factor = imdecode(buf, 4), 4
    if img is None or min(img.shape[:2]) < THUMB:
        factor = 1
        img = imdecode(buf)
        if img is None:
            return None, (0, 0), None
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    size = full_size or (img.shape[1] * factor, img.shape[0] * factor)
    return normalized_thumbnail(gray), size, quality_stats(img, gray)


def normalized_thumbnail(gray: np.ndarray) -> np.ndarray:
    """THUMB×THUMB grey thumbnail, mean removed, unit norm: dot products of two are their correlation."""
    import cv2

    t = cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    t -= t.mean()
    n = float(np.linalg.norm(t))
    return t / n if n > 1e-6 else t


#: The signatures' cache: one SQLite file, written in batches (see :class:`curate.io.cache.Store`).
_STORE = cache.Store("signatures")
_FLUSH_EVERY = 512  # signatures kept before a batch write (4 KB each)


def compute_signature(record: ImageRecord, pending: list[tuple[str, bytes]] | None = None) -> Signature:
    """Read the file once: hash, sniff, check its end, decode a reduced thumbnail. Never raises.

    The cache holds what the bytes say (keyed by their hash); whether the name's extension matches them is
    decided here every time, since two files with the same bytes can have different names. A newly
    computed signature is appended to ``pending`` for a batch write (:func:`image_signatures`), or written
    at once without it.
    """
    try:
        with open(record.path, "rb") as fh:
            st, data = os.fstat(fh.fileno()), fh.read()
    except OSError as exc:
        return Signature(record.rel, "", "unreadable", f"cannot read the file: {exc.strerror}", 0, 0, 1, None)
    if not data:
        return Signature(record.rel, "", "empty", "zero-byte file", 0, 0, 1, None)
    import hashlib

    content = hashlib.blake2b(data, digest_size=16).hexdigest()
    cache.remember_hash(record.path, st, content)  # the same digest as cache.file_hash: later callers skip a read
    key = f"{content}-v{SIGNATURE_VERSION}"
    kind = image_files.sniff(data[:16])
    sig = _cached(record.rel, content, key)
    if sig is None:
        sig = _content_signature(record, data, kind, content)
        item = (key, _encode(sig))
        if pending is None:
            _STORE.put_many([item])
        else:
            pending.append(item)
    expected = _SUFFIX_KIND.get(record.path.suffix.lower())
    if sig.status == "ok" and kind and expected and kind != expected:
        sig.status, sig.detail = "wrong_extension", f"the file is {kind.upper()} but named {record.path.suffix}"
    return sig


def _content_signature(record: ImageRecord, data: bytes, kind: str | None, content: str) -> Signature:
    """Decode and check ``data`` (sniffed as ``kind``, whatever its file is named)."""
    status, detail = "ok", ""
    if record._size is not None and not _may_have_exif(data, kind):
        size, orientation = record._size, 1  # the reader read the header already, and there is no EXIF to parse
    else:
        size, orientation = _header(data)
    thumb, (w, h), quality = _thumb(data, full_size=size or record._size)
    cut = image_files.cut_short(data[:64], data[-image_files.TAIL_BYTES :], len(data))  # the reader's rule too
    if cut is not None:
        status, detail = "truncated", cut
    elif thumb is None:
        status, detail = (
            "unreadable",
            "the image cannot be decoded" + (f" (bytes say {kind})" if kind else " (not an image format)"),
        )
    orientation = orientation if thumb is not None else 1
    return Signature(record.rel, content, status, detail, w, h, orientation, thumb, quality)


def _encode(sig: Signature) -> bytes:
    """A cache value: a sound image is its thumbnail with (w, h, orientation) and its :data:`QUALITY_STATS`
    after it, as float32 bytes; the rare others a JSON line (its first byte ``{``), then their thumbnail's
    bytes if they have one."""
    if sig.status == "ok" and sig.thumb is not None and sig.quality is not None:
        head = [sig.width, sig.height, sig.orientation, *(sig.quality[k] for k in QUALITY_STATS)]
        return np.concatenate([sig.thumb.astype(np.float32), np.array(head, np.float32)]).tobytes()
    head = {
        "status": sig.status,
        "detail": sig.detail,
        "w": sig.width,
        "h": sig.height,
        "orientation": sig.orientation,
        "has_thumb": sig.thumb is not None,
        "quality": sig.quality,
    }
    tail = sig.thumb.astype(np.float32).tobytes() if sig.thumb is not None else b""
    return json.dumps(head).encode() + b"\n" + tail


def _cached(rel: str, content: str, key: str) -> Signature | None:
    """A signature computed before for these bytes (None when not cached, or cached in another shape)."""
    raw = _STORE.get(key)
    if raw is None:
        return None
    n = THUMB * THUMB
    q = len(QUALITY_STATS)
    if (
        len(raw) == (n + 3 + q) * 4
    ):  # by length, not by the first byte: a float32's can be ``{`` (1 in 80 of the sample)
        arr = np.frombuffer(raw, np.float32)
        w, h, orientation = (int(v) for v in arr[n : n + 3])
        quality = {k: float(v) for k, v in zip(QUALITY_STATS, arr[n + 3 :])}
        return Signature(rel, content, "ok", "", w, h, orientation, arr[:n].copy(), quality)
    if not raw.startswith(b"{"):
        return None
    line, _, tail = raw.partition(b"\n")
    try:
        hit = json.loads(line)
        thumb = np.frombuffer(tail, np.float32).copy() if hit["has_thumb"] else None
        if thumb is not None and thumb.shape != (n,):
            return None
        return Signature(
            rel, content, hit["status"], hit["detail"], hit["w"], hit["h"], hit["orientation"], thumb, hit["quality"]
        )
    except (ValueError, KeyError, TypeError):
        return None


def image_signatures(dataset: Dataset, *, workers: int | None = None, progress: bool = True) -> dict[str, Signature]:
    """Signatures of every image, keyed by ``record.rel``; threads, since OpenCV and hashing release the GIL.

    New signatures go to the cache in batches of :data:`_FLUSH_EVERY` from this thread.
    """
    records = dataset.images
    workers = workers or env.workers()
    out: dict[str, Signature] = {}
    pending: list[tuple[str, bytes]] = []  # list.append is atomic: the workers share it
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda rec: compute_signature(rec, pending), records, chunksize=16)
        if progress and len(records) > 50:
            from rich.progress import track

            results = track(results, total=len(records), description="hashing images", transient=True)
        for sig in results:
            out[sig.rel] = sig
            if len(pending) >= _FLUSH_EVERY:
                batch = pending[:]
                del pending[: len(batch)]  # what the workers appended meanwhile stays for the next batch
                _STORE.put_many(batch)
    _STORE.put_many(pending)
    return out


@dataclass(frozen=True)
class Pair:
    """Two images that are the same photo (``similarity`` 1.0 = identical bytes)."""

    a: str
    b: str
    similarity: float
    exact: bool


@lru_cache(maxsize=1)
def _dct_basis() -> np.ndarray:
    """(THUMB², DCT_KEEP²) orthonormal basis: the lowest DCT_KEEP × DCT_KEEP 2-D DCT frequencies of a thumbnail."""
    k = np.arange(THUMB)
    c = np.sqrt(2.0 / THUMB) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * THUMB))
    c[0] /= np.sqrt(2.0)
    return np.stack([np.outer(c[u], c[v]).ravel() for u in range(DCT_KEEP) for v in range(DCT_KEEP)], axis=1).astype(
        np.float32
    )


def _candidates(
    low: np.ndarray, rest: np.ndarray, start: int, stop: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i in [start, stop), j > i) whose correlation CAN reach ``threshold``: an upper bound, never a miss.

    A thumbnail is its low-frequency part (``low``, in the DCT basis) plus the rest, orthogonal to it, so
    a·b = low_a·low_b + rest_a·rest_b ≤ low_a·low_b + |rest_a| |rest_b| (Cauchy–Schwarz).
    """
    bound = low[start:stop] @ low[start:].T  # columns before ``start`` were paired with these rows already
    bound += rest[start:stop, None] * rest[None, start:]
    ii, jj = np.nonzero(bound >= threshold - BOUND_SLACK)
    ii += start
    jj += start
    keep = jj > ii
    return ii[keep], jj[keep]


def _correlations(mat: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """The correlation of each candidate pair (rows ``ii[k]`` and ``jj[k]`` of ``mat``), CORR_CHUNK pairs at a time.

    Why one pair at a time (numpy's einsum over the two rows) and never a block's matrix product, even where
    most of a block's pairs are candidates: a pair's similarity is then the same float whichever threshold or
    block found it, so a search at 0.80 filtered to 0.85 (:func:`at_least`) is exactly a search at 0.85; a BLAS
    product rounds its sums differently. Chunks keep the gathered rows to 2 × 32 MB.
    """
    out = np.empty(len(ii), np.float32)
    for k in range(0, len(ii), CORR_CHUNK):
        out[k : k + CORR_CHUNK] = np.einsum("ij,ij->i", mat[ii[k : k + CORR_CHUNK]], mat[jj[k : k + CORR_CHUNK]])
    return out


def near_duplicate_pairs(
    sigs: dict[str, Signature], *, threshold: float | None = None, block: int = 2048
) -> list[Pair]:
    """All pairs at or above ``threshold`` similarity, plus byte-identical files, most similar first.

    Thumbnail correlations are all-pairs, so the cost grows with the square of the images: at 20,000
    images the full 1,024-number products took 16 s. Pairs are first bounded from 64 low DCT frequencies
    (:func:`_candidates`, exact: no pair above the threshold is dropped) and only the few candidates
    (0.06 % of food-ingredients' pairs at 0.90) get their exact correlation (:func:`_correlations`).
    Still quadratic: an audit searches once, at the lowest threshold its checks ask
    (:class:`curate.audit.shared.NearDuplicatePairs`), and filters (:func:`at_least`).
    """
    threshold = NEAR_DUPLICATE_SIMILARITY if threshold is None else threshold
    pairs: dict[tuple[str, str], Pair] = {}
    by_content: dict[str, list[str]] = {}
    for rel, s in sigs.items():
        if s.content:
            by_content.setdefault(s.content, []).append(rel)
    for rels in by_content.values():
        rels = sorted(rels)
        for i in range(len(rels)):
            for j in range(i + 1, len(rels)):
                pairs[(rels[i], rels[j])] = Pair(rels[i], rels[j], 1.0, True)
    rels = sorted(r for r, s in sigs.items() if s.thumb is not None)
    if len(rels) > 1:
        mat = np.stack([sigs[r].thumb for r in rels]).astype(np.float32)
        low = mat @ _dct_basis()
        rest = np.sqrt(np.clip((mat * mat).sum(axis=1) - (low * low).sum(axis=1), 0.0, None))
        block = max(64, min(block, BLOCK_CELLS // len(rels)))  # a block's bound matrix stays ~100 MB
        for start in range(0, len(rels), block):
            stop = min(start + block, len(rels))
            ii, jj = _candidates(low, rest, start, stop, threshold)
            for i, j, s in zip(ii.tolist(), jj.tolist(), _correlations(mat, ii, jj).tolist()):
                key = (rels[i], rels[j])
                if s >= threshold and key not in pairs:
                    pairs[key] = Pair(rels[i], rels[j], float(min(s, 1.0)), False)
    return sorted(pairs.values(), key=lambda p: (-p.similarity, p.a, p.b))


def at_least(pairs: list[Pair], threshold: float) -> list[Pair]:
    """The pairs of a search at a lower threshold that a search at ``threshold`` (≤ 1) finds, in its order.

    Exact: a pair's similarity does not depend on the threshold it was found at (:func:`_correlations`), the
    candidates at a lower threshold include those at a higher one, and identical files are kept at any.
    """
    if threshold > 1.0:
        raise ValueError(f"similarity threshold {threshold} above 1: a filtered search cannot stand for it")
    return [p for p in pairs if p.exact or p.similarity >= threshold]


def groups_of(pairs: list[Pair]) -> list[list[str]]:
    """Connected components of the images that ``pairs`` join, each sorted, ordered by their first image."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        parent[find(p.a)] = find(p.b)
    groups: dict[str, list[str]] = {}
    for r in parent:
        groups.setdefault(find(r), []).append(r)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def near_duplicate_groups(
    dataset: Dataset, sigs: dict[str, Signature], *, threshold: float | None = None
) -> list[list[str]]:
    """Clusters (connected components) of near-duplicate images, for group-aware re-splitting."""
    return groups_of(near_duplicate_pairs(sigs, threshold=threshold))
