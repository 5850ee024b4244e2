"""``curate train-and-compare``'s options: one model for the command line, the recipe's ``train-and-compare:``
stage and :func:`curate.train.compare.compare` (identical for BEFORE and AFTER).

Here and not in :mod:`curate.train.compare`, whose package imports numpy: the command line imports this model
to build its options.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import Field

from curate.core.options import Options


class TrainOptions(Options):
    """The test set, the training and the bootstrap; ``extra`` goes through to Ultralytics' ``train()``."""

    test: Optional[str] = Field(
        None,
        description="Fixed test set: a dataset (its --test-split) or a split folder of one. Default: the photos of "
        "AFTER's test split that AFTER did not train on; BEFORE trains without them.",
    )
    test_split: str = Field("test", description="Split of --test to use.")
    test_labels: Optional[str] = Field(
        None,
        description="A reviewed copy of the test set (e.g. curate export's output): both models are also scored "
        "on its corrected labels, its images matched to the test images by content or file name.",
    )
    model: str = Field("yolov8n.yaml", description="Ultralytics model: a .yaml (from scratch) or your .pt.")
    epochs: int = Field(30, ge=1, description="Training epochs of each run.")
    imgsz: int = Field(640, ge=32, description="Training and evaluation image size (pixels).")
    batch: int = Field(16, ge=1, description="Batch size (halved and retried when CUDA runs out of memory).")
    seed: int = Field(0, description="Seed of the first training and of the bootstrap.")
    seeds: int = Field(
        1, ge=1, description="Train this many seeds per side; seed variance is folded into the interval."
    )
    device: Union[str, int, None] = Field(
        None, description="cpu, 0, or 0,1 for several GPUs. Default: CUDA when available."
    )
    workers: int = Field(2, ge=0, description="Data-loader worker processes.")
    resamples: int = Field(1000, ge=100, description="Paired bootstrap resamples.")
    extra: dict[str, Any] = Field(default_factory=dict)
