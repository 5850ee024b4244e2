"""curate: find, fix and prove what is wrong with a YOLO object-detection dataset."""

import os as _os

# OpenMP threads (scikit-learn's HistGradientBoosting) sleep instead of spinning while they wait. With
# the default spin-wait, a 2-thread fit on a machine where another job holds a core took 189 s instead
# of 3 s (each barrier waits for a descheduled spinner); passive waiting kept it at 3–4 s. libgomp reads
# this once, when it loads, so it is set before anything imports scikit-learn.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
