"""YOLO (Ultralytics / Roboflow) datasets: a pure label-line parser plus the file reader and writer.

Why our own reader: FiftyOne's YOLOv5 importer silently loads 0 samples from real Roboflow exports
(``../train/images`` paths, foreign absolute paths), and Ultralytics' label check drops a whole image
for one bad line. Here every malformed thing becomes a *format finding* naming the file and line, the
good lines of the same file are kept, and nothing raises.

Modules: :mod:`.labels` (label lines), :mod:`.layout` (where the splits are), :mod:`.reader` (the dataset),
:mod:`.writer` (a clean copy, and where a command may write). This package exports what the rest of curate
uses.
"""

from curate.io.yolo.labels import LineProblem, format_label, format_label_lines, parse_label_lines
from curate.io.yolo.layout import IMAGE_SUFFIXES, DatasetError, _image_files
from curate.io.yolo.reader import JPEG_HEAD_BYTES, _label_file, load_yolo, plain_jpeg_size
from curate.io.yolo.writer import (
    WriteError,
    check_output_dir,
    check_outside_inputs,
    output_image_paths,
    save_yolo,
    write_data_yaml,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "JPEG_HEAD_BYTES",
    "DatasetError",
    "LineProblem",
    "WriteError",
    "_image_files",
    "_label_file",
    "check_output_dir",
    "check_outside_inputs",
    "format_label",
    "format_label_lines",
    "load_yolo",
    "output_image_paths",
    "parse_label_lines",
    "plain_jpeg_size",
    "save_yolo",
    "write_data_yaml",
]
