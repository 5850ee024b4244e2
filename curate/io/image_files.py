"""What an image file's bytes say without decoding its pixels: its format, and whether it was cut short.

Why one module: ``curate info`` (the reader, which reads a file's first and last few KB) and the audit's
``corrupt_image`` check (which reads whole files to hash them) must give one file one answer; each calls
:func:`cut_short` with the same head, tail and size.

Why the end marker is looked for in the file's last :data:`TAIL_BYTES` and not only in its last two bytes:
bytes after a JPEG's end marker are legal, and cameras and phones append some (maker data, padding); a
truncated download or copy has no end marker at all near its end. (Ultralytics' own check reads only the
last two bytes, and re-saves such a file as "corrupt JPEG restored".)
"""

from __future__ import annotations

import os

#: How far before a file's end its end marker (JPEG ``FFD9``, PNG ``IEND``) may lie: one page of the disk.
TAIL_BYTES = 4096
#: Magic bytes a format's files start with.
MAGIC = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"GIF8": "gif",
    b"BM": "bmp",
    b"RIFF": "webp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
#: A PNG's last chunk, whole: length 0, type ``IEND``, its (constant) CRC.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"
JPEG_SCAN = b"\xff\xda"


def sniff(head: bytes) -> str | None:
    """The format a file's first bytes say it is ("jpeg", "png", …), None when none of :data:`MAGIC`."""
    for magic, kind in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def cut_short(head: bytes, tail: bytes, size: int) -> str | None:
    """Why the file looks truncated, in words, or None when it ends as its format says a file ends.

    ``head``: its first bytes (16 or more), ``tail``: its last :data:`TAIL_BYTES` (or all of it when
    smaller), ``size``: its length in bytes. JPEG: an end marker ``FFD9`` in the tail, after the tail's
    last start of scan (in a small file, an EXIF thumbnail's end marker lies before the main scan).
    PNG: its ``IEND`` chunk in the tail. WebP: as many bytes as its RIFF header says. BMP (uncompressed):
    as many bytes as its pixel rows need. Bytes after the end are fine. Other formats are not checked.
    """
    kind = sniff(head)
    tail = tail[-TAIL_BYTES:]
    if kind == "jpeg":
        end = tail.rfind(JPEG_END)
        if end < 0 or tail.rfind(JPEG_SCAN) > end:
            return "the JPEG file ends before its end marker: truncated download or copy"
    elif kind == "png":
        if PNG_END not in tail:
            return "the PNG file ends before its end marker: truncated download or copy"
    elif kind == "webp" and len(head) >= 12 and head[8:12] == b"WEBP":
        expected = 8 + int.from_bytes(head[4:8], "little")
        if size < expected:
            return f"the WEBP file is {size:,} bytes, its header says {expected:,}: truncated download or copy"
    elif kind == "bmp":
        expected = _bmp_size(head)
        if expected is not None and size < expected:
            return f"the BMP file is {size:,} bytes, its header says {expected:,}: truncated download or copy"
    return None


def _bmp_size(head: bytes) -> int | None:
    """The bytes an uncompressed BMP needs (pixel offset + rows padded to 4 bytes), None when not known."""
    if len(head) < 34 or int.from_bytes(head[14:18], "little") < 40:  # only BITMAPINFOHEADER and later
        return None
    width = int.from_bytes(head[18:22], "little", signed=True)
    height = abs(int.from_bytes(head[22:26], "little", signed=True))
    bits = int.from_bytes(head[28:30], "little")
    compression = int.from_bytes(head[30:34], "little")
    if compression not in (0, 3) or width <= 0 or bits not in (1, 4, 8, 16, 24, 32):  # 3: bit fields, rows as 0
        return None
    return int.from_bytes(head[10:14], "little") + (width * bits + 31) // 32 * 4 * height


def read_ends(path: str, head_bytes: int) -> tuple[bytes, bytes, int]:
    """A file's first ``head_bytes``, its last :data:`TAIL_BYTES` and its size, in one open; the tail is the
    head's end when the file is no longer than that. Raises OSError.

    Unbuffered ``os`` calls: Python's buffered file object cost more than the reads themselves. (No
    ``os.pread``: Windows has none; ``O_BINARY``: Windows opens in text mode without it.)
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        head = os.read(fd, head_bytes)
        if len(head) < head_bytes:
            return head, head, len(head)
        size = os.lseek(fd, 0, os.SEEK_END)
        start = os.lseek(fd, max(size - TAIL_BYTES, head_bytes), os.SEEK_SET)
        return head, (head + os.read(fd, size - start))[-TAIL_BYTES:], size
    finally:
        os.close(fd)


#: PIL's decompression-bomb limit is this many times its ``MAX_IMAGE_PIXELS``: above it, it refuses to open.
PIL_REFUSES_ABOVE = 2


def too_large(width: int, height: int) -> tuple[float, str] | None:
    """(severity, words) for an image above PIL's decompression-bomb limit, None below it.

    Why a finding: PIL warns on every open of such an image (two lines on stderr), and above twice the limit
    refuses it, so Ultralytics (whose label check opens every image with PIL) skips it as corrupt.
    """
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    pixels = width * height
    if limit is None or pixels <= limit:
        return None
    said = (
        f"the image is {width:,}×{height:,} ({pixels / 1e6:.0f} megapixels), "
        f"above PIL's decompression-bomb limit ({limit / 1e6:.0f} megapixels)"
    )
    if pixels > PIL_REFUSES_ABOVE * limit:
        return 1.0, f"{said} twice over: PIL refuses to open it, and Ultralytics skips it as a corrupt image"
    decoded = f"every full decode holds {pixels * 3 / 2**20:,.0f} MB"
    return 0.5, f"{said}: PIL warns on every open, and {decoded}; resize it unless it must be this large"


def quiet_pil() -> None:
    """Silence PIL's ``DecompressionBombWarning`` in this process: such an image becomes a finding that names
    the file and its size (:func:`too_large`) instead of two unexplained lines on stderr.

    Looked up on every call, not done once: ``warnings.catch_warnings`` (pytest wraps every test in one)
    puts the filters back as they were when it ends.
    """
    import warnings

    from PIL import Image

    bomb = Image.DecompressionBombWarning
    if not any(f[0] == "ignore" and f[2] is bomb and f[1] is None for f in warnings.filters):
        warnings.filterwarnings("ignore", category=bomb)
