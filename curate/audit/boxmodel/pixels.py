"""Pixel features of one box from a small context patch around it (the box plus half its size on each side,
resampled to P×P; channels Lab + gradient (+ a foreground mask)): inside vs outside bands per side, an
"object-ness" map and its extent, runs and blobs.

The patch layout (P, M, B, T) is shared with :mod:`.peers`, which reads the box interior of the same patches.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

SIDES: tuple[str, ...] = ("left", "top", "right", "bottom")

P = 40  # context patch side (pixels)
M = 10  # margin on each side: the box occupies [M, P-M) in both axes
B = P - 2 * M  # box side in the patch
T = 3  # band thickness (15 % of the box side)


def image_channels(bgr: np.ndarray, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Pyramid (full, ½, ¼, ⅛) of H×W×C float32 channels: L, a, b (≈[0, 1]), gradient (, mask).

    Patches are cut from the coarsest level that still has a patch's resolution, so a big box costs
    no more than a small one.
    """
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab).astype(np.float32) / 255.0
    gx = cv2.Sobel(lab[..., 0], cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab[..., 0], cv2.CV_32F, 0, 1, ksize=3)
    # numpy, not cv2.magnitude: cv2's result differs in the last bit with the arrays' memory alignment (its vector
    # and scalar paths round differently), so one image's features changed with what the process had allocated before
    chans = [lab, np.sqrt(gx * gx + gy * gy)[..., None]]
    if mask is not None:
        m = cv2.resize(mask.astype(np.float32), (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_LINEAR)
        chans.append(m[..., None])
    level = np.concatenate(chans, axis=2)
    pyramid = [level]
    while min(level.shape[:2]) >= 2 * P and len(pyramid) < 4:
        level = cv2.resize(level, (level.shape[1] // 2, level.shape[0] // 2), interpolation=cv2.INTER_AREA)
        level = level if level.ndim == 3 else level[..., None]
        pyramid.append(level)
    return pyramid


def context_patch(pyramid: list[np.ndarray], xyxy: np.ndarray) -> np.ndarray:
    """The box plus half its size on each side, resampled to P×P; channels + valid (0 outside the image)."""
    H0, W0 = pyramid[0].shape[:2]
    x1, y1, x2, y2 = xyxy * np.array([W0, H0, W0, H0])
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    lvl = 0
    while lvl + 1 < len(pyramid) and min(bw, bh) * P / B / 2 ** (lvl + 1) >= P:
        lvl += 1
    chans = pyramid[lvl]
    H, W = chans.shape[:2]
    f = W / W0
    x1, y1, bw, bh = x1 * f, y1 * (H / H0), bw * f, bh * (H / H0)
    X1, Y1 = x1 - bw * M / B, y1 - bh * M / B
    sx, sy = bw / B, bh / B  # level pixels per patch pixel
    X2, Y2 = X1 + P * sx, Y1 + P * sy
    C = chans.shape[2]
    out = np.zeros((P, P, C + 1), np.float32)
    cx1, cy1, cx2, cy2 = max(int(round(X1)), 0), max(int(round(Y1)), 0), min(int(round(X2)), W), min(int(round(Y2)), H)
    if cx2 <= cx1 or cy2 <= cy1:
        return out
    px1, py1 = max(int(round((cx1 - X1) / sx)), 0), max(int(round((cy1 - Y1) / sy)), 0)
    px2, py2 = min(int(round((cx2 - X1) / sx)), P), min(int(round((cy2 - Y1) / sy)), P)
    if px2 <= px1 or py2 <= py1:
        return out
    crop = chans[cy1:cy2, cx1:cx2]
    interp = cv2.INTER_AREA if crop.shape[1] > px2 - px1 else cv2.INTER_LINEAR
    size = (px2 - px1, py2 - py1)
    if (
        min(crop.shape[:2]) < 2 or min(size) < 2
    ):  # a sliver at the border: nearest-neighbour sampling (cv2 mis-shapes these)
        ys = np.minimum((np.arange(size[1]) * crop.shape[0]) // size[1], crop.shape[0] - 1)
        xs = np.minimum((np.arange(size[0]) * crop.shape[1]) // size[0], crop.shape[1] - 1)
        r = crop[ys][:, xs]
        out[py1:py2, px1:px2, :4] = r[..., :4]
        if C > 4:
            out[py1:py2, px1:px2, 5] = r[..., 4]
    else:
        out[py1:py2, px1:px2, :4] = cv2.resize(crop[..., :4], size, interpolation=interp)
        if C > 4:
            out[py1:py2, px1:px2, 5] = cv2.resize(np.ascontiguousarray(crop[..., 4]), size, interpolation=interp)
    out[py1:py2, px1:px2, 4] = 1.0
    return out


def _wmean(x: np.ndarray, w: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """Valid-weighted mean; NaN where nothing is valid."""
    s = w.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, (x * w).sum(axis=axis) / np.maximum(s, 1e-9), np.nan)


def _runs(profile: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Number of separate runs above ``thr`` along the last axis (N×L profile, N thresholds)."""
    above = profile > thr[:, None]
    starts = above[:, 1:] & ~above[:, :-1]
    return above[:, 0].astype(np.float32) + starts.sum(axis=1)


def _extent(profile: np.ndarray, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First/last index above ``thr`` minus the box edges, in box units (positive = inside the box)."""
    above = profile > thr[:, None]
    any_ = above.any(axis=1)
    first = np.where(any_, above.argmax(axis=1), np.nan)
    last = np.where(any_, P - 1 - above[:, ::-1].argmax(axis=1), np.nan)
    return (first - M) / B, ((P - M - 1) - last) / B


def _blobs(obj: np.ndarray, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected blobs of the object-ness map inside the box: count (≥ 3 % of the box) and largest share."""
    n = len(obj)
    count = np.zeros(n, np.float32)
    largest = np.zeros(n, np.float32)
    inner = obj[:, M : P - M, M : P - M]
    for i in range(n):
        binary = (inner[i] > thr[i]).astype(np.uint8)
        k, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4)
        areas = stats[1:, cv2.CC_STAT_AREA] / float(B * B)
        big = areas[areas >= 0.03]
        count[i] = len(big)
        largest[i] = big.max() / max(big.sum(), 1e-6) if len(big) else 0.0
    return count, largest


def _band_slices() -> dict[str, tuple[slice, slice]]:
    """(rows, cols) of every region of the patch used below."""
    box = slice(M, P - M)
    return {
        "in_left": (box, slice(M, M + T)),
        "in_right": (box, slice(P - M - T, P - M)),
        "in_top": (slice(M, M + T), box),
        "in_bottom": (slice(P - M - T, P - M), box),
        "out_left": (box, slice(M - T, M)),
        "out_right": (box, slice(P - M, P - M + T)),
        "out_top": (slice(M - T, M), box),
        "out_bottom": (slice(P - M, P - M + T), box),
        "far_left": (box, slice(0, M - T)),
        "far_right": (box, slice(P - M + T, P)),
        "far_top": (slice(0, M - T), box),
        "far_bottom": (slice(P - M + T, P), box),
        "centre": (slice(M + B // 4, P - M - B // 4), slice(M + B // 4, P - M - B // 4)),
        "box": (box, box),
    }


def pixel_features(patches: np.ndarray, *, with_mask: bool) -> tuple[np.ndarray, list[str]]:
    """Vectorised features of N context patches (N×P×P×C) → (N×F, names)."""
    n = len(patches)
    col = patches[..., :3]
    grad = patches[..., 3]
    valid = patches[..., 4]  # channel layout from context_patch: L, a, b, grad, valid (, mask)
    regions = _band_slices()
    ring_w = valid.copy()
    ring_w[:, M : P - M, M : P - M] = 0
    mu = _wmean(col, ring_w[..., None], (1, 2))  # N×3 ring colour
    var = _wmean((col - mu[:, None, None, :]) ** 2, ring_w[..., None], (1, 2))
    sd = np.sqrt(np.nan_to_num(var, nan=0.01)) + 0.03
    mu = np.nan_to_num(mu)
    obj = np.sqrt((((col - mu[:, None, None, :]) / sd[:, None, None, :]) ** 2).sum(-1)) * valid  # N×P×P object-ness
    # a colour distance from the image's own box-free ring is a per-dataset scale: normalise by the patch's median
    names: list[str] = []
    feats: list[np.ndarray] = []

    def add(name: str, v: np.ndarray) -> None:
        names.append(name)
        feats.append(np.asarray(v, np.float32))

    means: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for key, (rs, cs) in regions.items():
        w = valid[:, rs, cs]
        means[key] = (
            _wmean(col[:, rs, cs], w[..., None], (1, 2)),
            _wmean(grad[:, rs, cs], w, (1, 2)),
            _wmean(obj[:, rs, cs], w, (1, 2)),
        )
        add(f"p_obj_{key}", means[key][2])
        add(f"p_grad_{key}", means[key][1])
        add(f"p_valid_{key}", w.mean(axis=(1, 2)))
    cen = means["centre"][0]
    for side in SIDES:
        cin, gin, oin = means[f"in_{side}"]
        cout, gout, oout = means[f"out_{side}"]
        cfar = means[f"far_{side}"][0]
        add(f"p_d_inout_{side}", np.linalg.norm(cin - cout, axis=1))
        add(f"p_d_incen_{side}", np.linalg.norm(cin - cen, axis=1))
        add(f"p_d_outcen_{side}", np.linalg.norm(cout - cen, axis=1))
        add(f"p_d_outfar_{side}", np.linalg.norm(cout - cfar, axis=1))
        add(f"p_d_infar_{side}", np.linalg.norm(cin - cfar, axis=1))
    # side-invariant summaries: the model learns "one side is continuous" without needing every orientation
    for stem in ("p_d_inout", "p_d_incen", "p_d_outcen", "p_obj_in", "p_obj_out", "p_grad_in", "p_grad_out"):
        per_side = np.stack([feats[names.index(f"{stem}_{side}")] for side in SIDES], axis=1)
        srt = np.sort(np.nan_to_num(per_side, nan=-1.0), axis=1)
        for i in range(4):
            add(f"{stem}_rank{i}", srt[:, i])
        add(f"{stem}_lr", np.abs(per_side[:, 0] - per_side[:, 2]))
        add(f"{stem}_tb", np.abs(per_side[:, 1] - per_side[:, 3]))
    # edge strength exactly on each edge line vs. the band mean
    edge = {
        "left": grad[:, M : P - M, M - 1 : M + 1].mean(axis=(1, 2)),
        "right": grad[:, M : P - M, P - M - 1 : P - M + 1].mean(axis=(1, 2)),
        "top": grad[:, M - 1 : M + 1, M : P - M].mean(axis=(1, 2)),
        "bottom": grad[:, P - M - 1 : P - M + 1, M : P - M].mean(axis=(1, 2)),
    }
    gbox = means["box"][1]
    for side in SIDES:
        add(f"p_edge_{side}", edge[side] / (np.nan_to_num(gbox) + 1e-3))
    # object-ness profiles: extent vs edges, runs (several objects side by side)
    with warnings.catch_warnings():  # a patch with no valid pixel has an all-NaN row: expected, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.nanmedian(np.where(valid > 0, obj, np.nan).reshape(n, -1), axis=1)
    scale = np.nan_to_num(scale, nan=1.0) + 1e-3
    objn = obj / scale[:, None, None]
    colp = objn[:, M : P - M, :].mean(axis=1)  # N×P column profile over the box's rows
    rowp = objn[:, :, M : P - M].mean(axis=2)
    inner = objn[:, M : P - M, M : P - M]
    peak = inner.reshape(n, -1).max(axis=1)
    for frac in (0.35, 0.6):
        thr_c = frac * colp[:, M : P - M].max(axis=1)
        thr_r = frac * rowp[:, M : P - M].max(axis=1)
        l, r = _extent(colp, thr_c)
        t, b = _extent(rowp, thr_r)
        add(f"p_ext_left_{frac}", l)
        add(f"p_ext_right_{frac}", r)
        add(f"p_ext_top_{frac}", t)
        add(f"p_ext_bottom_{frac}", b)
        ext = np.stack([l, r, t, b], axis=1)
        srt = np.sort(np.nan_to_num(ext, nan=0.0), axis=1)
        for i in range(4):
            add(f"p_ext_rank{i}_{frac}", srt[:, i])
        add(f"p_ext_shift_x_{frac}", np.abs(l - r))
        add(f"p_ext_shift_y_{frac}", np.abs(t - b))
        add(f"p_runs_col_{frac}", _runs(colp[:, M : P - M], thr_c))
        add(f"p_runs_row_{frac}", _runs(rowp[:, M : P - M], thr_r))
    # centroid of object-ness in the patch vs the box centre (box units)
    yy, xx = np.mgrid[0:P, 0:P].astype(np.float32)
    wsum = objn.sum(axis=(1, 2)) + 1e-6
    add("p_cx", ((objn * xx).sum(axis=(1, 2)) / wsum - (P - 1) / 2) / B)
    add("p_cy", ((objn * yy).sum(axis=(1, 2)) / wsum - (P - 1) / 2) / B)
    wbox = inner.sum(axis=(1, 2)) + 1e-6
    add("p_box_share", wbox / wsum)
    add("p_fill_hi", (inner > 0.5 * peak[:, None, None]).mean(axis=(1, 2)))
    count, largest = _blobs(objn, 0.5 * peak)
    add("p_blobs", count)
    add("p_blob_largest", largest)
    # coarse 5×5 object-ness grid of the whole patch: lets the model see layouts the bands miss
    grid = objn.reshape(n, 5, P // 5, 5, P // 5).mean(axis=(2, 4)).reshape(n, 25)
    for i in range(25):
        add(f"p_grid{i}", grid[:, i])
    if with_mask:
        mask = patches[..., 5]
        for key, (rs, cs) in regions.items():
            add(f"m_{key}", _wmean(mask[:, rs, cs], valid[:, rs, cs], (1, 2)))
        mcol = mask[:, M : P - M, :].mean(axis=1)
        mrow = mask[:, :, M : P - M].mean(axis=2)
        thr = np.full(n, 0.25, np.float32)
        l, r = _extent(mcol, thr)
        t, b = _extent(mrow, thr)
        for name, v in zip(("left", "right", "top", "bottom"), (l, r, t, b)):
            add(f"m_ext_{name}", v)
        add("m_runs_col", _runs(mcol[:, M : P - M], thr))
        add("m_runs_row", _runs(mrow[:, M : P - M], thr))
        mc, ml = _blobs(mask, np.full(n, 0.5, np.float32))
        add("m_blobs", mc)
        add("m_blob_largest", ml)
    return np.stack(feats, axis=1), names
