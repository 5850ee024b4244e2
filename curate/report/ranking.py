"""Which check a person should look at first: the report's sections ordered by what they cost a model.

A fixed check order would put one bad label line above 11 % of the images leaking across splits, and read the
same whatever the dataset. The order here follows the damage, in four tiers:

1. **leakage**: while the same photo sits in train and test, no score on that test set can be trusted, so
   no other fix can even be measured;
2. **label errors** (box and region checks): the checks whose score is a calibrated probability first, by
   how many real errors their flagged boxes are expected to hold (the sum of those probabilities); then the
   others, whose scores only compare within a check, in their declared order;
3. **file problems**: bad label lines, unreadable images, image-level findings (each fixed once, often by
   a script);
4. **checks with nothing found, then notes**: facts that are not errors (a box cut by the border, a class
   absent from a split) come last, below every error.

Ties keep each check's declared :attr:`Display.rank <curate.audit.checks.base.Display.rank>`.
"""

from __future__ import annotations

from curate.core.findings import NOTE_CHECKS
from curate.report.display import CALIBRATED_CHECKS, CHECK_ORDER

#: Checks whose findings make the held-out scores meaningless (the same image on both sides of a split).
LEAKAGE_CHECKS = frozenset({"leakage"})
#: Section kinds that are label errors (a box, or a region where a box is missing).
LABEL_KINDS = frozenset({"box", "region"})

FIRST_NOTE = " — look at these first"


def is_note(section) -> bool:
    """A section of facts that are not errors (dataset notes, boxes cut by the border)."""
    return section.name in NOTE_CHECKS or section.kind == "dataset"


def impact_key(section) -> tuple:
    """The sort key of one :class:`~curate.report.sections.CheckSection` (smaller = look at it sooner)."""
    rank = CHECK_ORDER.index(section.name) if section.name in CHECK_ORDER else len(CHECK_ORDER)
    if is_note(section):
        return (5, 0.0, rank)
    if not section.count:
        return (4, 0.0, rank)
    if section.name in LEAKAGE_CHECKS:
        return (0, 0.0, rank)
    if section.kind in LABEL_KINDS:
        if section.name in CALIBRATED_CHECKS:
            return (1, -section.expected, rank)
        return (2, 0.0, rank)
    return (3, 0.0, rank)


def rank_sections(sections: list) -> list:
    """``sections`` worst first (:func:`impact_key`); the first one with findings that is not a note gets
    "look at these first"."""
    ranked = sorted(sections, key=impact_key)
    for s in ranked:
        s.first = False
    for s in ranked:
        if s.count and impact_key(s)[0] < 4:
            s.first = True
            s.verdict += FIRST_NOTE
            break
    return ranked
