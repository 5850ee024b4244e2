"""Rebuild the bundled sample `curate/sample/food-mini` from ../shared/datasets/food-ingredients.

Why a fixed list: the sample is package data that tests and `make demo` rely on, so it must not
change when this script is run again. The list below was produced once with `--reselect`, whose
rule is:

1. Forced images, to keep the real quirks of the source export:
   - train images whose label files hold a polygon line (more than 5 fields),
   - the empty label file `train/labels/IMG-20240324-WA0458_jpg.rf.9c5d...txt` (a background image),
   - near-duplicate photos across splits (found with imagehash pHash distance <= 2, checked by eye):
     four train/valid or train/test pairs plus a train/valid/test triple.
2. Then greedily, per split, among labelled images under MAX_BYTES (to keep the sample < 5 MB), the
   image whose classes are rarest so far (sum of 1 / (1 + images already holding the class)), ties
   broken by smaller file then by name, until the split has its quota (60 / 10 / 10).

Files are copied byte for byte in the Roboflow layout (train/valid/test × images/labels) with the
original data.yaml (its `../train/images` paths, nc 36 and names) and both README files.

Usage (not run by the tests):
    .venv/bin/python scripts/make_sample.py                # copy the fixed list
    .venv/bin/python scripts/make_sample.py --reselect     # print the list the rule picks now
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "datasets" / "food-ingredients"
TARGET = REPO / "curate" / "sample" / "food-mini"
QUOTA = {"train": 60, "valid": 10, "test": 10}
MAX_BYTES = 45_000

FORCED: dict[str, list[str]] = {
    "train": [
        # polygon lines (115 and 55 fields)
        "WhatsApp-Image-2024-03-12-at-4-10-22-PM_jpeg.rf.8430e0d83aff59010ca902ca3783d14b",
        "WhatsApp-Image-2024-03-26-at-3-33-43-PM-5-_jpeg.rf.cde0c159ab4c2289eb5bf6002affd780",
        # empty label file
        "IMG-20240324-WA0458_jpg.rf.9c5d0e66c786cf411c09a9fb99f73b21",
        # near-duplicates of images in valid/test
        "WhatsApp-Image-2024-03-27-at-16-24-33_jpeg.rf.62ff432af7b1ce69f79d4cdd1f8103e3",
        "WhatsApp-Gorsel-2024-03-25-saat-22-25-02_559f5fe0_jpg.rf.73d486c0ed492eca6bf6a581da6df3c9",
        "WhatsApp-Image-2024-03-27-at-16-01-40-2-_jpeg.rf.d20b8c4cf667df6ba338e19453dadf71",
        "WhatsApp-Image-2024-04-23-at-15-44-46-1-_jpeg.rf.5ad4e97fd2a2da917bc964b1557cac75",
    ],
    "valid": [
        "WhatsApp-Image-2024-03-27-at-16-05-46_jpeg.rf.ea0d1465e6431f8fdcd67cf4d6c96544",
        "WhatsApp-Image-2024-04-23-at-15-44-46-2-_jpeg.rf.28851349e166659d3366678d3bf8f5c2",
        "WhatsApp-Gorsel-2024-03-25-saat-22-25-02_6369422a_jpg.rf.eec3ad3228c2075c655017b04497c3a7",
    ],
    "test": [
        "WhatsApp-Image-2024-03-27-at-16-23-30-1-_jpeg.rf.fedb52b88c07856feeeb8d62117a4ce3",
        "WhatsApp-Gorsel-2024-03-25-saat-22-25-03_65eabd1f_jpg.rf.70ff2d12a7a2acb949e4bfdc7181de30",
    ],
}

# The near-duplicate pairs (split/stem), kept here so tests of the duplicate checks can name them.
NEAR_DUPLICATES: list[tuple[str, ...]] = [
    ("train/" + FORCED["train"][3], "test/" + FORCED["test"][0]),
    ("train/" + FORCED["train"][4], "valid/" + FORCED["valid"][2], "test/" + FORCED["test"][1]),
    ("train/" + FORCED["train"][5], "valid/" + FORCED["valid"][0]),
    ("train/" + FORCED["train"][6], "valid/" + FORCED["valid"][1]),
]

# The list `--reselect` printed on 2026-11-21 (split/stem, one per line).
SELECTION_TEXT = """
train/WhatsApp-Image-2024-03-12-at-4-10-22-PM_jpeg.rf.8430e0d83aff59010ca902ca3783d14b
train/WhatsApp-Image-2024-03-26-at-3-33-43-PM-5-_jpeg.rf.cde0c159ab4c2289eb5bf6002affd780
train/IMG-20240324-WA0458_jpg.rf.9c5d0e66c786cf411c09a9fb99f73b21
train/WhatsApp-Image-2024-03-27-at-16-24-33_jpeg.rf.62ff432af7b1ce69f79d4cdd1f8103e3
train/WhatsApp-Gorsel-2024-03-25-saat-22-25-02_559f5fe0_jpg.rf.73d486c0ed492eca6bf6a581da6df3c9
train/WhatsApp-Image-2024-03-27-at-16-01-40-2-_jpeg.rf.d20b8c4cf667df6ba338e19453dadf71
train/WhatsApp-Image-2024-04-23-at-15-44-46-1-_jpeg.rf.5ad4e97fd2a2da917bc964b1557cac75
train/IMG-20240324-WA0255_jpg.rf.828521788c91c92208e2520afb9bc095
train/WhatsApp-Image-2024-03-07-at-22-40-56-2-_jpeg.rf.0de59cb89b9bf93e32056222662948dc
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_7e148e3c_jpg.rf.1c8d0cff72bf5ac2d4bbf96af5fa8707
train/WhatsApp-Image-2024-03-07-at-22-40-58-1-_jpeg.rf.4d4fec6ab460da131545f29ba84a40bc
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_b579e548_jpg.rf.f8eab5df1413d86b7dd10269eed02351
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-27_a4090438_jpg.rf.70a47337b9d3f274410d9cea62bdf8db
train/WhatsApp-Image-2024-03-27-at-5-46-45-PM_jpeg.rf.d1304d7cef9540dabce0224d3bc4443d
train/WhatsApp-Gorsel-2024-03-27-saat-18-23-46_e78c2761_jpg.rf.e993c242c423f58fff0f13a747ca331f
train/WhatsApp-Image-2024-03-27-at-12-43-30_jpeg.rf.e247f60fb7cd64b94cc24e1ab1009e86
train/WhatsApp-Gorsel-2024-03-25-saat-18-26-00_feef8c48_jpg.rf.b255edb97dc9149352c3a89c44850a59
train/WhatsApp-Image-2024-03-30-at-3-59-01-AM-4-_jpeg.rf.d68d0162a253815aecf950bc9f2be7bd
train/WhatsApp-Gorsel-2024-03-25-saat-18-25-59_b273a467_jpg.rf.edb80f3e26d883546070f458e3a23f52
train/WhatsApp-Image-2024-04-23-at-15-44-48-3-_jpeg.rf.b4ce279084d31ad64152cafd3c32b6fd
train/WhatsApp-Gorsel-2024-03-25-saat-18-25-55_dcf61543_jpg.rf.1260651f68eb38433dd0465153b8e148
train/WhatsApp-Image-2024-04-12-at-23-58-22_jpeg.rf.dd410c15c70cd7aae6b97595ec648df7
train/WhatsApp-Image-2024-03-30-at-3-59-03-AM-4-_jpeg.rf.23ae131ca81aa6aad43837828f6baac0
train/WhatsApp-Gorsel-2024-03-25-saat-18-26-07_4a5b4470_jpg.rf.4212c3839dc9a5ddcd8498d96fa22d64
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_a4b5528d_jpg.rf.08a0000f34b7a1426ed5b1c82ac8804d
train/WhatsApp-Image-2024-03-07-at-22-40-49_jpeg.rf.4864845198f87f29c0f91c5ffc6e4019
train/WhatsApp-Image-2024-04-23-at-15-43-36_jpeg.rf.08381fc228ca21a84c8f6232b670a7bf
train/WhatsApp-Image-2024-03-30-at-3-59-02-AM_jpeg.rf.ff9093f01aa3244b93277aa1800e1b7f
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_7378c58d_jpg.rf.67498b0ea7988ad65289cbbc7c56c4da
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_f24e5ec8_jpg.rf.003313b1016de2406551a3b9fa27b4f8
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_cd27ac88_jpg.rf.dd84b4124fd1d9d55043b6be188a5f12
train/WhatsApp-Gorsel-2024-03-27-saat-18-19-32_a811736f_jpg.rf.b0a6062bc017f79b63ace387a1bea2eb
train/WhatsApp-Image-2024-03-27-at-12-43-31-1-_jpeg.rf.f26cb2e7e57b2a5b5a45a3df59fd9dcf
train/WhatsApp-Gorsel-2024-03-27-saat-18-23-46_8b4d061c_jpg.rf.a014db197ae968a0ee12d843a7376f50
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_aad496a2_jpg.rf.f0e3a60b96577617655288956af1a68d
train/WhatsApp-Image-2024-03-21-at-10-27-26-6-_jpeg.rf.06e3560fcdc3e1bd86b610bdb2dab8ed
train/WhatsApp-Gorsel-2024-03-25-saat-18-26-01_125c62af_jpg.rf.bf3bcc335958b9732684acb896b83d01
train/WhatsApp-Image-2024-03-12-at-4-10-22-PM-2-_jpeg.rf.c78afe339011f18ce1461838132beabf
train/WhatsApp-Gorsel-2024-03-27-saat-13-01-27_b25a3e6c_jpg.rf.f144a650e8c2a7052021bf9149cccdd8
train/WhatsApp-Gorsel-2024-03-25-saat-18-03-01_cecfba0f_jpg.rf.2d97dc8f34ed52a9da885bde71b5e28c
train/WhatsApp-Gorsel-2024-03-25-saat-18-02-50_fd6c1a46_jpg.rf.46c976d5f77d89becc3dffbb9d839dad
train/WhatsApp-Image-2024-04-23-at-15-44-49_jpeg.rf.258d78295c8ebc35ff3e17b160921b21
train/WhatsApp-Image-2024-03-07-at-22-40-14-3-_jpeg.rf.a5908de4ae3c0c3d40cde8aed925f07c
train/WhatsApp-Image-2024-03-30-at-3-59-04-AM_jpeg.rf.aba88629c266c9e4e91cae142425c18d
train/WhatsApp-Image-2024-05-29-at-14-45-54_jpeg.rf.8b0a0ec3f14564b6c5fadd5a7b566796
train/WhatsApp-Gorsel-2024-03-25-saat-20-31-46_3c5f0f65_jpg.rf.b94686b260ecc564cab5e0012b1f4584
train/WhatsApp-Image-2024-03-27-at-12-43-29-1-_jpeg.rf.242eee1816912d1cdd2f86f888d0be7f
train/WhatsApp-Gorsel-2024-03-27-saat-18-19-32_a0691f72_jpg.rf.b365de3e50a52b615c77031cd30d8dd4
train/IMG-20240324-WA0457_jpg.rf.f2f55544e61a46cf2c39404ae895bdd2
train/WhatsApp-Image-2024-03-26-at-3-36-31-PM-19-_jpeg.rf.8281412d93fe3afecc88e1e0d82af80a
train/WhatsApp-Image-2024-03-27-at-12-43-34_jpeg.rf.381a92ad8df0eefa1cee6527b7e7318c
train/IMG-20240324-WA0272_jpg.rf.32b8b8026e8cbc451cc397a4cec54e49
train/WhatsApp-Image-2024-03-07-at-22-40-54-2-_jpeg.rf.f9d9d1691f79fd2cafb6a6168f8fe74c
train/WhatsApp-Image-2024-03-21-at-10-27-26-4-_jpeg.rf.da900052c1125314744bdaeec06781b0
train/WhatsApp-Gorsel-2024-03-27-saat-18-41-57_83eb1207_jpg.rf.a9410bd78d049d4ee1a72a69bd831719
train/WhatsApp-Image-2024-04-23-at-15-44-48_jpeg.rf.334326e5819d4232b4078c2df7e47fbb
train/WhatsApp-Image-2024-03-12-at-4-10-22-PM-8-_jpeg.rf.cadb9c3e0d171b92d258481ff6b031f4
train/WhatsApp-Image-2024-04-23-at-15-43-40_jpeg.rf.c5e930effee194c2fb870f933b9f9861
train/WhatsApp-Image-2024-03-27-at-16-16-52-1-_jpeg.rf.d3f52918e481428a882ccc23541832ec
train/WhatsApp-Image-2024-05-29-at-14-45-55_jpeg.rf.ba2f7e95dcdec3e5ce10c9537ac5b616
valid/WhatsApp-Image-2024-03-27-at-16-05-46_jpeg.rf.ea0d1465e6431f8fdcd67cf4d6c96544
valid/WhatsApp-Image-2024-04-23-at-15-44-46-2-_jpeg.rf.28851349e166659d3366678d3bf8f5c2
valid/WhatsApp-Gorsel-2024-03-25-saat-22-25-02_6369422a_jpg.rf.eec3ad3228c2075c655017b04497c3a7
valid/IMG-20240324-WA0290_jpg.rf.6ab7f32ded2a68eeb0f13866b056d5bc
valid/WhatsApp-Image-2024-03-27-at-12-43-28-1-_jpeg.rf.90ad6f97250b0e2998094819c7eacf66
valid/WhatsApp-Image-2024-03-27-at-12-43-39-2-_jpeg.rf.5dca4087da2b993f3c4d98f4ba71bfe9
valid/WhatsApp-Gorsel-2024-03-27-saat-18-19-32_9a285d10_jpg.rf.4d5b52943acbdb5031699dff6c8aa3a0
valid/IMG-20240324-WA0470_jpg.rf.8d13c97591eb108738dc9a82da47febf
valid/IMG-20240324-WA0339_jpg.rf.7da1ed5b64e90f99d48b875584eee30e
valid/WhatsApp-Gorsel-2024-03-27-saat-18-19-39_0fca0807_jpg.rf.1708fc9dac520a53f6a032220f3c4661
test/WhatsApp-Image-2024-03-27-at-16-23-30-1-_jpeg.rf.fedb52b88c07856feeeb8d62117a4ce3
test/WhatsApp-Gorsel-2024-03-25-saat-22-25-03_65eabd1f_jpg.rf.70ff2d12a7a2acb949e4bfdc7181de30
test/IMG-20240324-WA0277_jpg.rf.aaa2268b3d27c8192d70f4d4949581cf
test/WhatsApp-Gorsel-2024-03-27-saat-13-01-29_d5402787_jpg.rf.c8928c2c691ea3b496019a5583190f7f
test/WhatsApp-Gorsel-2024-03-27-saat-18-19-32_4bbc7786_jpg.rf.676fdb95142e6505299eeda2d4e63f42
test/WhatsApp-Gorsel-2024-03-25-saat-18-26-02_8be220d3_jpg.rf.3ef23bfc797eb783ded0b08d33c72e80
test/WhatsApp-Image-2024-03-27-at-02-08-41-6-_jpeg.rf.e7498f20651828953692fed67768f04b
test/WhatsApp-Gorsel-2024-03-27-saat-18-19-33_dcbc2a5a_jpg.rf.c93f36cebb4d905baa09c63b19e2a9c1
test/IMG-20240324-WA0495_jpg.rf.df50770dc9057a8aec19626a1bea715e
test/WhatsApp-Image-2024-03-27-at-12-43-35_jpeg.rf.24953b72b9735206c1c433bd9dd17646
"""


def _parse_selection(text: str) -> dict[str, list[str]]:
    """Read `split stem` lines into {split: [stems]} (keeps order)."""
    out: dict[str, list[str]] = collections.defaultdict(list)
    for line in text.split():
        split, _, stem = line.partition("/")
        out[split].append(stem)
    return dict(out)


def reselect(source: Path = SOURCE) -> dict[str, list[str]]:
    """Apply the selection rule of the module docstring to `source`."""
    chosen: dict[str, list[str]] = {}
    for split, quota in QUOTA.items():
        info: dict[str, tuple[int, set[int]]] = {}
        for image in sorted((source / split / "images").iterdir()):
            label = source / split / "labels" / f"{image.stem}.txt"
            lines = [ln for ln in label.read_text().splitlines() if ln.strip()]
            info[image.stem] = (image.stat().st_size, {int(ln.split()[0]) for ln in lines})
        picked = list(FORCED[split])
        seen: collections.Counter[int] = collections.Counter()
        for stem in picked:
            seen.update(info[stem][1])
        pool = [s for s, (size, cls) in info.items() if s not in picked and cls and size < MAX_BYTES]
        while len(picked) < quota:
            def gain(stem: str) -> tuple[float, int, str]:
                size, cls = info[stem]
                return (round(sum(1 / (1 + seen[c]) for c in cls), 6), -size, stem)
            best = max(pool, key=gain)
            picked.append(best)
            pool.remove(best)
            seen.update(info[best][1])
        chosen[split] = picked
    return chosen


ATTRIBUTION = """\
# Attribution

The images and labels in this folder are a subset ({n} of 1,901 images) of

**FOOD INGREDIENTS DETECTION, version 48** by the Roboflow user *yaman-e*
<https://universe.roboflow.com/yaman-e/food-ingredients-detection-qfit7/dataset/48>

licensed under the **Creative Commons Attribution 4.0 International license (CC BY 4.0)**,
<https://creativecommons.org/licenses/by/4.0/>.

Changes: only a selection of files was made (see `scripts/make_sample.py` in the curate repository);
every copied image, label file, `data.yaml` and README is byte-identical to the Roboflow export
of April 11, 2025. The near-duplicate photos across splits, the polygon label lines and the empty
label file are the export's own and are kept on purpose, as test material for `curate`.
"""


def copy_sample(selection: dict[str, list[str]], *, source: Path = SOURCE, target: Path = TARGET) -> None:
    """Copy the chosen images and labels, data.yaml and READMEs; write ATTRIBUTION.md."""
    if target.exists():
        shutil.rmtree(target)
    for split, stems in selection.items():
        for kind in ("images", "labels"):
            (target / split / kind).mkdir(parents=True)
        for stem in stems:
            shutil.copy2(source / split / "images" / f"{stem}.jpg", target / split / "images")
            shutil.copy2(source / split / "labels" / f"{stem}.txt", target / split / "labels")
    for name in ("data.yaml", "README.roboflow.txt", "README.dataset.txt"):
        shutil.copy2(source / name, target / name)
    count = sum(len(stems) for stems in selection.values())
    (target / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(n=count))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reselect", action="store_true", help="print the list the rule picks now")
    args = parser.parse_args()
    if not SOURCE.is_dir():
        print(f"error: source dataset not found: {SOURCE}", file=sys.stderr)
        return 1
    if args.reselect:
        for split, stems in reselect().items():
            print("\n".join(f"{split}/{stem}" for stem in stems))
        return 0
    copy_sample(_parse_selection(SELECTION_TEXT))
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
