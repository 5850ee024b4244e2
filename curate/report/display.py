"""How the audit report shows each check: its place in the page, its colour and what kind of picture it gets.

These are the per-check display entries that the sections, thumbnails, plots and report.md all read, kept
in one module below them so each can use them without importing the others.
"""

from __future__ import annotations

#: Checks whose evidence is the foreground mask: their thumbnails show it when ``masks`` gives one.
PIXEL_CHECKS = frozenset({"grouped", "background_heavy", "shifted", "missing"})
#: Checks whose findings name a partner image (``finding.data["partner"]``): shown side by side.
PAIR_CHECKS = frozenset({"leakage", "near_duplicate"})
#: Checks whose score is calibrated as the probability that the box is a real error of that kind (the box
#: model re-weights held-out corrupted boxes to an explicit 2 % prior per kind, curate/audit/boxmodel.py), so the
#: sum of the flagged boxes' scores is how many of them are expected to be real.
CALIBRATED_CHECKS = frozenset({"grouped", "background_heavy", "shifted"})
#: Checks shown as a table rather than pictures (a bad line or a dataset note has nothing to draw).
TABLE_CHECKS = frozenset({"format", "dataset"})

#: Order of sections and verdicts: what breaks training or evaluation first (unreadable files, bad lines,
#: split leakage), then the box errors our users found behind their bad mAP, then the rest. The first check
#: in this order with findings gets "look at these first".
CHECK_ORDER = (
    "corrupt_image",
    "format",
    "leakage",
    "grouped",
    "background_heavy",
    "shifted",
    "class_inconsistent",
    "duplicate",
    "ambiguous",
    "missing",
    "objectlab",
    "exif_rotated",
    "dark",
    "overexposed",
    "blurry",
    "low_information",
    "odd_size",
    "near_duplicate",
    "border_cut",
    "dataset",
)

#: One colour per check, used for its card, its verdict dot and the flagged box in its thumbnails.
CHECK_COLOURS = {
    "corrupt_image": "#b91c1c",
    "format": "#9f1239",
    "leakage": "#c2410c",
    "grouped": "#d97706",
    "background_heavy": "#ca8a04",
    "shifted": "#65a30d",
    "class_inconsistent": "#0d9488",
    "duplicate": "#0284c7",
    "ambiguous": "#4f46e5",
    "missing": "#c026d3",
    "objectlab": "#db2777",
    "exif_rotated": "#7c3aed",
    "dark": "#1e293b",
    "overexposed": "#a16207",
    "blurry": "#0891b2",
    "low_information": "#78716c",
    "odd_size": "#9333ea",
    "near_duplicate": "#ea580c",
    "border_cut": "#64748b",
    "dataset": "#475569",
}
