"""What the box model returns (:class:`BoxScores`: every real box's scores per kind and its features), and the
readable evidence behind a box's scores that the checks put in their messages and finding data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.audit.boxmodel.pixels import SIDES
from curate.core.dataset import ImageRecord


@dataclass
class BoxScores:
    """Scores of every real box for each kind, plus evidence for messages; keyed by (rel, line)."""

    index: dict[tuple[str, int], int]
    records: list[tuple[ImageRecord, int]]  # (record, label index) per row
    scores: dict[str, np.ndarray]  # kind → score in [0, 1] per row
    prob: np.ndarray  # N×4 out-of-fold class probabilities (ok, loose, shifted, grouped)
    features: np.ndarray
    names: list[str]
    method: str  # "pixels", "pixels+u2netp", "pixels+grabcut", "geometry"
    seconds: dict[str, float] = field(default_factory=dict)
    _evidence: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    def evidence(self, row: int) -> dict[str, Any]:
        """:func:`evidence` of a row, computed once for the three box checks that each describe every box."""
        if row not in self._evidence:
            self._evidence[row] = evidence(self, row)
        return self._evidence[row]

    def value(self, row: int, name: str) -> float:
        try:
            return float(self.features[row, self.names.index(name)])
        except ValueError:
            return float("nan")


def evidence(bs: BoxScores, row: int) -> dict[str, Any]:
    """Readable numbers behind a box's scores: per-side object extent, background share, blobs, size."""
    v = bs.value
    ev: dict[str, Any] = {
        "method": bs.method,
        "area_vs_class": round(float(np.exp(v(row, "g_loga"))), 2),
        "same_class_inside": int(v(row, "g_n_same_in")),
        "p_ok": round(float(bs.prob[row, 0]), 3),
    }
    if bs.method != "geometry" and not np.isnan(v(row, "p_blobs")):  # NaN: the image could not be decoded
        # positive extent = the object ends that far inside the edge (background band); negative = it goes past
        ext = {s: v(row, f"p_ext_{s}_0.35") for s in SIDES}
        ev["side_extent"] = {s: (None if np.isnan(x) else round(float(x), 2)) for s, x in ext.items()}
        e = {s: (0.0 if np.isnan(x) else float(np.clip(x, 0.0, 0.5))) for s, x in ext.items()}
        ev["background_share"] = round(1.0 - (1 - e["left"] - e["right"]) * (1 - e["top"] - e["bottom"]), 2)
        ev["blobs"] = int(v(row, "p_blobs"))
        # centroid of object-ness in the context patch relative to the box centre, in box sizes
        ev["object_offset"] = [
            round(float(np.nan_to_num(v(row, "p_cx"))), 2),
            round(float(np.nan_to_num(v(row, "p_cy"))), 2),
        ]
        ev["runs"] = int(max(v(row, "p_runs_col_0.35"), v(row, "p_runs_row_0.35")))
        halves = v(row, "n_halves")
        if not np.isnan(halves):  # < 0: its halves are nearer the class's other boxes than the whole box is
            ev["halves_like_one"] = bool(halves < 0)
        if "m_box" in bs.names and not np.isnan(v(row, "m_blobs")):
            ev["fg_fraction"] = round(v(row, "m_box"), 2)
            ev["mask_blobs"] = int(v(row, "m_blobs"))
    return ev
