#!/usr/bin/env bash
# The GPU checks in one short run (a few minutes on one H200-class card): the CUDA tests
# and the DP training benchmark on CUDA. Needs a Python with CUDA torch and privpipe's
# dependencies (PYTHON, default .venv/bin/python) and ../shared/data/adult.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name(0))'
"$PYTHON" -m pytest -q -m gpu tests/dp
"$PYTHON" benchmarks/dp_training.py --device cuda
