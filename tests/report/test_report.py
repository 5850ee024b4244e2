"""The report: self-contained HTML + Markdown, built only from findings, rendered in headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord, Label, LabelLookup
from curate.core.findings import Finding
from curate.report.audit import write_report
from curate.report.browser import OFFLINE_FLAGS
from curate.report.display import CHECK_COLOURS
from curate.report.ranking import rank_sections
from curate.report.sections import CheckSection, contact_sheet, verdict
from curate.report.thumbs import draw_boxes, finding_thumb, view_window

NAMES = ["apple", "banana", "carrot"]
SIDE = 320


def _photo(path: Path, boxes: list[tuple[int, float, float, float, float]], seed: int) -> None:
    """A textured background with one filled ellipse per box (the 'object'), saved as JPEG."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(90, 140, size=(SIDE, SIDE, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    draw = ImageDraw.Draw(im)
    colours = [(200, 40, 40), (230, 200, 40), (240, 120, 20)]
    for cls, cx, cy, w, h in boxes:
        x0, y0, x1, y1 = (cx - w / 2) * SIDE, (cy - h / 2) * SIDE, (cx + w / 2) * SIDE, (cy + h / 2) * SIDE
        draw.ellipse((x0, y0, x1, y1), fill=colours[cls % 3])
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=90)


def make_dataset(root: Path, n_per_split: dict[str, int] | None = None) -> Dataset:
    """Images with 1–3 objects each, label files written too; one background image per split."""
    n_per_split = n_per_split or {"train": 8, "val": 3, "test": 2}
    images: list[ImageRecord] = []
    k = 0
    for split, n in n_per_split.items():
        for i in range(n):
            rng = np.random.default_rng(k)
            nb = 0 if i == n - 1 else int(rng.integers(1, 4))
            boxes = []
            for _ in range(nb):
                w, h = rng.uniform(0.1, 0.3, size=2)
                cx, cy = rng.uniform(0.2, 0.8, size=2)
                boxes.append((int(rng.integers(0, 3)), float(cx), float(cy), float(w), float(h)))
            rel = f"{split}/images/img{k:03d}.jpg"
            path = root / rel
            _photo(path, boxes, seed=k)
            label_path = root / split / "labels" / f"img{k:03d}.txt"
            label_path.parent.mkdir(parents=True, exist_ok=True)
            label_path.write_text("".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in boxes))
            labels = [Label(c, x, y, w, h, line=j + 1) for j, (c, x, y, w, h) in enumerate(boxes)]
            images.append(ImageRecord(split=split, path=path, rel=rel, label_path=label_path, labels=labels))
            k += 1
    return Dataset(root=root, name="fruit", names=list(NAMES), images=images, yaml_path=root / "data.yaml")


# ---------------------------------------------------------------------------------------------------------
# fixtures: a small dataset and hand-made findings of several kinds
# ---------------------------------------------------------------------------------------------------------

CHECKS_RUN = ["format", "leakage", "grouped", "background_heavy", "shifted", "duplicate", "missing", "dataset"]


def make_findings(ds: Dataset) -> list[Finding]:
    boxes = list(ds.boxes())
    out = [
        Finding(r.split, r.rel, "grouped", 0.95 - 0.05 * i, f"box holds {i + 2} separate blobs", line=lab.line)
        for i, (r, lab) in enumerate(boxes[:5])
    ]
    out += [
        Finding(r.split, r.rel, "background_heavy", 0.8 - 0.05 * i, "object fills 21% of its box", line=lab.line)
        for i, (r, lab) in enumerate(boxes[5:8])
    ]
    val0 = ds.split("val")[0]
    out += [
        Finding("train", ds.images[0].rel, "missing", 0.7, "salient object no box covers", region=(0.5, 0.5, 0.2, 0.2)),
        # a leakage pair reported from both sides: one pair on the page
        Finding("train", ds.images[1].rel, "leakage", 0.97, "same photo in train and val", data={"partner": val0.rel}),
        Finding("val", val0.rel, "leakage", 0.97, "same photo in train and val", data={"partner": ds.images[1].rel}),
        Finding("train", "train/labels/img003.txt", "format", 1.0, "5 fields expected, got 4", line=2),
        Finding("test", "", "dataset", 0.6, "class carrot has 1 instance in test"),
    ]
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, list[Finding], Path]:
    """One report written once for the module (plots cost a second or two)."""
    root = tmp_path_factory.mktemp("report")
    ds = make_dataset(root / "ds")
    findings = make_findings(ds)

    def masks(record: ImageRecord) -> np.ndarray:
        m = np.zeros((64, 64), np.float32)
        m[16:48, 16:48] = 1.0
        return m

    write_report(
        ds,
        findings,
        root / "out",
        summary={"checks": CHECKS_RUN, "seconds": 12.5, "foreground": "u2netp"},
        fiftyone_name="curate-fruit",
        masks=masks,
        notes=["rembg weights absent: GrabCut used for foreground"],
    )
    return ds, findings, root / "out"


def _decode_uri(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


# ---------------------------------------------------------------------------------------------------------
# the HTML file itself
# ---------------------------------------------------------------------------------------------------------


def test_html_is_self_contained(built: tuple[Dataset, list[Finding], Path]) -> None:
    html = (built[2] / "report.html").read_text(encoding="utf-8")
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "<script" not in html.lower()
    assert not re.search(r"<link[^>]+href=", html)
    assert "http://" not in html and "https://" not in html
    assert "<style>" in html


def test_html_sections_and_commands(built: tuple[Dataset, list[Finding], Path]) -> None:
    ds, _, out = built
    html = (out / "report.html").read_text(encoding="utf-8")
    for check in CHECKS_RUN:
        assert f'id="check-{check}"' in html
    assert "curate review " in html and "--check grouped" in html
    assert 'fo.load_dataset("curate-fruit").load_saved_view("audit/grouped")' in html
    assert "rembg weights absent" in html
    assert "Contact sheet: top findings" in html
    # the format finding as a table row (file, line, reason)
    assert re.search(r"train/labels/img003\.txt</td><td class=\"num\">2</td><td>5 fields expected, got 4", html)


def test_markdown(built: tuple[Dataset, list[Finding], Path]) -> None:
    ds, _, out = built
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# curate audit — fruit")
    assert f"**{len(ds.images)} images**" in md and f"**{ds.num_boxes} boxes**" in md
    assert "- no problem found: " in md and "shifted" in md.split("- no problem found: ")[1].split("\n")[0]
    assert "- **grouped**: 5 boxes flagged" in md
    # both sides of one pair count once; leakage first: no test score is trustworthy until it is fixed
    assert "- **leakage**: 1 pair (2 images, 15.4% of images) — look at these first" in md
    assert md.count("look at these first") == 1
    # errors, then file problems, then the clean checks, then notes
    order = [line.split("**")[1] for line in md.split("## Verdict")[1].split("##")[0].splitlines() if "**" in line]
    assert order == ["leakage", "grouped", "background_heavy", "missing", "format", "dataset"]
    # notes are not counted as findings to review
    assert f"**{len(built[1]) - 1} findings to review** · 1 note" in md
    # the top-findings table names the class of each box finding via the dataset lookup
    r, lab = next(iter(ds.boxes()))
    assert f"| grouped | 0.95 | {r.rel} | {lab.line} | {ds.class_name(lab.class_id)} |" in md
    assert "| train/labels/img003.txt | 2 | 5 fields expected, got 4 |" in md
    assert "`report.html`" in md and "findings.csv" in md


def test_checks_that_did_not_run_are_not_called_clean(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", {"train": 3})
    r, lab = next(iter(ds.boxes()))
    f = Finding("train", r.rel, "grouped", 0.9, "two blobs", line=lab.line)
    write_report(ds, [f], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**grouped**" in md and "shifted" not in md and "no problem found" not in md


# ---------------------------------------------------------------------------------------------------------
# verdicts, windows, thumbnails
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "kind", "n", "expected"),
    [
        ("grouped", "box", 0, "no problem found"),
        ("grouped", "box", 1, "1 box flagged (10.0% of boxes), about 1 expected to be a real error"),  # 10 boxes
        ("shifted", "box", 3, "3 boxes flagged (30.0% of boxes), about 3 expected to be real errors"),  # 3 × 0.9
        ("duplicate", "box", 2, "2 boxes flagged (20.0% of boxes)"),  # not calibrated: no expectation
        ("border_cut", "box", 2, "2 boxes noted, not errors (20.0% of boxes)"),
        ("corrupt_image", "image", 2, "2 images flagged (40.0% of images)"),  # 5 images
        ("missing", "region", 2, "2 unlabelled regions in 1 image (20.0% of images)"),
        ("format", "format", 2, "2 label problems in 1 file"),
    ],
)
def test_verdict_wording(tmp_path: Path, check: str, kind: str, n: int, expected: str) -> None:
    recs = [
        ImageRecord(
            "train",
            tmp_path / f"{i}.jpg",
            f"train/images/{i}.jpg",
            labels=[Label(0, 0.5, 0.5, 0.2, 0.2, line=j + 1) for j in range(2)],
        )
        for i in range(5)
    ]
    ds = Dataset(root=tmp_path, name="t", names=["a"], images=recs)
    flagged = [
        Finding(
            "train",
            recs[0].rel,
            check,
            0.9,
            "m",
            line=(j + 1 if kind in ("box", "format") else None),
            region=((0.5, 0.5, 0.1, 0.1) if kind == "region" else None),
        )
        if kind != "image"
        else Finding("train", recs[j].rel, check, 0.9, "m")
        for j in range(n)
    ]
    assert verdict(check, kind, flagged, ds) == expected


@pytest.mark.parametrize(
    ("box", "zoomed"),
    [
        ((0.45, 0.45, 0.5, 0.5), True),  # a 5% box: shown zoomed
        ((0.0, 0.0, 0.05, 0.05), True),  # in the corner: the window is clamped into the image
        ((0.1, 0.1, 0.9, 0.9), False),  # a big box: the whole image
    ],
)
def test_view_window_holds_the_box(box: tuple[float, float, float, float], zoomed: bool) -> None:
    win = view_window(box, (640, 480))
    assert (win != (0.0, 0.0, 1.0, 1.0)) == zoomed
    assert 0.0 <= win[0] <= box[0] and 0.0 <= win[1] <= box[1]
    assert box[2] <= win[2] <= 1.0 and box[3] <= win[3] <= 1.0
    if zoomed:  # at least REPORT_VIEW_MIN of the longer side stays visible as context
        assert (win[2] - win[0]) * 640 >= defaults.REPORT_VIEW_MIN * 640 - 1


def _colour_share(rgb: np.ndarray, colour: str, tol: int = 40) -> float:
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(rgb.astype(int) - target).max(axis=2) < tol).mean())


def test_thumbnail_draws_the_flagged_box_in_the_check_colour(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", {"train": 2})
    rec = ds.images[0]
    lab = rec.labels[0]
    lookup = LabelLookup(ds)
    f = Finding("train", rec.rel, "grouped", 0.9, "two blobs", line=lab.line)
    thumb = finding_thumb(f, lookup)
    rgb = _decode_uri(thumb.uri)
    assert max(rgb.shape[:2]) == defaults.REPORT_THUMB_SIDE
    assert thumb.class_name == NAMES[lab.class_id] and thumb.line == lab.line
    assert _colour_share(rgb, CHECK_COLOURS["grouped"]) > 0.003  # the thick outline is there
    # the JPEG is small: a full report of ~150 thumbnails stays a few MB
    assert len(thumb.uri) < 40_000


def test_duplicate_partner_box_is_drawn_too(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", {"train": 6})
    rec = next(r for r in ds.images if len(r.labels) >= 2)
    a, b = rec.labels[:2]
    colour = CHECK_COLOURS["duplicate"]
    grey = np.full((256, 256, 3), 128, np.uint8)
    whole = (0.0, 0.0, 1.0, 1.0)
    alone = np.asarray(draw_boxes(grey, whole, rec, flagged=a, region=None, colour=colour))
    paired = np.asarray(draw_boxes(grey, whole, rec, flagged=a, region=None, colour=colour, partner=b))
    assert _colour_share(paired, colour, tol=5) > _colour_share(alone, colour, tol=5) + 0.001
    # and the thumbnail of the finding shows both boxes: a duplicate pair renders without error
    thumb = finding_thumb(
        Finding("train", rec.rel, "duplicate", 0.9, "dup", line=a.line, data={"partner_line": b.line}), LabelLookup(ds)
    )
    assert thumb.uri.startswith("data:image/jpeg;base64,")


def test_mask_dims_the_background_only_when_given(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", {"train": 2})
    rec = ds.images[0]
    f = Finding("train", rec.rel, "missing", 0.8, "object no box covers", region=(0.5, 0.5, 0.9, 0.9))
    lookup = LabelLookup(ds)

    def left_half(record: ImageRecord) -> np.ndarray:  # foreground on the left, background on the right
        m = np.zeros((40, 40), np.uint8)
        m[:, :20] = 255
        return m

    plain = finding_thumb(f, lookup)
    masked = finding_thumb(f, lookup, masks=left_half)
    assert not plain.masked and masked.masked
    a, b = _decode_uri(plain.uri).astype(float), _decode_uri(masked.uri).astype(float)
    w = a.shape[1]
    left, right = slice(20, w // 2 - 20), slice(w // 2 + 20, w - 20)
    assert abs(b[40:-40, left].mean() - a[40:-40, left].mean()) < 8  # the object keeps its colours
    assert b[40:-40, right].mean() < 0.7 * a[40:-40, right].mean()  # the background is dimmed
    assert _colour_share(b, "#00e5ff", tol=60) > 0.004 > _colour_share(a, "#00e5ff", tol=60)  # the outline


@pytest.mark.parametrize("broken", ["truncated", "missing_file", "not_in_dataset"])
def test_undecodable_image_gets_a_placeholder(tmp_path: Path, broken: str) -> None:
    ds = make_dataset(tmp_path / "ds", {"train": 2})
    rec = ds.images[0]
    image = rec.rel
    if broken == "truncated":
        rec.path.write_bytes(rec.path.read_bytes()[:200])
    elif broken == "missing_file":
        rec.path.unlink()
    else:
        image = "train/images/ghost.jpg"
    f = Finding("train", image, "corrupt_image", 1.0, "cannot decode")
    write_report(ds, [f], tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('<figure class="thumb" data-check="corrupt_image"') == 1


def test_contact_sheet_takes_checks_in_turn(built: tuple[Dataset, list[Finding], Path]) -> None:
    from curate.report.sections import build_sections

    ds, findings, _ = built
    sections = build_sections(
        ds, findings, LabelLookup(ds), summary={"checks": CHECKS_RUN}, thresholds=None, masks=None
    )
    sheet = contact_sheet(sections, n=4)
    # round-robin by rank: the best of grouped and of background_heavy come before grouped's second
    assert [t.check for t in sheet[:2]] == ["grouped", "background_heavy"]
    assert sheet[2].check == "grouped" and sheet[0].score >= sheet[2].score
    assert all(t.check not in ("leakage", "missing", "format") for t in sheet)


# ---------------------------------------------------------------------------------------------------------
# rendered in headless Chromium
# ---------------------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = list(OFFLINE_FLAGS)


def _chromium() -> str:
    """Debian's chromium; installed with apt-get when absent (skip only if that is impossible)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "install", "-y", "chromium"],
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "chromium"],
        ):
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
            if found := shutil.which("chromium"):
                return found
    pytest.skip("chromium is not installed and apt-get could not install it")


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def test_rendered_in_chromium(built: tuple[Dataset, list[Finding], Path], tmp_path: Path) -> None:
    ds, findings, out = built
    url = (out / "report.html").resolve().as_uri()
    res = _run_chromium(["--dump-dom", url], tmp_path / "profile")
    dom = res.stdout
    assert res.returncode == 0 and "</html>" in dom, res.stderr[-2000:]
    # headings
    for heading in ("Summary", "Plots", "Contact sheet: top findings", "Findings per check", "Verdict, worst first"):
        assert re.search(rf"<h2[^>]*>{re.escape(heading)}</h2>", dom), heading
    assert "curate audit" in dom and "fruit" in dom
    # the summary cards' numbers
    for key, value in (
        ("images", len(ds.images)),
        ("boxes", ds.num_boxes),
        ("classes", len(NAMES)),
        ("background", sum(r.is_background for r in ds.images)),
        ("findings", len(findings) - 1),  # the dataset note is not a finding to review
        ("check-grouped", 5),
        ("check-leakage", 1),
        ("check-shifted", 0),
    ):
        m = re.search(rf'data-key="{key}"[^>]*>.*?<div class="num">([^<]*)</div>', dom, re.S)
        assert m and m.group(1) == f"{value:,}", (key, m and m.group(1))
    # at least one image per plot
    plots = re.findall(r'<figure class="plot[^"]*" id="plot-([a-z_]+)">(.*?)</figure>', dom, re.S)
    assert [p for p, _ in plots] == ["class_distribution", "findings_per_class", "box_geometry"]
    bodies = dict(plots)
    assert '<img src="data:image/png;base64,' in bodies["box_geometry"]
    # class distribution: HTML bars, one segment per (class, split) with boxes, titled with the count
    split_segs = re.findall(
        r'class="hbar-seg" style="width:[0-9.]+%;background:[^"]+" title="([a-z]+): (\d+)"',
        bodies["class_distribution"],
    )
    assert sum(int(n) for _, n in split_segs) == ds.num_boxes
    assert {s for s, _ in split_segs} == set(ds.splits)
    # findings per class: HTML bars, one segment per (class, check) with findings; 5 grouped + 3 background_heavy
    # boxes flagged (the missing region has no box line), titled with their counts
    segs = re.findall(
        r'class="hbar-seg" style="width:([0-9.]+)%;background:[^"]+" title="([a-z_]+): (\d+)"',
        bodies["findings_per_class"],
    )
    assert sum(int(n) for _, check, n in segs if check == "grouped") == 5
    assert sum(int(n) for _, check, n in segs if check == "background_heavy") == 3
    assert max(float(w) for w, _, _ in segs) <= 100.0
    # thumbnails: 5 grouped + 3 background_heavy + 1 missing in their sections, and the 8 boxes again on the sheet
    assert dom.count('<figure class="thumb" data-check=') == 9 + 8
    assert dom.count('class="thumb pairfig"') == 1
    sheet = dom.split('id="contact-sheet"', 1)[1].split("</section>", 1)[0]
    assert sheet.count("<figure") == 8
    assert "no problem found" in dom


def test_screenshot_is_not_blank(built: tuple[Dataset, list[Finding], Path], tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    url = (built[2] / "report.html").resolve().as_uri()
    res = _run_chromium([f"--screenshot={shot}", "--window-size=1280,2000", url], tmp_path / "profile")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    im = np.asarray(Image.open(shot).convert("RGB"))
    assert im.shape[:2] == (2000, 1280)
    # a real page: a dark header, white cards on a grey ground, coloured plots — many distinct colours
    assert im.std() > 25
    assert len(np.unique(im.reshape(-1, 3)[::7], axis=0)) > 500
    assert im[:60].mean() < 80  # the dark header band rendered


@pytest.mark.parametrize("case", ["no_images", "only_background", "no_class_names"])
def test_degenerate_datasets_still_get_a_report(tmp_path: Path, case: str) -> None:
    if case == "no_images":
        ds = Dataset(root=tmp_path, name="empty", names=["a"], images=[])
    else:
        ds = make_dataset(tmp_path / "ds", {"train": 2})
        if case == "only_background":
            for r in ds.images:
                r.labels = []
        else:
            ds.names = []
    path = write_report(ds, [], tmp_path / "out", summary={"checks": ["grouped"]})
    html = path.read_text()
    assert 'id="check-grouped"' in html and "no problem found" in html
    assert html.count('<figure class="plot') == 3
    assert "- no problem found: grouped" in (tmp_path / "out" / "report.md").read_text()


def test_fast_report_leaves_the_geometry_figure_to_the_full_audit(tmp_path: Path, monkeypatch) -> None:
    """--fast draws no matplotlib figure unless one is cached; after a full audit's drawing it shows that one."""
    from curate.report import plots

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    ds = make_dataset(tmp_path / "ds", {"train": 3, "val": 2})

    def geometry_body(out: Path) -> str:
        html = write_report(ds, [], out, summary={"checks": [], "fast": True}).read_text()
        return re.search(r'<figure class="plot[^"]*" id="plot-box_geometry">(.*?)</figure>', html, re.S).group(1)

    before = geometry_body(tmp_path / "fast1")
    assert "<img" not in before and "without --fast" in before
    plots.dataset_plots(ds)  # what a full audit's plots child does (and caches)
    assert '<img src="data:image/png;base64,' in geometry_body(tmp_path / "fast2")


def test_fast_audit_imports_neither_matplotlib_nor_scikit_learn(sample_dir: Path, tmp_path: Path) -> None:
    """--fast's speed (hundreds of images a second) rests on skipping these imports (~1 s and ~2 s of CPU).

    Everything in one process (no child processes), so an import a child would hide still shows.
    """
    import sys

    code = (
        "import sys; from pathlib import Path; import curate.runtime.worker as w; w.worth_it = lambda: False; "
        "from curate.io.yolo import load_yolo; from curate.audit.runner import run_audit; "
        f"r = run_audit(load_yolo({str(sample_dir)!r}), out_dir=Path({str(tmp_path / 'out')!r}), "
        "fast=True, fiftyone=False); "
        "print(len(r.findings) > 0, 'matplotlib' in sys.modules, 'sklearn' in sys.modules)"
    )
    env = {**os.environ, "CURATE_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "False"]
    assert (tmp_path / "out" / "report.html").exists()


@pytest.mark.parametrize("opencv_reads_it", [True, False])
def test_thumbnails_are_upright_whichever_library_decodes(tmp_path: Path, monkeypatch, opencv_reads_it: bool) -> None:
    """A photo stored 200 wide × 100 high with EXIF orientation 6 is shown 100 wide × 200 high, also when
    OpenCV cannot read the file and PIL decodes it."""
    import cv2

    from curate.report import thumbs

    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (200, 100), (200, 40, 40)).save(path, exif=exif.tobytes())
    if not opencv_reads_it:
        monkeypatch.setattr(cv2, "imread", lambda *a, **k: None)
    rgb = thumbs.decode_view(path, (0.0, 0.0, 1.0, 1.0), (100, 200), side=200)
    assert rgb is not None and rgb.shape[:2] == (200, 100)


def _section(name: str, kind: str, count: int, expected: float = 0.0):
    return CheckSection(name, "#000", kind, count, "v", None, "", "", expected=expected)


def test_sections_rank_by_impact_not_by_a_fixed_check_order() -> None:
    """Leakage, then calibrated label errors by expected real errors, then uncalibrated ones, then file
    problems, then clean checks, then notes (issue #26: a polygon line was "look at these first" while 11 % of
    the images leaked)."""
    sections = [
        _section("format", "format", 1),
        _section("dataset", "dataset", 64),
        _section("border_cut", "box", 3),
        _section("grouped", "box", 2, expected=1.2),
        _section("shifted", "box", 9, expected=4.5),
        _section("duplicate", "box", 2),
        _section("missing", "region", 19),
        _section("ambiguous", "box", 0),
        _section("near_duplicate", "pair", 1),
        _section("leakage", "pair", 5),
    ]
    ranked = rank_sections(sections)
    assert [s.name for s in ranked] == [
        "leakage",
        "shifted",
        "grouped",
        "duplicate",
        "missing",
        "format",
        "near_duplicate",
        "ambiguous",
        "border_cut",
        "dataset",
    ]
    assert [s.name for s in ranked if s.first] == ["leakage"] and ranked[0].verdict.endswith("look at these first")
    # without leakage, the label error expected to hold the most real errors comes first
    ranked = rank_sections([s for s in sections if s.name != "leakage"])
    assert [s.name for s in ranked if s.first] == ["shifted"]
    # notes alone are never "look at these first"
    assert not any(s.first for s in rank_sections([_section("dataset", "dataset", 3)]))


def test_a_background_image_with_unlabelled_objects_is_not_called_healthy(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", {"train": 3})
    r = ds.images[0]
    r.labels.clear()
    assert r.is_background
    found = [Finding("train", r.rel, "missing", 0.9, "unlabelled object", region=(0.5, 0.5, 0.2, 0.2))]
    write_report(ds, found, tmp_path / "out", summary={"checks": ["missing"]})
    md = (tmp_path / "out" / "report.md").read_text()
    n = sum(x.is_background for x in ds.images)
    assert f"**{n} background images** ({100 * n / 3:.1f}%, advice 0%–10%; 1 of them with objects `missing`" in md
    html = (tmp_path / "out" / "report.html").read_text()
    assert "1 with objects" in html


def test_table_checks_show_no_score_bar(built: tuple[Dataset, list[Finding], Path]) -> None:
    html = (built[2] / "report.html").read_text(encoding="utf-8")
    assert "score ≥ 0.00" not in html and "threshold 0.00" not in html
    # a table of bad lines or notes has no score to pass: its card says what it counts, nothing more
    for check in ("format", "dataset"):
        card = re.search(rf'data-key="check-{check}".*?<div class="sub">([^<]*)</div>', html, re.S)
        assert card and "score" not in card.group(1), card and card.group(1)
