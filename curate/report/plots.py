"""The audit report's plots: class balance per split, the boxes' geometry and the findings per class.

Why a module of its own: the dataset's plots depend on the labels alone, so they are drawn in a child process
(:mod:`curate.runtime.worker`, target ``curate.report.plots:dataset_plots``) while the checks run, and cached by
their inputs; only the findings-per-class chart is drawn at the end of the audit.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from curate.core import defaults
from curate.core.dataset import SPLITS, Dataset, LabelLookup
from curate.core.findings import Finding
from curate.report.display import CHECK_COLOURS, CHECK_ORDER, TABLE_CHECKS

SPLIT_COLOURS = {"train": "#2563eb", "val": "#f59e0b", "test": "#10b981"}


@dataclass
class Bar:
    """One row of an HTML bar chart: a label and its segments (check, count, colour, share of the widest row)."""

    label: str
    segments: list[tuple[str, int, str, float]]


@dataclass
class Plot:
    """A figure of the report: a PNG (``uri``) or an HTML bar chart (``bars`` and its ``legend``)."""

    key: str
    title: str
    caption: str
    uri: str = ""
    wide: bool = False
    bars: list[Bar] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (check, colour)


def _png_uri(fig: Any) -> str:
    """The figure as a PNG data URI, with the margins the figure set (``tight_layout`` cost ~0.2 s a figure)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# bump when a plot's drawing changes: cached plots are keyed by their inputs and this (2: two cache entries; 3: class
# distribution as HTML bars, geometry and correlogram in one figure)
PLOTS_VERSION = 3


def _cached_plots(key: str) -> list[Plot] | None:
    from curate.io import cache

    hit = cache.load_json("plots", key)
    if isinstance(hit, list) and all(isinstance(p, dict) for p in hit):
        try:
            return [_plot_from_json(p) for p in hit]
        except (TypeError, ValueError):  # a cached entry of another shape: draw again
            return None
    return None


def _plot_from_json(row: dict[str, Any]) -> Plot:
    """A :class:`Plot` read back from its JSON (bars and their segments as the dataclass and tuples they were)."""
    bars = [Bar(b["label"], [tuple(seg) for seg in b["segments"]]) for b in row.get("bars", [])]
    return Plot(**{**row, "bars": bars, "legend": [tuple(x) for x in row.get("legend", [])]})


def _save_plots(key: str, plots: list[Plot]) -> None:
    from curate.io import cache

    try:
        cache.save_json("plots", key, [asdict(p) for p in plots])
    except OSError:  # a read-only or full cache: drawn again next time
        pass


def _box_array(dataset: Dataset) -> np.ndarray:
    return np.array([(lab.cx, lab.cy, lab.w, lab.h) for _, lab in dataset.boxes()], dtype=np.float32).reshape(-1, 4)


def dataset_plots_key(dataset: Dataset) -> str:
    """Cache key of :func:`dataset_plots`: every box with its class and split, the class names and splits."""
    h = hashlib.blake2b(digest_size=16)
    h.update(
        json.dumps(
            [PLOTS_VERSION, defaults.REPORT_PLOT_MAX_BOXES, dataset.names, dataset.splits], sort_keys=True
        ).encode()
    )
    h.update(_box_array(dataset).tobytes())
    h.update(
        np.array(
            [(lab.class_id, SPLITS.index(rec.split) if rec.split in SPLITS else -1) for rec, lab in dataset.boxes()],
            np.int64,
        ).tobytes()
    )
    return h.hexdigest()


GEOMETRY_TITLE = "Box positions and sizes"
GEOMETRY_LEFT_OUT = (
    "Drawn by the full audit (curate audit without --fast): --fast leaves out matplotlib, ~1.5 s of a core. "
    "Once drawn it is cached, and --fast shows it too."
)


def dataset_plots(dataset: Dataset, *, geometry: bool = True) -> list[Plot]:
    """Class balance per split (HTML bars) and the boxes' geometry (one PNG, like Ultralytics' labels.jpg
    and labels_correlogram.jpg in one figure).

    They depend on the labels alone, not on the findings, so :func:`start_dataset_plots` can draw them in
    a second process while the checks run. Cached by their inputs: drawing and PNG-encoding the geometry
    is most of a re-run with nothing changed. ``geometry=False`` (``--fast``) leaves the matplotlib figure
    out unless it is cached: its import and drawing cost ~1.5 s of a core, a quarter of ``--fast``'s CPU on
    food-ingredients.
    """
    key = dataset_plots_key(dataset)
    hit = _cached_plots(key)
    if hit is not None:
        return hit
    if not geometry:  # --fast: the bars need no matplotlib; nothing cached, so a full audit draws them all
        return [plot_class_distribution(dataset), Plot("box_geometry", GEOMETRY_TITLE, GEOMETRY_LEFT_OUT)]
    boxes = _box_array(dataset)
    if len(boxes) > defaults.REPORT_PLOT_MAX_BOXES:
        rng = np.random.default_rng(defaults.SEED)
        boxes = boxes[rng.choice(len(boxes), defaults.REPORT_PLOT_MAX_BOXES, replace=False)]
    plots = [plot_class_distribution(dataset), plot_box_geometry(boxes)]
    _save_plots(key, plots)
    return plots


def start_dataset_plots(dataset: Dataset):
    """Draw :func:`dataset_plots` in a child process (:mod:`curate.runtime.worker`) while this one runs the checks.

    Why: they take 1.5–3 s of one core (matplotlib's import, text layout, PNG encoding), and at the end of
    an audit the report is the only work left, so the other core sat idle. None when they are cached
    already or there is one core (a second process gains nothing there).
    """
    from curate.io import cache
    from curate.runtime import worker

    if not worker.worth_it() or cache.has("plots", dataset_plots_key(dataset), "json"):
        return None
    return worker.try_call(
        worker.try_spawn("curate.report.plots"), "curate.report.plots:dataset_plots", dataset
    )  # None: drawn here


def make_plots(
    dataset: Dataset, findings: list[Finding], lookup: LabelLookup, *, drawing=None, geometry: bool = True
) -> list[Plot]:
    """The dataset's plots (from ``drawing``, a :func:`start_dataset_plots` job, when it succeeded) and the
    findings per class (an HTML chart: no matplotlib in this process when the dataset's plots came from
    the child or the cache)."""
    plots = None
    if drawing is not None:
        try:
            plots = drawing.result()
        except Exception:  # noqa: BLE001 — the child failed (killed, broken install…): draw them here
            plots = None
    plots = list(plots if plots is not None else dataset_plots(dataset, geometry=geometry))
    return (
        plots[:1] + [plot_findings_per_class(dataset, findings, lookup)] + plots[1:]
    )  # the two bar charts side by side


def plot_class_distribution(dataset: Dataset) -> Plot:
    """Boxes per class, stacked by split, as HTML bars (label: class id, name and boxes), in class-id order.

    HTML, not a PNG: a categorical count reads best as text beside its bar, and a PNG of 36 rotated class
    names cost ~0.5 s of matplotlib per audit.
    """
    splits = dataset.splits or list(SPLITS[:1])
    nc = max(len(dataset.names), 1)
    counts = {s: np.zeros(nc, int) for s in splits}
    for rec, lab in dataset.boxes():
        if 0 <= lab.class_id < nc and rec.split in counts:
            counts[rec.split][lab.class_id] += 1
    totals = sum(counts.values())
    widest = max(int(totals.max()), 1)
    bars = [
        Bar(
            f"{c} {dataset.class_name(c)} ({int(totals[c]):,})",
            [
                (s, int(counts[s][c]), SPLIT_COLOURS.get(s, "#334155"), counts[s][c] / widest)
                for s in splits
                if counts[s][c]
            ],
        )
        for c in range(nc)
    ]
    legend = [(f"{s} ({int(counts[s].sum()):,})", SPLIT_COLOURS.get(s, "#334155")) for s in splits]
    missing = sorted(
        {dataset.class_name(c) for c in range(len(dataset.names)) for s in splits if s != "train" and counts[s][c] == 0}
    )
    caption = "Boxes per class, stacked by split (hover a bar for its count)."
    if missing:
        caption += (
            f" {len(missing)} class(es) absent from val or test: "
            + ", ".join(missing[:8])
            + ("…" if len(missing) > 8 else ".")
        )
    return Plot("class_distribution", "Class distribution per split", caption, bars=bars, legend=legend)


def _hist_panel(ax: Any, values: np.ndarray, colour: str) -> None:
    """A 40-bin histogram on [0, 1] as one filled step patch (``ax.hist`` draws a patch per bin)."""
    counts, edges = np.histogram(values, bins=40, range=(0, 1))
    ax.stairs(counts, edges, fill=True, color=colour)
    ax.set_xlim(0, 1)
    ax.set_yticks([])


def _hist2d_panel(ax: Any, x: np.ndarray, y: np.ndarray) -> None:
    """A 40×40 2D histogram on the unit square as one image, log colour scale, empty cells blank.

    ``imshow`` of a precomputed histogram: ``hist2d``'s mesh of 1,600 cells renders several times slower.
    """
    from matplotlib.colors import LogNorm

    h, _, _ = np.histogram2d(y, x, bins=40, range=[[0, 1], [0, 1]])
    h = np.ma.masked_less(h, 1)
    if h.count():
        ax.imshow(
            h,
            origin="lower",
            extent=(0, 1, 0, 1),
            cmap="Blues",
            norm=LogNorm(vmin=1, vmax=max(float(h.max()), 1.0)),
            aspect="auto",
            interpolation="nearest",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


def _shapes_panel(ax: Any, boxes: np.ndarray) -> None:
    """Up to 1,000 boxes drawn from the image's centre (Ultralytics' labels.jpg): one line collection."""
    from matplotlib.collections import LineCollection

    rng = np.random.default_rng(defaults.SEED)
    sample = boxes[rng.choice(len(boxes), min(len(boxes), 1000), replace=False)]
    alpha = float(np.clip(40 / max(len(sample), 1), 0.06, 0.5))  # lines stay readable for 10 or 1,000 boxes
    x1, x2 = 0.5 - sample[:, 2] / 2, 0.5 + sample[:, 2] / 2
    y1, y2 = 0.5 - sample[:, 3] / 2, 0.5 + sample[:, 3] / 2
    outlines = np.stack(
        [
            np.stack([x1, y1], 1),
            np.stack([x2, y1], 1),
            np.stack([x2, y2], 1),
            np.stack([x1, y2], 1),
            np.stack([x1, y1], 1),
        ],
        1,
    )
    ax.add_collection(LineCollection(outlines, linewidths=0.5, alpha=alpha, colors="#1e3a8a"))
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_title("box shapes (centred)", fontsize=9)
    ax.tick_params(labelsize=7)


def plot_box_geometry(boxes: np.ndarray) -> Plot:
    """Box centres and sizes: x, y, width and height against each other (Ultralytics'
    labels_correlogram.jpg, without seaborn), their histograms on the diagonal, and the box shapes drawn
    from the centre (its labels.jpg) in the free upper corner — one figure, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("x", "y", "width", "height")
    fig = plt.figure(figsize=(8, 8))
    grid = fig.add_gridspec(4, 4, hspace=0.12, wspace=0.12, left=0.08, right=0.98, bottom=0.07, top=0.97)
    for i in range(4):
        for j in range(i + 1):
            ax = fig.add_subplot(grid[i, j])
            if len(boxes) and i == j:
                _hist_panel(ax, boxes[:, j], "#2563eb")
            elif len(boxes):
                _hist2d_panel(ax, boxes[:, j], boxes[:, i])
            if i == 3:
                ax.set_xlabel(names[j])
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
            elif i != j:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    if len(boxes):
        _shapes_panel(fig.add_subplot(grid[0:2, 2:4]), boxes)
    return Plot(
        "box_geometry",
        GEOMETRY_TITLE,
        f"{len(boxes):,} boxes, normalized to the image; 2D histograms on a log colour scale.",
        _png_uri(fig),
        wide=True,
    )


def findings_per_class(findings: list[Finding], lookup: LabelLookup) -> dict[str, Counter]:
    """check → class name → flagged boxes (box findings only)."""
    per: dict[str, Counter] = defaultdict(Counter)
    for f in findings:
        if f.line is None or f.check in TABLE_CHECKS:
            continue
        name = lookup.class_name(f)
        if name:
            per[f.check][name] += 1
    return per


def plot_findings_per_class(dataset: Dataset, findings: list[Finding], lookup: LabelLookup, *, top: int = 30) -> Plot:
    """Flagged boxes per class, stacked by check, as HTML bars (label: flagged / boxes of the class).

    HTML, not a PNG: it is the one plot that depends on the findings, so it is drawn at the very end of
    the audit, and matplotlib's import and layout cost this process ~1 s there, while the dataset's plots
    are drawn in a second process during the checks (:func:`start_dataset_plots`).
    """
    per = findings_per_class(findings, lookup)
    totals: Counter = Counter()
    for c in per.values():
        totals.update(c)
    classes = [name for name, _ in totals.most_common(top)]
    box_counts = dataset.instance_counts(by_name=True)
    checks = sorted(per, key=lambda c: CHECK_ORDER.index(c) if c in CHECK_ORDER else 99)
    widest = max([totals[c] for c in classes], default=1)
    bars = [
        Bar(
            f"{c} ({totals[c]}/{box_counts.get(c, 0)})",
            [(k, per[k][c], CHECK_COLOURS.get(k, "#334155"), per[k][c] / widest) for k in checks if per[k][c]],
        )
        for c in classes
    ]
    legend = [(k, CHECK_COLOURS.get(k, "#334155")) for k in checks]
    caption = f"Flagged boxes per class and check (label: flagged / boxes of the class); top {top} classes."
    if not classes:
        caption = "No box findings."
    return Plot("findings_per_class", "Findings per class", caption, bars=bars, legend=legend)


#: BEFORE in grey, AFTER in blue: the side a reader looks for stands out.
SIDE_COLOURS = {"before": "#6b7280", "after": "#2563eb"}


def training_curves(curves: dict[str, dict]) -> dict[str, str]:
    """The training curves of BEFORE and AFTER (``curves``: side → :func:`curate.train.compare.training_curve`),
    as two PNG data URIs: ``loss`` (total train loss solid, val loss dashed) and ``mAP50-95`` (on each side's val
    split) over epochs, both sides on one plot each; a dotted line where a loss plateau starts, a red cross on an
    epoch whose loss was NaN/inf.

    Why one plot per metric with both sides rather than Ultralytics' results.png per side: whether AFTER learns
    faster, further or not at all is read from two curves on the same axes, not from two grids of ten.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = {}
    for key, title in (("loss", "loss (box + cls + dfl)"), ("mAP50-95", "val mAP50-95")):
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=0.16)
        for side, c in curves.items():
            colour, epochs = SIDE_COLOURS.get(side, "#334155"), c.get("epoch", [])
            series = [("train_loss", "-", "train"), ("val_loss", "--", "val")] if key == "loss" else [(key, "-", "")]
            for col, style, what in series:
                y = [np.nan if v is None else v for v in c.get(col, [])]
                dots = "o" if len(epochs) <= 30 else None  # each epoch a dot while they stay apart
                ax.plot(epochs, y, style, marker=dots, ms=3, color=colour, label=f"{side.upper()} {what}".strip())
            if c.get("plateau"):
                ax.axvline(c["plateau"], color=colour, ls=":", lw=1)
                ax.annotate("plateau", (c["plateau"], 1), xycoords=("data", "axes fraction"), fontsize=7,
                            color=colour, ha="left", va="top")  # fmt: skip
            if c.get("nan"):
                ax.plot(c["nan"], [0] * len(c["nan"]), "x", color="#cf222e", ms=8, label=f"{side.upper()} NaN loss")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        last = max((max(c.get("epoch") or [1]) for c in curves.values()), default=1)
        ax.set_xlim(0.5, last + 0.5)  # whole epochs, a 1-epoch run included
        ax.legend(fontsize=7, frameon=False)
        out[key] = _png_uri(fig)
    return out
