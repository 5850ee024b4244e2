"""Every default threshold and knob in one place, one commented constant per line.

A check's argument left ``None`` falls back to the value here; ``--config`` YAML overrides them by the
same keys (``checks: {grouped: {threshold: 0.6}}``). Thresholds are on each check's score in [0, 1].
"""

from __future__ import annotations

# --- thresholds: a finding is listed in findings.csv when its score >= the threshold -----------------
THRESHOLDS: dict[str, float] = {
    "format": 0.0,  # reader's format findings: always listed
    "duplicate": 0.5,  # two same-class boxes on one object
    "ambiguous": 0.5,  # different-class boxes on one object; degenerate or tiny boxes
    "border_cut": 0.0,  # note, not an error: a box cut by the image border (only slivers get one; always listed)
    "grouped": 0.5,  # one box drawn around several objects of its class
    "background_heavy": 0.5,  # loose box: the object fills little of it
    "shifted": 0.5,  # box cuts its object on one side, holds background on the other
    # the crop looks like another class. Lower than the others because its P(swap) is calibrated at
    # SWAP_ERROR_PRIOR: where the data hold more swaps than the prior it saturates near prior / their share, below
    # 0.5 (benchmarks/README.md, "What is listed: `class_inconsistent` at P(swap) ≥ 0.3, not 0.5")
    "class_inconsistent": 0.3,
    "missing": 0.5,  # a salient object no box covers (region finding)
    "objectlab": 0.5,  # cleanlab ObjectLab label-quality issue, needs --model
    "corrupt_image": 0.5,  # unreadable, truncated, zero-byte or wrongly-named image
    "exif_rotated": 0.5,  # EXIF orientation != 1: boxes drawn on the rotated view won't match
    "dark": 0.5,  # image-quality checks (curate/audit/checks/image_quality.py): 0.5 is at the cut point below
    "overexposed": 0.5,
    "blurry": 0.5,
    "low_information": 0.5,
    "odd_size": 0.5,
    "near_duplicate": 0.5,  # two images of the same photo
    "leakage": 0.5,  # a near-duplicate pair straddling train/val/test
    "dataset": 0.5,  # dataset-level notes: balance, background share, size/box-count outliers
}

# --- images ------------------------------------------------------------------------------------------
PIXEL_MAX_SIDE = 320  # pixel checks decode images of up to 640 px at this longest side (larger: vision/decode.py)
FOREGROUND_INPUT = 320  # U²-Net-p input side (its native 320; smaller is faster, coarser)

# --- geometry ----------------------------------------------------------------------------------------
# a box narrower or lower than this many pixels is degenerate: Ultralytics' augmentation drops boxes of 2 px or less
# (box_candidates, wh_thr=2); 4.0 flagged 245 legitimate 3-4 px balls of football-players
TINY_BOX_PIXELS = 2.0
DUPLICATE_IOU = 0.7  # same-class boxes overlapping at least this much are duplicate candidates
# duplicate's calibration (duplicate_probability): from this many boxes on; a synthetic duplicate's edges move by up to
# this share of the box's size (a re-drawn box; the benchmark plants copies at 0.05); the assumed share of duplicates
DUPLICATE_CALIBRATION_MIN_BOXES = 1000
DUPLICATE_JITTER = 0.1
DUPLICATE_ERROR_PRIOR = 0.02
AMBIGUOUS_IOU = 0.7  # different-class boxes overlapping at least this much are ambiguous candidates
AMBIGUOUS_BELOW_HALF_WEIGHT = (
    0.1  # an ambiguous score below 0.5 (weak evidence: mostly right boxes) is multiplied by this
)
# a label's cx, cy, w, h may lie this far outside [0, 1], as in Ultralytics' verify_image_label (the box is clipped
# to the image for the checks)
COORD_TOLERANCE = 0.01

# --- image-level -------------------------------------------------------------------------------------
BACKGROUND_SHARE_ADVICE = (0.0, 0.10)  # Ultralytics advises 0–10 % background images
MIN_INSTANCES_PER_SPLIT = 10  # a class with fewer instances in a split gets a dataset note

# --- image quality: curate/audit/checks/image_quality.py (cut points = score 0.5; cleanvision 0.3.7's defaults) --
QUALITY_DARK_P99 = 0.32  # dark: brightness of the brightest 1 % of pixels below this (cleanvision dark 0.32)
QUALITY_LIGHT_P5 = (
    0.95  # overexposed: brightness of the darkest 5 % of pixels above this (cleanvision light 0.05 on 1 - p5)
)
QUALITY_LOW_ENTROPY = 3.0  # low_information: RGB histogram entropy below this many bits (cleanvision 0.3 × 1/0.1)
QUALITY_BLUR_SHARPNESS = 10.0  # blurry: Laplacian std at 64 px below this
QUALITY_ODD_ASPECT = 0.35  # odd_size: short side / long side below this (cleanvision odd_aspect_ratio 0.35)
QUALITY_TINY_SIDE = (
    32  # odd_size: a side shorter than this many pixels (Ultralytics refuses <10; 32 px is 1/20 of imgsz 640)
)
QUALITY_ODD_SIZE_IQR = 3.0  # odd_size: √area outside the quartiles ± this × IQR (cleanvision iqr_factor 3.0) …
QUALITY_ODD_SIZE_RATIO = 2.0  # … and at least this many times off the median √area
QUALITY_ODD_SIZE_MIN_IMAGES = 20  # the dataset-relative size test needs this many images

# --- misc --------------------------------------------------------------------------------------------
SEED = 0  # every random choice in the audit is seeded from this
REPORT_WORST_N = 12  # thumbnails per check in the report

# --- report ------------------------------------------------------------------------------------------
REPORT_THUMB_SIDE = 256  # thumbnails in report.html are at most this many pixels a side
REPORT_JPEG_QUALITY = 80  # JPEG quality of embedded thumbnails (keeps a full report well under 15 MB)
REPORT_CONTACT_N = 24  # thumbnails in the "Contact sheet: top findings" grid (worst boxes over all box checks)
REPORT_VIEW_CONTEXT = 2.2  # a box thumbnail shows a square this many times the box's longer side…
REPORT_VIEW_MIN = 0.4  # …but at least this share of the image's longer side, so the context stays visible
REPORT_MASK_ALPHA = 0.55  # thumbnails of pixel-based checks dim what the foreground mask calls background this much
REPORT_PLOT_MAX_BOXES = 20000  # box-distribution plots use a seeded sample of at most this many boxes
REPORT_MD_TOP = 5  # findings per check in the report.md table
REPORT_VIEW_NAME = "audit/{check}"  # FiftyOne saved view per check, as the review step names it

# --- pixel box checks (grouped, background_heavy, shifted): curate/audit/boxmodel.py -----------------------
BOXMODEL_FOLDS = 3  # cross-fitting folds by image: no box is scored by a model that saw it
BOXMODEL_ITERATIONS = 120  # boosting iterations of each member's classifier
# models per fold, each trained on its own corrupted boxes, averaged: a bag is steadier than one model, and a
# fourth member adds less than its time (benchmarks/README.md, "Session 8 (2026-11-22): a bag of 3 box models")
BOXMODEL_MEMBERS = 3
BOXMODEL_MAX_BINS = (
    64  # histogram bins per feature (scikit-learn's 255: a tree's fixed cost is per bin, 3× slower on small data)
)
BOXMODEL_CORRUPT_SHARE = 0.5  # corrupted boxes made per kind, as a share of the real boxes
BOXMODEL_MAX_CORRUPT = 6000  # ... but at most this many per kind (time)
BOXMODEL_LOOSE_SCALE = (1.25, 2.6)  # synthetic loose boxes: per-axis scale (broader than any benchmark)
BOXMODEL_SHIFT_FRACTION = (0.2, 0.7)  # synthetic shifted boxes: move by this share of the size
BOXMODEL_GROUP_SIZE = (2, 5)  # synthetic grouped boxes merge this many same-class neighbours
BOXMODEL_GROUP_NEAR = 3.0  # ... whose centres are within this many mean box sides
BOXMODEL_ERROR_PRIOR = 0.02  # assumed share of real boxes with each error kind (score calibration)
# the missing check's final model learns from the windows of at most this many images a fit (a seeded sample of
# images above it; every image's windows are still scored): its fits grow with the images. Above every pool dataset
# and food-ingredients x4, so those learn from all their images; what the cap costs where it binds:
# benchmarks/README.md, "Session 18: bounded training rows for the fits that grow with the data"
MISSING_MAX_TRAIN_IMAGES = 10_000
SWAP_ERROR_PRIOR = 0.02  # assumed share of boxes with a swapped class (class_inconsistent's calibration; same as above)
BOXMODEL_USE_MASK = False  # add U²-Net-p mask features (≈250 ms an image the first time, then cached)
# grouped: {owncrops: one-class | auto | true | false}: the own-crop network's P(ok, loose, shifted, grouped) as four
# more box-model columns (curate/audit/boxmodel/owncrop_features.py). one-class (default): on where every box has the
# same class (potholes-road; no swaps for them to cost: benchmarks/README.md, session 29 onecls); auto: also where the
# pretrained backbone does not name the classes, where they lowered merged swapped (session 28 ownbox2)
BOXMODEL_OWNCROPS: bool | str = "one-class"

# --- rebalance / re-split: curate/ops/rebalance.py ---------------------------------------------------------
REBALANCE_POLISH_PASSES = 6  # local-search passes (single-group moves) after iterative stratification
REBALANCE_IMAGE_WEIGHT = 1.0  # weight of the image-ratio term relative to all classes together
REBALANCE_MAX_COPIES = 10  # --oversample makes at most this many copies of one train image
BOXMODEL_FAST_ITERATIONS = 30  # boosting rounds in --fast mode (geometry only; with 2 folds; numpy boosting)
BOXMODEL_FAST_DEPTH = (
    4  # tree depth of --fast's numpy boosting (curate.learn.boosting): 16 leaves at most, like the full model's 15
)
# ... its learning rate: fewer, larger steps score food's held-out synthetic boxes as well, in less time
# (benchmarks/README.md, "Session 9 (…): `--fast` without scikit-learn or matplotlib")
BOXMODEL_FAST_LEARNING_RATE = 0.2
# --fast's synthetic boxes per kind, as a share of the real boxes: fewer than the full model's for --fast's time, at
# about the same AP (the same Session 9 section)
BOXMODEL_FAST_CORRUPT_SHARE = 0.3

# --- geometry checks: duplicate / ambiguous / objectlab (helper "geometry") ---------------------------
BORDER_CUT_FRACTION = 0.35  # a border box showing < this share of its class's median extent is a sliver (score 0.5)
BORDER_CUT_MAX_SCORE = 0.75  # cap on the border-cut sliver measure (shown in the note's data, not a score)
# score of a border_cut note: the assumed share of border slivers that are real errors (a partly visible object
# should have a box)
BORDER_NOTE_SCORE = 0.02
BORDER_MIN_CLASS_BOXES = 8  # class medians for the border test need at least this many whole boxes
BORDER_TOUCH = 0.01  # a box edge within this (normalized) of the image edge touches the border
OBJECTLAB_CONF = 0.01  # Ultralytics confidence floor for the predictions fed to cleanlab's ObjectLab
BOXMODEL_MASK_TOP = 12  # foreground masks are computed for this many top flagged boxes per check (report, fg fraction)

# --- pixel checks: box model calibration (pixels2) ---
BOXMODEL_CALIBRATION_MIN = 20  # held-out corrupted (and original) boxes needed per kind to calibrate scores on them
BOXMODEL_SMALL_BOXES = 1000  # below this many real boxes the box model's confidence is shrunk (small data over-flags)
BOXMODEL_SMALL_SHRINK = 2.0  # ... by this × ln(BOXMODEL_SMALL_BOXES / boxes) logits (230 boxes: odds ÷ 19)
BOXMODEL_FEATURE_CACHE = (
    True  # cache boxes' pixel features per image content hash (a label edit recomputes only its boxes)
)
BOXMODEL_CACHE_KEEP = 200  # ... keeping at most this many no-longer-used boxes per image (other seeds, earlier edits)

# --- background / instance images: curate/ops/backgrounds/ -----------------------
BACKGROUND_FRACTION = 0.05  # default --fraction: background images added, as a share of train images
BACKGROUND_WARN_FRACTION = 0.10  # Ultralytics advises 0-10 % background images: warn above
BACKGROUND_FG_THRESHOLD = 0.3  # a source pixel with U²-Net-p (normalized) saliency above this is an object to remove
BACKGROUND_BOX_MARGIN = 0.15  # labelled boxes are grown by this share of their size (+ a few px) before removal
BACKGROUND_MIN_CROP = (
    0.35  # a crop's side is at least this share of the source's shorter side (less = too blurry when resized)
)
BACKGROUND_MAX_LEFTOVER = 0.15  # a crop may hold at most this share of object pixels (they are inpainted)
BACKGROUND_MAX_INPAINT = 0.30  # whole-image inpainting only when objects cover at most this share
BACKGROUND_RESIDUAL_PROB = 0.3  # a candidate pixel is salient when U²-Net-p's raw probability exceeds this
BACKGROUND_MAX_RESIDUAL = 0.02  # reject a candidate whose salient share exceeds this (an object probably remains)
BACKGROUND_TRIES_PER_SOURCE = 2  # candidates (different regions) tried from one source image per pass
INSTANCE_SCALE = (0.25, 0.6)  # a pasted object's longer side, as a share of the canvas's shorter side
INSTANCE_MIN_FILL = 0.15  # skip a box whose foreground mask fills less than this share of it (mask missed the object)
