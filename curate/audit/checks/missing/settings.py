"""The missing check's settings: image side, windows, folds, NMS, the shortlisting model, the budget."""

from __future__ import annotations

NAME = "missing"
SIDE = 96  # images are decoded with their longest side at least this (128 gave food the same recall, 15 % slower)
MAX_SIDE = 640  # … and at most this: larger only where the dataset's boxes need it (decode_side)
# … or, for images larger than MAX_SIDE (drone views, mosaics), at most their own long side up to this (decode_ceiling)
LARGE_MAX_SIDE = 1280
BOX_PX = 6  # the decode side is chosen so that the median box's shorter side spans at least this many pixels
SIDE_STEP = 32  # decode sides are multiples of this (a handful of cached sizes, not one per dataset)
CACHE_SIDE = 192  # decodes up to this side are cached on disk (110 KB an image at most)
SIDE_SAMPLE = 200  # images whose header sizes are read to choose the decode side
FOLDS = 3  # cross-fitting folds by image
SIZE_CLUSTERS = 5  # dataset box sizes (k-means on log w, log h) tried in every image
OWN_SIZES = 4  # at most this many of the image's own box sizes
SMALL_COMMON = 0.3  # common sizes below this share of the image's smallest box area are not tried there
STRIDE = 0.5  # sliding-window stride, a fraction of the window's side
# windows are at least this many pixels (at the decode side): at 6 a traffic sign 5 × 8 px at its 224-px decode got
# a widened window at IoU 0.55 at best, cut by the image's cap (benchmarks/README.md, Session 21, branch `misssmall`)
MIN_WINDOW_PX = 5
TINY_AREA = 1.0  # sizes under this share of MIN_WINDOW_PX² get no windows (distinct_sizes)
SIZE_MERGE = 0.25  # window sizes within this in log w and log h of a tried one are not tried again
NEG_PER_IMAGE = 20  # random uncovered windows per image as negatives (half of them touching a box)
JITTERS = 1  # jittered copies of each box as extra positives (a grid window never fits exactly)
COVER_IOU = 0.2  # a window overlapping an existing box this much is covered
COVER_INSIDE = 0.5  # … or lying this much inside one
NMS_IOU = 0.3  # regions overlapping a better one this much are the same finding
NMS_INSIDE = 0.5  # … or with this share of either inside the other (grid windows half a window apart)
MAX_PER_IMAGE = 3  # region findings per image of up to CAP_AREA pixels and CAP_BOXES boxes (image_cap: more above)
CAP_AREA = 640 * 640  # the pool's largest photos, which MAX_PER_IMAGE was sized on
CAP_BOXES = 30  # the pool's photos hold 10–30 boxes: MAX_PER_IMAGE regions for up to this many
CAP_SCALE = 16  # an image's cap is at most this many times MAX_PER_IMAGE (a 40-megapixel photo: 48, not 300)
ITER1, ITER2 = 25, 60  # boosting iterations of the shortlisting and the final model
SEED_IMAGES = 300  # images the shortlisting model is fitted on
TOPK = 12  # shortlisted windows per image (scaled as the image's cap: 4 a region kept)
HARD = 6  # of which this many (after NMS) become hard negatives
CHUNK = 64  # images per batch of features and predictions
SHORTLIST_ROWS = 200_000  # candidate windows per shortlisting prediction (scikit-learn copies them as float64)
HELD_BYTES = 256 * 2**20  # candidate-window features held while the shortlisting model waits for its images
BUDGET_PER_100 = 8  # at most this many regions per 100 labelled boxes reach 0.5 (budget_midpoint); target ≤ 10
MIN_BOXES = 100  # fewer labelled boxes than this teach no objectness (a 14-image toy set gave folds that learned noise)
