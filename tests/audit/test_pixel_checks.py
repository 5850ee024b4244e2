"""Messages of the grouped / background_heavy / shifted checks say why, from the box model's evidence."""

from __future__ import annotations

import pytest

from curate.audit.checks import background_heavy, by_name, grouped, shifted

BASE = {"method": "pixels", "area_vs_class": 2.0, "same_class_inside": 0, "p_ok": 0.1, "blobs": 1, "runs": 1}


@pytest.mark.parametrize(
    "ev, score, expected",
    [
        # object ends far inside the left and top edges: a loose box, sides named
        (
            {**BASE, "side_extent": {"left": 0.3, "top": 0.25, "right": 0.0, "bottom": 0.02}, "background_share": 0.48},
            0.9,
            ["looks loose", "~48% background", "loose on left, top", "2.0× the median 'egg' area"],
        ),
        # no measured background band: no background claim, only the size
        (
            {**BASE, "side_extent": {"left": 0.0, "top": 0.0, "right": 0.0, "bottom": 0.0}, "background_share": 0.0},
            0.2,
            ["fits its object", "2.0× the median 'egg' area"],
        ),
        # the U²-Net-p fraction is reported when the mask was used
        ({**BASE, "side_extent": {}, "background_share": 0.0, "fg_fraction": 0.28}, 0.7, ["fg fraction 0.28"]),
    ],
)
def test_background_heavy_message(ev, score, expected):
    msg = background_heavy._describe(ev, score, "egg", 0.5)
    for part in expected:
        assert part in msg
    assert ("background" in msg) == ("background" in " ".join(expected))


@pytest.mark.parametrize(
    "offset, towards",
    [((0.3, 0.0), "right"), ((-0.2, 0.0), "left"), ((0.0, 0.2), "bottom"), ((0.2, -0.2), "upper right")],
)
def test_shifted_message_names_the_direction(offset, towards):
    ev = {**BASE, "side_extent": {"left": -0.1, "top": 0.0, "right": 0.2, "bottom": 0.0}, "object_offset": list(offset)}
    msg = shifted._describe(ev, 0.8, "egg", 0.5)
    assert msg.startswith("looks shifted") and f"towards the {towards} " in msg
    if offset == (0.3, 0.0):
        assert "object continues past left" in msg and "background inside right" in msg


def test_grouped_message_says_when_each_half_looks_like_one_object():
    assert "each half looks more like a single 'egg'" in grouped._describe(
        {**BASE, "halves_like_one": True}, 0.7, "egg", 0.5
    )
    assert "each half" not in grouped._describe({**BASE, "halves_like_one": False}, 0.7, "egg", 0.5)


def test_shifted_message_geometry_only():
    assert shifted._describe({**BASE, "method": "geometry"}, 0.1, "egg", 0.5) == "placed on its object (geometry only)"


@pytest.mark.parametrize("blobs, inside, expected", [(3, 2, "~3 separate objects inside"), (1, 0, None)])
def test_grouped_message(blobs, inside, expected):
    msg = grouped._describe({**BASE, "blobs": blobs, "same_class_inside": inside}, 0.8, "olive", 0.5)
    assert msg.startswith("looks like a group box") and "2.0× the median 'olive' area" in msg
    if expected:
        assert expected in msg and f"{inside} 'olive' box(es) inside" in msg
    else:
        assert "separate" not in msg and "inside" not in msg


def test_box_checks_survive_an_undecodable_labelled_image(sample_dir, tmp_path, monkeypatch):
    """An image that cannot be decoded, with labels: its boxes get geometry-only evidence, not a failed check
    (their pixel features are NaN, and the evidence crashed on int(NaN))."""
    import shutil

    from curate.audit.checks.base import AuditContext
    from curate.io.yolo import load_yolo

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "ds"
    shutil.copytree(sample_dir, root)
    ds = load_yolo(root)
    broken = next(r for r in ds.images if r.labels)
    broken.path.write_bytes(b"not an image at all")
    ds = load_yolo(root)
    ctx = AuditContext(ds)
    for check in (grouped, background_heavy, shifted):
        found = by_name()[check.NAME].run(ctx)
        assert len(found) == ds.num_boxes
        mine = [f for f in found if f.image == broken.rel]
        assert mine and all("blobs" not in f.data and "side_extent" not in f.data for f in mine)
        assert all("blobs" in f.data for f in found if f.image != broken.rel)


def test_flagged_boxes_get_their_foreground_fraction_after_the_checks(sample_dir, tmp_path, monkeypatch):
    """The report's masks are made in the background while later checks run, and added after the last one:
    the top flagged boxes of each box check (at most ``mask_top``) get ``fg_fraction`` from U²-Net-p, on a
    fresh run and on a cached re-run alike (the cached findings are stored without it)."""
    from curate.audit.checks.base import AuditContext
    from curate.audit.runner import score_dataset
    from curate.io.yolo import load_yolo

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_yolo(sample_dir)
    only = {"grouped", "background_heavy", "shifted"}
    params = {c: {"threshold": 0.05, "mask_top": 2} for c in only}  # low thresholds: every check has flagged boxes

    def masked() -> dict[str, list[tuple[str, int, float]]]:
        scores, _, errors = score_dataset(AuditContext(ds, params=params), only=only)
        assert not errors
        out: dict[str, list[tuple[str, int, float]]] = {}
        for f in scores:
            if "fg_fraction" in f.data:
                assert f.data["fg_method"] == "u2netp" and 0.0 <= f.data["fg_fraction"] <= 1.0
                out.setdefault(f.check, []).append((f.image, f.line, f.data["fg_fraction"]))
        return out

    first = masked()
    assert set(first) == only and all(len(v) == 2 for v in first.values())
    assert any(
        "fg fraction" in f.message
        for f in score_dataset(AuditContext(ds, params=params), only={"background_heavy"})[0]
        if "fg_fraction" in f.data
    )
    assert masked() == first  # the cached re-run: same boxes, same fractions


def test_a_box_model_option_of_one_check_refreshes_all_three_cached_checks(sample_dir, tmp_path, monkeypatch):
    """grouped, background_heavy and shifted share one model that reads options of all three (members,
    iterations, use_mask): changing grouped's ``members`` must not serve background_heavy's cached scores."""
    from curate.audit.checks.base import AuditContext
    from curate.audit.runner import score_dataset
    from curate.io.yolo import load_yolo

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_yolo(sample_dir)
    only = {"background_heavy"}

    def scores(params):
        found, timings, _ = score_dataset(AuditContext(ds, params=params), only=only)
        return [f.score for f in found]

    bag = scores({})
    assert scores({}) == bag  # from the cache
    single = scores({"grouped": {"members": 1}})
    assert single != bag


@pytest.mark.parametrize("module", [background_heavy, shifted, grouped], ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_message_agrees_with_the_configured_threshold(module):
    """With `threshold: 0.2` a flagged box read "one object" / "fits its object": the head follows the threshold."""
    ev = {
        **BASE,
        "side_extent": {"left": 0.3, "top": 0.0, "right": -0.1, "bottom": 0.0},
        "background_share": 0.3,
        "object_offset": [0.2, 0.0],
    }
    passed = {"background_heavy": "fits its object", "shifted": "placed on its object", "grouped": "one object"}
    name = module.__name__.rsplit(".", 1)[1]
    assert not module._describe(ev, 0.3, "egg", 0.2).startswith(passed[name])  # flagged at 0.2
    assert module._describe(ev, 0.3, "egg", 0.5).startswith(passed[name])  # passed at 0.5
