"""The dataset teaches its own box checker: one shared computation behind grouped, loose and shifted.

Most boxes of a dataset are right. So we corrupt a sample of its own boxes the way real annotation errors
happen — enlarge them (loose), move them (shifted), merge same-class neighbours into their enclosing box
(grouped) — describe every box, real or corrupted, by geometry relative to its class and by pixel evidence
from a small context patch around it, and train a fast classifier (scikit-learn's
HistGradientBoostingClassifier, classes ok/loose/shifted/grouped) to tell corrupted boxes from originals.
Every real box is scored by a model trained on the *other* images only (K folds by image), so no box is
judged by a model that saw it. This adapts to each dataset's domain without pretrained weights; the
corruption ranges are broader than any benchmark's so the model learns "not like this dataset's boxes"
rather than one planted distribution.

Pixel evidence, per box, from a 2×-context patch (the box plus half its size on each side, resampled to
40×40, channels Lab + gradient (+ the U²-Net-p mask when asked)):

- per side: the band just inside the edge vs the band just outside (a tight edge separates object from
  background; a loose edge has background on both sides; a shifted box has background inside one edge and
  object outside the opposite one);
- an "object-ness" map (colour distance from the context ring) and its row/column profiles: where the
  object's extent lies relative to each edge, and how many separate runs/blobs sit inside (grouped);
- geometry: size and aspect vs the class's median, same-class boxes inside/overlapping, size vs the same
  class's other boxes in the image, border contact;
- siblings: how far the box's content (colour stats, a 4×4 L layout) is from the image's other boxes of its
  class, relative to how far those are from each other (a shifted box straddles two objects of a pile);
- class prototypes: a 5×5 grid of L and of gradient over the box, and over each half and quarter of it
  stretched to the same grid, compared with the class's mean grid over its real boxes. A box around two
  objects has halves (around four, quarters) that each look more like one whole object of the class than
  the box does; a shifted box has a layout unlike the class's (what they add: benchmarks/README.md,
  *Session 5 (…): class prototypes*);
- nearest neighbours: the same grids against the 5 nearest boxes of the class in other scenes — real boxes
  (a class that looks several ways has no useful mean), and the synthetic boxes of each kind (a planted pair
  of eggs is near the model's own two-egg merges elsewhere; what they add: benchmarks/README.md,
  *Session 7 (…): operating points, and three more features tried*).

``--fast`` (no pixels): the same kind of model on geometry features alone, boosted in numpy
(:mod:`curate.learn.boosting`: scikit-learn's import alone would cost more than the model).

Modules, in the order of the computation: :mod:`.corruptions` (the boxes to describe, real and corrupted),
:mod:`.geometry`, :mod:`.pixels` and :mod:`.peers` (the features), :mod:`.features` (every box's feature row,
cached per image), :mod:`.model` (cross-fitting and calibration), :mod:`.scores` (the result and its evidence),
:mod:`.child` (one computation per audit run, in a child process under ``--fast``), :mod:`.findings` and
:mod:`.masks` (what the grouped, background_heavy and shifted checks report). This package re-exports the
names the checks, the runner, the CLI and the tests use.
"""

from curate.audit.boxmodel.child import BOX_CHECKS, BoxModel, _model_options, shared_scores, spawn_child
from curate.audit.boxmodel.corruptions import KINDS, Query, _queries
from curate.audit.boxmodel.features import _features
from curate.audit.boxmodel.findings import BoxModelCheck, cut_sides, loose_sides
from curate.audit.boxmodel.geometry import GEOM_NAMES, ClassStats, class_stats, geometry_features
from curate.audit.boxmodel.masks import MaskJobs
from curate.audit.boxmodel.model import _classifier, _crossfit, calibrate, calibrate_heldout, score_boxes
from curate.audit.boxmodel.peers import (
    NEIGHBOUR_NAMES,
    PROTO_NAMES,
    PROTO_WIDTH,
    SIB_GRID,
    SIB_MAX,
    SIB_NAMES,
    SIB_STATS,
    neighbour_features,
    prototype_features,
    scenes,
    shape_grids,
    sibling_features,
)
from curate.audit.boxmodel.pixels import B, M, P, pixel_features
from curate.audit.boxmodel.scores import evidence

__all__ = [
    # the checks, the runner and the CLI
    "BOX_CHECKS",
    "BoxModel",
    "BoxModelCheck",
    "MaskJobs",
    "cut_sides",
    "loose_sides",
    "spawn_child",
    # the tests
    "B",
    "M",
    "P",
    "GEOM_NAMES",
    "KINDS",
    "NEIGHBOUR_NAMES",
    "PROTO_NAMES",
    "PROTO_WIDTH",
    "SIB_GRID",
    "SIB_MAX",
    "SIB_NAMES",
    "SIB_STATS",
    "ClassStats",
    "Query",
    "_classifier",
    "_crossfit",
    "_features",
    "_model_options",
    "_queries",
    "calibrate",
    "calibrate_heldout",
    "class_stats",
    "evidence",
    "geometry_features",
    "neighbour_features",
    "pixel_features",
    "prototype_features",
    "scenes",
    "score_boxes",
    "shape_grids",
    "shared_scores",
    "sibling_features",
]
