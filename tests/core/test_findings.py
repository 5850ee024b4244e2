"""Findings' stored forms: the audit cache's rows read back as exactly the findings a dict round trip gave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.audit import runner as audit
from curate.core.findings import Finding

FINDINGS = [
    Finding(
        "train",
        "train/images/a.jpg",
        "duplicate",
        0.123456789012345,
        "tiny box (3.0×4.0 px)",
        line=3,
        data={"class": "egg", "iou": 0.1234, "partner_line": 2, "pair": (1, 2), "nested": {"k": [1, 2.5, None]}},
    ),
    Finding(
        "val", "valid/images/b.jpg", "missing", 1.0, "a box is missing", region=(0.1, 0.2, 0.30000000000000004, 0.4)
    ),
    Finding("", "train/labels/c.txt", "format", 0.0, "", data={"ok": True}),
]


def _dict_round_trip(found: list[Finding]) -> list[Finding]:
    """What the cache gave before rows (CACHE_VERSION 6): to_dict, JSON, Finding(**d) with the region a tuple."""
    rows = json.loads(json.dumps([f.to_dict() for f in found]))
    return [Finding(**{**r, "region": tuple(r["region"]) if r.get("region") else None}) for r in rows]


def test_cached_rows_read_back_like_the_dict_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    audit._save_cache("0" * 32, FINDINGS)
    back = audit._from_cache("0" * 32)
    assert back == _dict_round_trip(FINDINGS)
    assert [f.to_dict() for f in back] == [f.to_dict() for f in _dict_round_trip(FINDINGS)]
    assert back[1].region == (0.1, 0.2, 0.30000000000000004, 0.4) and isinstance(back[1].region, tuple)
    assert back[0].score == FINDINGS[0].score  # floats exactly


def test_a_missing_cache_entry_reads_as_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    assert audit._from_cache("1" * 32) is None
