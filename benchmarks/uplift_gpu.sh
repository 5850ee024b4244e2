#!/usr/bin/env bash
# The uplift experiment (benchmarks/uplift.py) at real scale on one NVIDIA GPU: imgsz 640, 60 epochs,
# bccd-blood-cells with 2.5 % planted errors per kind (about 17 % of the train boxes in all).
#
#   bash benchmarks/uplift_gpu.sh prepare   # here, with the project's venv: plant, audit, export (FiftyOne)
#   bash benchmarks/uplift_gpu.sh train     # on the GPU machine: the three trainings and the table
#   bash benchmarks/uplift_gpu.sh all       # both, on one machine with a GPU and the venv (a user's box)
#
# Why two halves: the audit and the export need FiftyOne and its database, which a bare GPU machine does not
# have; the trainings need only torch and Ultralytics. `prepare` writes the three small datasets (~35 MB for
# bccd) under reports/bench/uplift-gpu/ and downloads the wheels the GPU side lacks (Ultralytics and its
# few missing needs) into .whl/; `train` installs those wheels into /tmp/site, offline, and trains.
# With the `device` tool: run `prepare` here, then `run` with carry ["reports/bench/uplift-gpu", ".whl", ".yolo"]
# and the command `bash benchmarks/uplift_gpu.sh train`. Sized for under 8 minutes on one H100 (three
# trainings of 60 epochs on 205 images at 640 px, batch 32); SEEDS="0 1 2" runs more seeds, in sequence.
#
# Smoke check on a CPU, from a fresh copy, no network (OFFLINE=1: no `make setup`, no wheel download; PY names
# a Python with curate's needs):
#   OFFLINE=1 PY=/path/to/.venv/bin/python LIMIT=30 EPOCHS=2 IMGSZ=64 BATCH=8 WORKERS=0 DEVICE=cpu \
#     OUT=/tmp/uplift-smoke bash benchmarks/uplift_gpu.sh all
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${1:-all}
DATASET=${DATASET:-../shared/datasets/bccd-blood-cells}
OUT=${OUT:-reports/bench/uplift-gpu}
SEEDS=${SEEDS:-0}
EPOCHS=${EPOCHS:-60}
IMGSZ=${IMGSZ:-640}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-8}
DEVICE=${DEVICE:-0}
RATE=${RATE:-0.025}
LIMIT=${LIMIT:-}      # only the first N train images (a smoke run)
OFFLINE=${OFFLINE:-0} # 1: no network: no `make setup`, no wheel download (PY must have what prepare needs)
export FIFTYONE_DO_NOT_TRACK=true YOLO_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # this checkout's curate, whichever venv PY belongs to

if [ "$STAGE" = prepare ] || [ "$STAGE" = all ]; then
  PY=${PY:-.venv/bin/python}
  if [ ! -x "$PY" ]; then
    [ "$OFFLINE" = 1 ] && { echo "OFFLINE=1: $PY is not a Python; set PY to one with curate installed" >&2; exit 1; }
    make setup
  fi
  for seed in $SEEDS; do
    "$PY" benchmarks/uplift.py --stage prepare --dataset "$DATASET" --out "$OUT/seed$seed" --seed "$seed" \
      --rate "$RATE" ${LIMIT:+--limit "$LIMIT"}
  done
  if [ "$STAGE" = prepare ] && [ "$OFFLINE" != 1 ]; then
    mkdir -p .whl
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
      ultralytics-opencv-headless ultralytics-thop polars polars-runtime-32 pydantic pydantic-core \
      annotated-types typing-inspection
  fi
fi

if [ "$STAGE" = train ] || [ "$STAGE" = all ]; then
  PY=${PY:-python3}
  if [ -d .whl ] && [ "$STAGE" = train ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
  fi
  export YOLO_CONFIG_DIR=${YOLO_CONFIG_DIR:-$PWD/.yolo}
  for seed in $SEEDS; do
    "$PY" benchmarks/uplift.py --stage train --out "$OUT/seed$seed" --seed "$seed" \
      --epochs "$EPOCHS" --imgsz "$IMGSZ" --batch "$BATCH" --workers "$WORKERS" --device "$DEVICE"
  done
  for seed in $SEEDS; do echo "== seed $seed"; cat "$OUT/seed$seed/uplift.md"; done
fi
