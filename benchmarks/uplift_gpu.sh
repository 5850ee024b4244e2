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
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${1:-all}
DATASET=${DATASET:-../shared/datasets/bccd-blood-cells}
OUT=${OUT:-reports/bench/uplift-gpu}
SEEDS=${SEEDS:-0}
EPOCHS=${EPOCHS:-60}
export FIFTYONE_DO_NOT_TRACK=true YOLO_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1

if [ "$STAGE" = prepare ] || [ "$STAGE" = all ]; then
  PY=${PY:-.venv/bin/python}
  [ -x "$PY" ] || make setup
  for seed in $SEEDS; do
    "$PY" benchmarks/uplift.py --stage prepare --dataset "$DATASET" --out "$OUT/seed$seed" --seed "$seed"
  done
  if [ "$STAGE" = prepare ]; then
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
      --epochs "$EPOCHS" --imgsz 640 --batch 32 --workers 8 --device 0
  done
  for seed in $SEEDS; do echo "== seed $seed"; cat "$OUT/seed$seed/uplift.md"; done
fi
