"""Background-only (and instance-only) train images made from the dataset's own photos.

Why: Ultralytics advises 0–10 % background images (no labels) to cut false positives, and backgrounds
taken from the same photos match the dataset's domain (same tables, fridges, lighting) better than
stock pictures. Every labelled object AND every salient object (U²-Net-p, :mod:`curate.vision.foreground`)
must be gone, else the model learns to ignore a real object:

1. Object mask of a train photo = its boxes (grown by a margin) ∪ U²-Net-p foreground, dilated.
2. ``crop``: the largest window (the dataset's typical aspect, at least ``BACKGROUND_MIN_CROP`` of the
   shorter side) holding at most ``BACKGROUND_MAX_LEFTOVER`` object pixels; leftovers are inpainted
   (OpenCV TELEA; ``crop+inpaint``); the window is resized to the typical image size.
3. ``inpaint``: when no window qualifies but objects cover little of the photo, the whole photo with the
   object mask inpainted.
4. Every candidate is re-run through U²-Net-p; its *residual* (share of pixels whose raw probability is
   above ``BACKGROUND_RESIDUAL_PROB``) above ``BACKGROUND_MAX_RESIDUAL`` means an object probably
   remains, and it is rejected. The raw probability is used, not the min-max normalized mask of
   :meth:`ForegroundModel.predict`: normalization always stretches the most salient speck of an empty
   scene to 1.
5. A candidate that looks like a val/test image (thumbnail correlation, :mod:`curate.vision.hashing`) is
   rejected, and train photos that are Roboflow variants or near-duplicates of a val/test image are
   never used as sources: a leak otherwise.

Sources: train only, round-robin over classes (each turn takes an unused photo holding the next class),
so backgrounds come from many photos and classes; a photo is reused only when all have been tried.

Instance-only images (``instances``): a labelled object cut out with the U²-Net-p mask inside its box,
pasted at a random scale and place on a generated background or a plain canvas, labelled with the tight
box of the pasted mask.

Modules: :mod:`.masks` (object masks, residual), :mod:`.regions` (windows, candidates), :mod:`.sources`
(source photos, val/test look-alikes), :mod:`.generate` (backgrounds, instances, the whole step) and
:mod:`.writer` (the output folder). The package exports what the command line, the pipeline and the tests
call.
"""

from curate.ops.backgrounds.generate import (
    MOSTLY_BACKGROUND,
    BackgroundError,
    BackgroundResult,
    Generated,
    backgrounds,
    make_backgrounds,
    make_instances,
)
from curate.ops.backgrounds.masks import object_mask, residual_score, saliency
from curate.ops.backgrounds.regions import blank, find_windows, make_candidates
from curate.ops.backgrounds.sources import HeldOut, roboflow_base, source_order, typical_size
from curate.ops.backgrounds.writer import contact_sheet, write_backgrounds
from curate.ops.options import BackgroundsOptions

__all__ = [
    "MOSTLY_BACKGROUND",
    "BackgroundError",
    "BackgroundResult",
    "BackgroundsOptions",
    "Generated",
    "HeldOut",
    "backgrounds",
    "blank",
    "contact_sheet",
    "find_windows",
    "make_backgrounds",
    "make_candidates",
    "make_instances",
    "object_mask",
    "residual_score",
    "roboflow_base",
    "saliency",
    "source_order",
    "typical_size",
    "write_backgrounds",
]
