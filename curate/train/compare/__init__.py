"""`curate train-and-compare BEFORE AFTER`: identical training, one fixed test set, an honest verdict.

Both datasets are normalised with :func:`save_yolo` into clean Ultralytics folders under ``OUT/data``
(copies, since Ultralytics may re-save images in place), the same model is trained on each with identical
settings, and both are evaluated on ONE test set whose labels are mapped by class NAME onto each model's
classes. By default that test set is photos neither model trained on (:func:`.data.choose_test_set`); a
``--test`` that leaks into a training set says so in the verdict line. The verdict comes from a paired
bootstrap over test images (:mod:`curate.train.bootstrap`), not from eyeballing two mAPs.

Reliability, because users lost runs: a run folder that exists and has no ``done.json`` is resumed from
``last.pt`` (started over, with a note, when a kill truncated ``last.pt`` mid-write); a NaN/inf loss stops
the run and restarts it with ``amp=False``; CUDA out-of-memory halves the batch and retries; a loss
plateau is noted with the learning rate at the time. A run killed after its training finished (Ultralytics
has stripped ``last.pt`` of its optimizer, so it cannot be resumed) is taken as finished. ``OUT`` is
resumed in place, so it is never renamed into place whole: compare.json/.md/.html are each replaced
atomically and the completion marker (:mod:`curate.io.outputs`) is removed at the start and written last.

Modules: :mod:`.settings` (what one training returns; the options are
:class:`curate.train.options.TrainOptions`), :mod:`.data` (folders and the test set), :mod:`.ground_truth` (the test
labels: audited, and a reviewed copy's), :mod:`.training` (one resumable training), :mod:`.evaluation`,
:mod:`.comparison` (all of it and its outputs). This package exports what the
command line, the pipeline and the tests call.
"""

from curate.train.compare.comparison import Comparison, compare, parse_extras, write_outputs
from curate.train.compare.data import is_segmentation, map_labels, resolve_test, seg_model_name, training_folder
from curate.train.compare.settings import CompareError, RunResult
from curate.train.compare.training import (
    checkpoint_complete,
    find_plateau,
    nan_epochs,
    read_results,
    resumable,
    train_one,
)

__all__ = [
    "CompareError",
    "Comparison",
    "RunResult",
    "checkpoint_complete",
    "compare",
    "find_plateau",
    "is_segmentation",
    "map_labels",
    "nan_epochs",
    "parse_extras",
    "read_results",
    "resolve_test",
    "resumable",
    "seg_model_name",
    "train_one",
    "training_folder",
    "write_outputs",
]
