"""How the audit report shows each check: its place in the page, its colour and what kind of picture it gets.

Each check declares it (:attr:`Check.display <curate.audit.checks.base.Check.display>`); the reader's
``format`` findings, which no check emits, are declared here. The tables below are what the sections,
thumbnails, plots and report.md read, kept in one module below them so each can use them without importing
the others.
"""

from __future__ import annotations

from curate.audit.checks import registered
from curate.audit.checks.base import Display

#: The reader's findings (bad label lines): right after unreadable images, shown as a table.
READER = {"format": Display(20, "#9f1239", "table")}

#: Every declared display entry, the reader's and each check's, by check name.
ENTRIES: dict[str, Display] = {**READER, **{n: d for c in registered() for n, d in c.display.items()}}

#: Order of sections and verdicts (:attr:`Display.rank`): what breaks training or evaluation first
#: (unreadable files, bad lines, split leakage), then the box errors our users found behind their bad mAP,
#: then the rest. The first check in this order with findings gets "look at these first".
CHECK_ORDER: tuple[str, ...] = tuple(sorted(ENTRIES, key=lambda n: ENTRIES[n].rank))
#: One colour per check, used for its card, its verdict dot and the flagged box in its thumbnails.
CHECK_COLOURS: dict[str, str] = {n: ENTRIES[n].colour for n in CHECK_ORDER}
#: Checks whose evidence is the foreground mask: their thumbnails show it when ``masks`` gives one.
PIXEL_CHECKS = frozenset(n for n, d in ENTRIES.items() if d.picture == "mask")
#: Checks whose findings name a partner image (``finding.data["partner"]``): shown side by side.
PAIR_CHECKS = frozenset(n for n, d in ENTRIES.items() if d.picture == "pair")
#: Checks whose score is calibrated as the probability that the box is a real error of that kind (the box
#: model re-weights held-out corrupted boxes to an explicit 2 % prior per kind, :mod:`curate.audit.boxmodel`),
#: so the sum of the flagged boxes' scores is how many of them are expected to be real.
CALIBRATED_CHECKS = frozenset(n for n, d in ENTRIES.items() if d.calibrated)
#: Checks shown as a table rather than pictures (a bad line or a dataset note has nothing to draw).
TABLE_CHECKS = frozenset(n for n, d in ENTRIES.items() if d.picture == "table")
