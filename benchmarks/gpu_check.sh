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
# distributed DP-SGD with every GPU here (NCCL, one process per GPU): the same ε as one
"$PYTHON" - <<'PY'
import torch
import yaml
from privacy.dp import train_model
from privacy.policy import policy_from_dict
from privacy.synth import synthesize

if __name__ == "__main__":
    gpus = torch.cuda.device_count()
    data = yaml.safe_load(open("policies/demo.yaml"))
    data["training"] = {**data["training"], "epochs": 2}
    policy, people = policy_from_dict(data), synthesize(20_000, seed=3)
    one = train_model(people, policy, run_id="gpu-1", ledger=None, device="cuda").card
    many = train_model(people, policy, run_id=f"gpu-{gpus}", ledger=None, device="cuda", nproc=max(gpus, 1)).card
    a, b = one["privacy"], many["privacy"]
    print(f"DDP on {gpus} GPU(s): ε {b['epsilon']} vs {a['epsilon']} in one process; steps {b['steps']} vs {a['steps']}; {b['grad_sample_mode']}")
    assert a["epsilon"] == b["epsilon"] and a["steps"] == b["steps"]
PY
