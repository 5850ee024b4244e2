"""Headless Chromium as the tests and the README's screenshots run it on curate's pages.

curate's pages are made to be opened from disk in any browser; the tests and ``scripts/screenshots.py`` check
that in a real one. These flags keep it from reaching the network (no update, sync or QUIC probes) and from
needing a display or a sandbox, so it runs the same in CI, in a container and on a laptop.
"""

from __future__ import annotations

#: Flags for a headless Chromium that renders local pages and talks to nothing.
OFFLINE_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
