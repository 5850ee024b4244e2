"""Every default threshold and knob in one place, one commented constant per line.

A check's argument left ``None`` falls back to the value here; ``--config`` YAML overrides them by the
same keys (``checks: {grouped: {threshold: 0.6}}``). Thresholds are on each check's score in [0, 1].
"""

from __future__ import annotations

# --- thresholds: a finding is listed in findings.csv when its score >= the threshold -----------------
THRESHOLDS: dict[str, float] = {
    "format": 0.0,  # reader's format findings: always listed
    "duplicate": 0.5,  # two same-class boxes on one object
    "ambiguous": 0.5,  # different-class boxes on one object; degenerate, tiny or border-cut boxes
    "grouped": 0.5,  # one box drawn around several objects of its class
    "background_heavy": 0.5,  # loose box: the object fills little of it
    "shifted": 0.5,  # box cuts its object on one side, holds background on the other
    "class_inconsistent": 0.5,  # the crop looks like another class
    "missing": 0.5,  # a salient object no box covers (region finding)
    "objectlab": 0.5,  # cleanlab ObjectLab label-quality issue, needs --model
    "corrupt_image": 0.5,  # unreadable, truncated, zero-byte or wrongly-named image
    "exif_rotated": 0.5,  # EXIF orientation != 1: boxes drawn on the rotated view won't match
    "near_duplicate": 0.5,  # two images of the same photo
    "leakage": 0.5,  # a near-duplicate pair straddling train/val/test
    "dataset": 0.5,  # dataset-level notes: balance, background share, size/box-count outliers
}

# --- images ------------------------------------------------------------------------------------------
PIXEL_MAX_SIDE = 320  # pixel checks work on images decoded with their longest side at most this
FOREGROUND_INPUT = 320  # U²-Net-p input side (its native 320; smaller is faster, coarser)

# --- geometry ----------------------------------------------------------------------------------------
TINY_BOX_PIXELS = 4.0  # a box narrower or lower than this many pixels is degenerate
DUPLICATE_IOU = 0.7  # same-class boxes overlapping at least this much are duplicate candidates
AMBIGUOUS_IOU = 0.7  # different-class boxes overlapping at least this much are ambiguous candidates
BORDER_TOLERANCE = 0.005  # coordinates this far outside [0, 1] are tolerated (clipped), not flagged

# --- image-level -------------------------------------------------------------------------------------
BACKGROUND_SHARE_ADVICE = (0.0, 0.10)  # Ultralytics advises 0–10 % background images
MIN_INSTANCES_PER_SPLIT = 10  # a class with fewer instances in a split gets a dataset note

# --- misc --------------------------------------------------------------------------------------------
SEED = 0  # every random choice in the audit is seeded from this
REPORT_WORST_N = 12  # thumbnails per check in the report
