"""Every box's feature row, real and corrupted: geometry for all, and with pixels the patch features (decoded
in threads, cached on disk per image by :class:`FeatureCache`) plus the sibling, prototype and neighbour
comparisons computed from them.

Separate from :mod:`.model` because describing the boxes is most of the cost and all of the image I/O; the
model only fits and calibrates on the matrix this returns.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from curate.audit.boxmodel.corruptions import Query
from curate.audit.boxmodel.geometry import GEOM_NAMES, class_stats, geometry_features
from curate.audit.boxmodel.peers import (
    NEIGHBOUR_NAMES,
    PROTO_NAMES,
    PROTO_WIDTH,
    SIB_GRID,
    SIB_NAMES,
    SIB_STATS,
    box_descriptor,
    neighbour_features,
    prototype_features,
    scenes,
    shape_grids,
    sibling_features,
)
from curate.audit.boxmodel.pixels import P, context_patch, image_channels, pixel_features
from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord
from curate.runtime.env import workers
from curate.vision.decode import record_side
from curate.vision.foreground import read_image
from curate.vision.hashing import Pair

FEATURE_CHUNK = 48  # images per pixel-feature job (≈300 patches: 10 MB of patches in flight per thread) ...
FEATURE_ROWS = 1024  # ... and at most this many boxes per job (a dense image is cut into pieces)


def _features(
    dataset: Dataset,
    qs: list[Query],
    boxes: list[np.ndarray],
    classes: list[np.ndarray],
    *,
    pixels: bool,
    masks: dict[str, np.ndarray] | None,
    progress: bool,
    same_scene: list[Pair] | None = None,
) -> tuple[np.ndarray, list[str]]:
    from rich.progress import Progress

    nc = max(len(dataset.names), 1 + max((int(c.max()) for c in classes if len(c)), default=0))
    sizes: list[tuple[int, int]] = []
    for rec in dataset.images:
        try:
            sizes.append(rec.size if rec.labels else (1, 1))
        except Exception:
            sizes.append((1, 1))
    px = [b * np.array([w, h, w, h], float) for b, (w, h) in zip(boxes, sizes)]
    st = class_stats(px, classes, nc)
    by_image: dict[int, list[int]] = {}
    for k, q in enumerate(qs):
        by_image.setdefault(q.image, []).append(k)
    geo = np.zeros((len(qs), len(GEOM_NAMES)), np.float32)
    pix: np.ndarray | None = None
    grids = np.zeros((len(qs), 0), np.float32)
    pnames: list[str] = []
    with_mask = masks is not None
    if pixels:  # the feature names (and width) without touching an image
        pnames = pixel_features(np.zeros((1, P, P, 6 if with_mask else 5), np.float32), with_mask=with_mask)[1]
        pix = np.full((len(qs), len(pnames) + SIB_STATS + SIB_GRID), np.nan, np.float32)  # features, descriptor
        # the shape grids apart: the widest columns, needed only until the peer features are made (issue #25)
        grids = np.full((len(qs), PROTO_WIDTH), np.nan, np.float32)
    cache = FeatureCache(with_mask=with_mask) if pixels and defaults.BOXMODEL_FEATURE_CACHE else None
    todo: dict[int, list[int]] = {}  # image → query rows whose pixel features must be computed

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("box features" + (" (pixels)" if pixels else ""), total=len(by_image))
        geo[:] = geometry_features(
            np.array([q.xyxy for q in qs], float).reshape(-1, 4),
            np.array([q.cls for q in qs], int),
            np.array([q.image for q in qs], int),
            [q.exclude for q in qs],
            boxes,
            classes,
            sizes,
            st,
        )
        for i, ks in by_image.items():
            if pixels:
                todo[i] = cache.fill(i, dataset.images[i], ks, qs, pix, grids) if cache is not None else ks
            if not pixels or not todo[i]:
                bar.advance(task)

        def chunk_features(images: list[tuple[int, list[int]]]) -> tuple[list[int], np.ndarray | None]:
            """Pixel features of a chunk of (image, query rows) (decode, channels, patches, features)."""
            rows: list[int] = []
            patches: list[np.ndarray] = []
            for i, ks in images:
                rec = dataset.images[i]
                bgr = read_image(rec.path, max_side=record_side(rec))
                if bgr is not None:
                    mask = masks.get(rec.rel) if with_mask else None
                    if with_mask and mask is None:
                        mask = np.zeros(bgr.shape[:2], np.float32)
                    pyramid = image_channels(bgr, mask if with_mask else None)
                    for k in ks:
                        patches.append(context_patch(pyramid, qs[k].xyxy))
                        rows.append(k)
            if not patches:
                return rows, None
            stack = np.stack(patches)
            return rows, np.concatenate(
                [pixel_features(stack, with_mask=with_mask)[0], box_descriptor(stack), shape_grids(stack)], axis=1
            )

        # cv2 and numpy's large reductions release the GIL: a few threads use the cores (and keep memory to a
        # chunk's patches each), where one thread left half of a 2-core machine idle
        busy = [i for i in todo if todo[i]]
        chunks = feature_chunks([(i, todo[i]) for i in busy])
        with ThreadPoolExecutor(max_workers=workers()) as pool:
            for part, (rows, f) in zip(chunks, pool.map(chunk_features, chunks)):
                if f is not None:
                    pix[rows], grids[rows] = f[:, : pix.shape[1]], f[:, pix.shape[1] :]
                bar.advance(task, sum(ks[-1] == todo[i][-1] for i, ks in part))  # the images this job finished
        if cache is not None:
            cache.save(qs, pix, grids, busy)
    if pixels and pix is not None:
        sib = sibling_features(pix[:, len(pnames) :], qs, by_image, classes)
        proto = prototype_features(grids, qs)
        neigh = neighbour_features(grids, qs, scene=scenes(dataset, same_scene))
        del grids  # freed before the feature matrix is made: 450 of 636 columns (0.75 GB at 30,000 images)
        return (
            np.concatenate([geo, pix[:, : len(pnames)], sib, proto, neigh], axis=1),
            list(GEOM_NAMES) + pnames + list(SIB_NAMES) + list(PROTO_NAMES) + list(NEIGHBOUR_NAMES),
        )
    return geo, list(GEOM_NAMES)


def feature_chunks(work: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
    """The pixel-feature jobs: FEATURE_CHUNK images each, or fewer where they hold more than FEATURE_ROWS boxes to
    describe; an image with more than that is cut into pieces of FEATURE_ROWS (each piece decodes it again).

    A job holds all its patches and their intermediate arrays at once (about 300 KB a box): by images alone, one
    label file of 10,000 boxes (25,000 rows with the corrupted ones) was one job of several GB."""
    chunks: list[list[tuple[int, list[int]]]] = []
    part: list[tuple[int, list[int]]] = []
    rows = 0
    for i, ks in work:
        for n in range(0, len(ks), FEATURE_ROWS):
            piece = ks[n : n + FEATURE_ROWS]
            if part and (len(part) >= FEATURE_CHUNK or rows + len(piece) > FEATURE_ROWS):
                chunks.append(part)
                part, rows = [], 0
            part.append((i, piece))
            rows += len(piece)
    if part:
        chunks.append(part)
    return chunks


class FeatureCache:
    """Pixel features of boxes on disk, per image, keyed by the image's content hash.

    A box's pixel features depend only on the image's bytes and the box, so a re-audit after a label
    edit recomputes only the boxes that changed (the corruptions are drawn with the same seed, so they
    repeat too). One array per image: rows of (x1, y1, x2, y2, features, descriptor), boxes matched bit for bit.
    The sibling features compare descriptors across an image's boxes, so they are computed after the cache,
    never stored.
    """

    VERSION = 6  # bump when image_channels, pixel_features, box_descriptor, shape_grids or context_patch change

    def __init__(self, *, with_mask: bool) -> None:
        self.namespace = f"boxfeat-v{self.VERSION}-{defaults.PIXEL_MAX_SIDE}" + ("-mask" if with_mask else "")
        self.keys: dict[int, str] = {}  # image index → content hash (None when unreadable)
        self.images: dict[int, list[int]] = {}  # image index → query rows of that image
        self.cached: dict[int, np.ndarray] = {}

    @staticmethod
    def image_key(rec: ImageRecord) -> str:
        """The image's cache key: its content hash, and its decode side where that is not the namespace's.

        An image decoded above the pixel checks' side (:func:`~curate.vision.decode.pixel_side`: over 640 px)
        carries its side in its own key, so the namespace, and with it every cached image of up to 640 px, stays
        as it was."""
        from curate.io import cache

        key, side = cache.file_hash(rec.path), record_side(rec)
        return key if side == defaults.PIXEL_MAX_SIDE else f"{key}-{side}"

    @staticmethod
    def _rounded(xyxy: np.ndarray) -> list[tuple[int, ...]]:
        """Each box (a row of ``xyxy``, or the one box) as the bits of its four floats: the key boxes are matched by.

        Why exact, not rounded: ``context_patch`` crops at whole pixels, and where a box lies on
        whole pixels (Roboflow's exports) the crop edge lands on .5, so two boxes a few ulps apart (a label written
        and read back, a corruption computed in another order) describe different pixels. Sharing a row, they made
        it depend on which of them was described first, and a warm run differ from a cold one in every score.
        All rows at once: a numpy view, where a per-row conversion made the resize search's cache reads a Python
        loop over ~10⁵ rows."""
        return [
            tuple(r) for r in np.ascontiguousarray(np.asarray(xyxy, np.float64).reshape(-1, 4)).view(np.int64).tolist()
        ]

    def fill(
        self, i: int, rec: ImageRecord, ks: list[int], qs: list[Query], pix: np.ndarray, grids: np.ndarray
    ) -> list[int]:
        """Copy cached rows of image ``i`` into ``pix`` and ``grids``; the query rows still to compute."""
        from curate.io import cache

        self.images[i] = ks
        try:
            key = self.image_key(rec)
        except OSError:
            return ks
        self.keys[i] = key
        arr = cache.load_array(self.namespace, key)
        w = 4 + pix.shape[1]
        if arr is None or arr.ndim != 2 or arr.shape[1] != w + grids.shape[1]:
            return ks
        have = self._rounded(arr[:, :4])
        index = {key: n for n, key in enumerate(have)}
        wanted = self._rounded(np.array([qs[k].xyxy for k in ks], float))
        todo, found, at = [], [], []
        for k, key in zip(ks, wanted):
            n = index.get(key)
            if n is None:
                todo.append(k)
            else:
                found.append(k)
                at.append(n)
        if found:
            pix[found], grids[found] = arr[at, 4:w], arr[at, w:]
        if todo:  # for save(), which rewrites only the images with rows computed: the rows it keeps of the old array
            asked = set(wanted)
            extra = np.flatnonzero([key not in asked for key in have])[-defaults.BOXMODEL_CACHE_KEEP :]
            self.cached[i] = arr[extra]  # not the whole array (float64, ~5 KB a row: 0.26 GB on a 10,000-box image)
        return todo

    def save(self, qs: list[Query], pix: np.ndarray, grids: np.ndarray, computed: list[int]) -> None:
        """Write back the rows of the images in ``computed`` (those :meth:`fill` left rows to compute for;
        NaN rows — unreadable — are not kept), with up to BOXMODEL_CACHE_KEEP older rows this run didn't ask for.

        An image whose rows all came from the cache is not rewritten, even when the cache holds more rows than
        this run asked for (another seed's corruptions): a warm run wrote every image again, ~8 s on food."""
        from curate.io import cache

        for i in computed:
            key, ks = self.keys.get(i), self.images[i]
            if key is None:
                continue
            rows = self._rows(qs, pix, grids, ks, self.cached.get(i))
            try:
                cache.save_array(self.namespace, key, rows)
            except OSError:  # a read-only or full cache: features are just recomputed next time
                pass
            del rows

    def _rows(
        self, qs: list[Query], pix: np.ndarray, grids: np.ndarray, ks: list[int], old: np.ndarray | None
    ) -> np.ndarray:
        """The array :meth:`save` writes for an image: a row (x1, y1, x2, y2, features, grids) per query row of
        ``ks`` that is not all NaN (unreadable), then ``old``: the cached rows :meth:`fill` kept (the last
        BOXMODEL_CACHE_KEEP of those whose boxes this run did not ask for).

        Filled in place, a block of rows at a time: built by concatenations and a boolean filter it held four
        float64 copies of the image's rows at once (≈0.7 GB each for the resize search's 158,000 rows of one label
        file of 10,000 boxes: the 10,000-box audit's peak went from 0.93 to 1.86 GB with that search, issue #25)."""
        ks = np.asarray(ks, int)
        keep = np.ones(len(ks), bool)
        for a in range(0, len(ks), FEATURE_ROWS):
            part = ks[a : a + FEATURE_ROWS]
            keep[a : a + FEATURE_ROWS] = ~(np.isnan(pix[part]).all(axis=1) & np.isnan(grids[part]).all(axis=1))
        ks = ks[keep]
        extra = old if old is not None else np.zeros((0, 4 + pix.shape[1] + grids.shape[1]))
        w = 4 + pix.shape[1]
        rows = np.empty((len(ks) + len(extra), w + grids.shape[1]), np.float64)
        for a in range(0, len(ks), FEATURE_ROWS):
            part = ks[a : a + FEATURE_ROWS]
            rows[a : a + len(part), :4] = np.array([qs[k].xyxy for k in part], np.float64).reshape(-1, 4)
            rows[a : a + len(part), 4:w] = pix[part]
            rows[a : a + len(part), w:] = grids[part]
        rows[len(ks) :] = extra
        return rows
