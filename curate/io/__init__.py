"""Reading and writing: YOLO folders, image files, the result cache, atomic outputs, per-dataset locks."""
