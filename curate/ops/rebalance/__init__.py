"""Class surgery, train-only rebalancing and a leak-free, multi-label stratified re-split.

Why not a random split (Ultralytics ``autosplit``, FiftyOne ``random_split``): Roboflow exports hold
augmented variants of one photo (``name_jpg.rf.<hash>``) and users collect near-duplicate frames, so a
random split puts copies of one photo in train *and* test and the test mAP is inflated. Here images are
first joined into groups (near-duplicate clusters, Roboflow variants, a user pattern — union-find), and
whole groups are assigned to splits by iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011)
over their class counts, then polished by a few passes of single-group moves. Rebalancing (``cap``,
``oversample``) happens after the split and only in train, so val/test keep the real class mix.

Everything here is pure over :class:`~curate.core.dataset.Dataset` objects (inputs are never mutated); only
:func:`write_rebalanced` touches the disk, through :func:`curate.io.yolo.save_yolo` into a new folder.

Modules, in the order the command uses them (its options model is
:class:`curate.ops.options.RebalanceOptions`): :mod:`.options` (parsing, the one error type), :mod:`.classes`
(class surgery), :mod:`.groups` (images that must share a split), :mod:`.split` (the stratified re-split),
:mod:`.sampling` (train-only cap and oversampling), :mod:`.command` (all of it, its summary and its writer).
This package exports what the command line and the recipe pipeline call.
"""

from curate.ops.options import RebalanceOptions
from curate.ops.rebalance.command import RebalanceResult, rebalance, write_rebalanced
from curate.ops.rebalance.options import RebalanceError, parse_merge, parse_names, parse_ratios

__all__ = [
    "RebalanceError", "RebalanceOptions", "RebalanceResult", "parse_merge", "parse_names", "parse_ratios",
    "rebalance", "write_rebalanced",
]  # fmt: skip
