"""Test isolation: FiftyOne, the cache and Ultralytics point at temporary folders BEFORE anything imports them.

The real parts are used (a real FiftyOne database in a temp folder, real weights); only where they keep
state is changed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="curate-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(_TMP / "fiftyone-db"))
os.environ.setdefault("FIFTYONE_DEFAULT_DATASET_DIR", str(_TMP / "fiftyone-data"))
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ["CURATE_CACHE_DIR"] = str(_TMP / "cache")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"

from curate import env  # noqa: E402

env.configure()

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "curate" / "sample" / "food-mini"
SHARED = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled sample (80 real images of food-ingredients, Roboflow layout). Read-only: copy before changing."""
    return SAMPLE


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets (the full real exports); tests that need it skip when it is absent."""
    if not (SHARED / "food-ingredients").is_dir():
        pytest.skip("../shared/datasets is not beside this checkout")
    return SHARED
