"""The options of the three dataset operations, ``curate export``, ``curate rebalance`` and ``curate
backgrounds``: one model each for the command line, the recipe's stage and the library call.

Why here and not inside :mod:`curate.ops.rebalance` or :mod:`curate.ops.backgrounds`: the command line imports
these models to build its options, and those modules import numpy and OpenCV; the parsers the validators use
are imported when a model is validated.
"""

from __future__ import annotations

import re
from typing import Literal, Optional, Union

from pydantic import Field, field_validator

from curate.core import defaults
from curate.core.options import Options


class ExportOptions(Options):
    """Where the review is read from, and whether the audit's proposals are applied without a reviewer."""

    from_fiftyone: Optional[str] = Field(
        None,
        description="Export the review held in this FiftyOne dataset (a dated copy kept by a rebuild). "
        "Default: the dataset's own.",
    )
    accept_proposals: bool = Field(
        False,
        description="Also apply every audit proposal at or above --min-confidence that the reviewer did not reject "
        "(no human needed).",
    )
    min_confidence: float = Field(0.9, ge=0.0, le=1.0, description="The bar for --accept-proposals.")

    @property
    def proposal_bar(self) -> float | None:
        """The confidence at which proposals are applied; None: not applied."""
        return self.min_confidence if self.accept_proposals else None


def _reason(exc: Exception, option: str, value: object) -> str:
    """A parser's message without its ``--option 'value': `` prefix (the field is named by the caller)."""
    return str(exc).removeprefix(f"{option} {value!r}: ").removeprefix(f"{option}: ")


class RebalanceOptions(Options):
    """Class surgery, the split and train-only rebalancing, with the names of ``curate rebalance``'s options."""

    split: str = Field(
        "80/10/10", description="Train/val/test percentages summing to 100, or 2 ratios for train/val only."
    )
    seed: int = Field(defaults.SEED, description="Seed of every random choice: same seed, same output.")
    keep_classes: Union[str, list[str], None] = Field(
        None, description="Keep only these classes (comma-separated names)."
    )
    drop_class: list[str] = Field(default_factory=list, description="Drop this class (repeatable).")
    merge: Union[list[str], dict[str, str]] = Field(
        default_factory=list, description="SRC=DST: relabel SRC boxes as DST (repeatable)."
    )
    min_instances: int = Field(0, ge=0, description="Drop classes with fewer instances than this (after merges).")
    empty_images: Literal["keep", "drop"] = Field(
        "keep", description="Images left with no boxes: keep (as background) or drop."
    )
    cap: Optional[int] = Field(
        None, ge=1, description="Train only: at most N instances of a class (drops images, rare classes spared)."
    )
    oversample: Union[Literal["median"], int, None] = Field(
        None, description="Train only: repeat images of rare classes up to TARGET instances ('median' or a number)."
    )
    group_by: Optional[str] = Field(
        None, description="REGEX on file names: images with the same first capture group stay in one split."
    )
    near_duplicates: bool = Field(True, description="Keep near-duplicate images (perceptual hashes) in one split.")

    @field_validator("split")
    @classmethod
    def _ratios(cls, v: str) -> str:
        from curate.ops.rebalance.options import RebalanceError, parse_ratios

        try:
            parse_ratios(str(v))
        except RebalanceError as exc:
            raise ValueError(_reason(exc, "--split", str(v))) from None
        return str(v)

    @field_validator("keep_classes")
    @classmethod
    def _keep(cls, v: Union[str, list[str], None]) -> Union[str, list[str], None]:
        from curate.ops.rebalance.options import RebalanceError, parse_names

        if isinstance(v, str):
            try:
                parse_names(v)
            except RebalanceError as exc:
                raise ValueError(_reason(exc, "--keep-classes", v)) from None
        return v

    @field_validator("merge")
    @classmethod
    def _merge(cls, v: Union[list[str], dict[str, str]]) -> Union[list[str], dict[str, str]]:
        from curate.ops.rebalance.options import RebalanceError, parse_merge

        if isinstance(v, list):
            for item in v:
                try:
                    parse_merge([item])
                except RebalanceError as exc:
                    raise ValueError(_reason(exc, "--merge", item) + f" (got {item!r})") from None
        return v

    @field_validator("oversample", mode="before")
    @classmethod
    def _target(cls, v: object) -> object:
        if v is None or v == "median" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            return v
        if isinstance(v, str) and v.isdigit() and int(v) >= 1:
            return int(v)
        raise ValueError("expected 'median' or a positive instance count")

    @field_validator("group_by")
    @classmethod
    def _pattern(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return v

    @property
    def ratios(self) -> tuple[float, ...]:
        """``split`` as shares: ``"80/10/10"`` → ``(0.8, 0.1, 0.1)``."""
        from curate.ops.rebalance.options import parse_ratios

        return parse_ratios(self.split)

    @property
    def keep(self) -> list[str] | None:
        """The classes to keep (None: all)."""
        from curate.ops.rebalance.options import parse_names

        return self.keep_classes if not isinstance(self.keep_classes, str) else parse_names(self.keep_classes)

    @property
    def merges(self) -> dict[str, str]:
        """``merge`` as ``{source class: target class}``."""
        from curate.ops.rebalance.options import parse_merge

        return dict(self.merge) if isinstance(self.merge, dict) else parse_merge(self.merge)


class BackgroundsOptions(Options):
    """How many background-only and instance-only train images to add."""

    fraction: float = Field(
        defaults.BACKGROUND_FRACTION,
        ge=0.0,
        le=1.0,
        description="Background images to add, as a share of train images (Ultralytics advises 0-0.10).",
    )
    instances: int = Field(
        0, ge=0, description="Also add N instance-only images (one object pasted on a background or plain canvas)."
    )
    seed: int = Field(defaults.SEED, description="Seed of every random choice: same seed, same output.")
