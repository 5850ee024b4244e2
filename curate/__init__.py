"""curate: find, fix and prove what is wrong with a YOLO object-detection dataset."""

__version__ = "0.1.0"
