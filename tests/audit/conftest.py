"""Fixtures shared by the audit tests."""

from __future__ import annotations

import numpy as np
import pytest

from curate.audit import boxmodel


@pytest.fixture
def neighbour_rows() -> tuple[np.ndarray, list]:
    """60 random prototype grids and their queries (30 real boxes, 10 of each corrupted kind, in 25 images of two
    classes): the input of the box model's neighbour features, for the tests of how they are bounded."""
    rng = np.random.default_rng(3)
    grids = rng.normal(size=(60, boxmodel.PROTO_WIDTH)).astype(np.float32)
    kinds = ["ok"] * 30 + ["grouped"] * 10 + ["loose"] * 10 + ["shifted"] * 10
    qs = [
        boxmodel.Query(j % 25, np.zeros(4), j % 2, kind, (0,), line=1 if kind == "ok" else None)
        for j, kind in enumerate(kinds)
    ]
    return grids, qs
