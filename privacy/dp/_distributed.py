"""DP-SGD in several processes: PyTorch's distributed data parallel with Opacus'.

Each process holds the whole training set and wraps the same model (the same seed) in
Opacus' ``DifferentiallyPrivateDistributedDataParallel``; ``make_private_with_epsilon``
then gives every process a distributed Poisson sampler over its share of the records at
the single-process sample rate (the batch size over all the training rows) and the
distributed DP optimizer, which adds the noise once (on rank 0) to the averaged clipped
gradients. The noise multiplier is solved from the same sample rate, epochs, ε and δ,
and the accountant counts the same steps, so ε, δ, steps and noise equal the
single-process run's for the same policy (tested with two CPU processes). gloo on CPU,
NCCL on CUDA (one GPU per process). Only rank 0 reports: the trained weights and its
accountant's figures; the caller charges the ledger once, before, and seals one model.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from privacy.childenv import spawn_context
from privacy.dp._checkpoint import decode_weights, encode_weights
from privacy.dp._model import QUIET_WARNINGS, build_model
from privacy.errors import PolicyError
from privacy.policy import TrainingSpec

__all__ = ["train_distributed"]

_TIMEOUT_S = 3600


def train_distributed(
    nproc: int,
    x: Any,
    y: Any,
    spec: Any,
    *,
    delta: float,
    width: int,
    weight: Any,
    device: str,
) -> dict[str, Any]:
    """Train ``spec``'s model with DP-SGD on (``x``, ``y``) in ``nproc`` processes; returns
    rank 0's state dict (CPU tensors) and its accountant's figures."""
    import torch
    import torch.multiprocessing  # its tensor reductions, for the payload

    if device == "cuda" and torch.cuda.device_count() < nproc:
        raise PolicyError(
            f"--nproc {nproc}: only {torch.cuda.device_count()} CUDA devices here "
            "(one process per GPU)"
        )
    ctx = spawn_context()  # the workers start with the allow-listed environment
    queue = ctx.SimpleQueue()
    payload = {
        "x": x.cpu(),
        "y": y.cpu(),
        "spec": spec.model_dump(),
        "delta": delta,
        "width": width,
        "weight": None if weight is None else weight.cpu(),
        "device": device,
    }
    with tempfile.TemporaryDirectory(prefix="privpipe-ddp-") as rendezvous:
        init = Path(rendezvous) / "init"
        workers = [
            ctx.Process(target=_worker, args=(rank, nproc, str(init), payload, queue), daemon=True)
            for rank in range(nproc)
        ]
        for worker in workers:
            worker.start()
        result: dict[str, Any] | None = None
        deadline = time.monotonic() + _TIMEOUT_S
        # read rank 0's report while it runs: a process blocks on a full pipe until read
        while result is None and time.monotonic() < deadline:
            if not queue.empty():
                result = queue.get()
            elif not any(w.is_alive() for w in workers):
                break
            else:
                workers[0].join(0.2)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
        failed = [w.exitcode for w in workers if w.exitcode != 0]
        if failed or result is None:
            raise RuntimeError(f"distributed training failed (exit codes {failed})")
    result["state"] = decode_weights(result.pop("weights"))
    return result


def _worker(rank: int, world: int, init: str, payload: dict[str, Any], queue: Any) -> None:
    import warnings

    import torch
    import torch.distributed as dist
    from opacus import PrivacyEngine
    from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP
    from torch import nn

    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    spec = TrainingSpec.model_validate(payload["spec"])
    cuda = payload["device"] == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    target = torch.device(f"cuda:{rank}" if cuda else "cpu")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(
        "nccl" if cuda else "gloo", init_method=f"file://{init}", rank=rank, world_size=world
    )
    try:
        torch.manual_seed(spec.seed)  # the same initial weights in every process
        model = DPDDP(
            build_model(spec.model, payload["width"], spec.hidden_sizes, spec.fix_modules).to(
                target
            )
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
        weight = payload["weight"]
        criterion = nn.CrossEntropyLoss(weight=None if weight is None else weight.to(target))
        x, y = payload["x"].to(target), payload["y"].to(target)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y),
            batch_size=spec.batch_size,
            generator=torch.Generator().manual_seed(spec.seed + rank),
        )
        engine = PrivacyEngine(accountant=spec.accountant)
        model, optimizer, loader = engine.make_private_with_epsilon(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            target_epsilon=spec.epsilon,
            target_delta=payload["delta"],
            epochs=spec.epochs,
            max_grad_norm=spec.max_grad_norm,
            grad_sample_mode="hooks",
            poisson_sampling=True,
        )
        for _ in range(spec.epochs):
            model.train()
            for xb, yb in loader:
                if len(xb) == 0:  # Poisson sampling can draw an empty batch
                    continue
                optimizer.zero_grad()
                criterion(model(xb), yb).backward()
                optimizer.step()
        if rank == 0:
            base = model._module.module if hasattr(model._module, "module") else model._module
            queue.put(
                {
                    "weights": encode_weights(base.state_dict()),  # safetensors bytes
                    "epsilon": float(engine.get_epsilon(payload["delta"])),
                    "noise_multiplier": float(optimizer.noise_multiplier),
                    "sample_rate": 1.0 / len(loader),
                    "steps": int(sum(n for _, _, n in engine.accountant.history)),
                    "processes": world,
                    "backend": "nccl" if cuda else "gloo",
                }
            )
    finally:
        dist.destroy_process_group()
