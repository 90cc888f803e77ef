# Two commands for a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of PyTorch; on a CUDA machine set TORCH_SPEC to the build you want.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-slow bench bench-anjana schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/privpipe demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not slow"

# The long runs (large data, whole served schedules): CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/synth_throughput.py
	$(BIN)/python benchmarks/sanitize_throughput.py
	$(BIN)/python benchmarks/sanitize_end_to_end.py
	$(BIN)/python benchmarks/fixed_cost.py
	$(BIN)/python benchmarks/seal_throughput.py
	$(BIN)/python benchmarks/audit_throughput.py
	$(BIN)/python benchmarks/detect_benchmark.py
	$(MAKE) bench-anjana
	$(BIN)/python benchmarks/kanon_adult.py --scale
	$(BIN)/python benchmarks/dp_training.py
	$(BIN)/python benchmarks/sanitize_memory.py

# anjana (the k-anonymity anchor) pins numpy and typing-extensions below privpipe's
# needs, so it gets its own environment.
bench-anjana: benchmarks/.venv-anjana/.stamp
benchmarks/.venv-anjana/.stamp:
	python3 -m venv benchmarks/.venv-anjana
	benchmarks/.venv-anjana/bin/pip install --quiet anjana==1.2.3
	touch $@

schema: $(STAMP)
	$(BIN)/privpipe policy schema --out policies/policy.schema.json

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
