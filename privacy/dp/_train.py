"""Differentially private training with Opacus, evaluation, and the membership test.

DP-SGD through Opacus' ``make_private_with_epsilon``: the noise multiplier is solved for
the policy's target ε at its δ over the planned epochs, with Poisson sampling and the
PRV accountant by default (GDP under-reports and is never offered; RDP over-reports and
is allowed). Per-sample clipping uses ghost clipping (``grad_sample_mode="ghost"``, which
returns model, optimizer, criterion and loader) and falls back to hooks, recorded, when a
layer does not support it. Tensors are fed from memory; torch runs on the machine's
cores with one inter-op thread (oversubscription made steps 50x slower here).

Weights and checkpoints are safetensors (``privacy.dp._checkpoint``): nothing a
checkpoint holds is unpickled. A checkpoint carries the generators' states, so a
resumed run draws fresh batches and fresh noise rather than replaying its first epoch's.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from privacy.crypto import KeyEncryptionProvider
from privacy.dp._audit import canary_bound, membership_inference
from privacy.dp._checkpoint import (
    checkpoint_binding,
    encode_checkpoint,
    encode_weights,
    open_checkpoint,
    require_checkpoint_scope,
    seal_checkpoint,
)
from privacy.dp._distributed import train_distributed
from privacy.dp._encode import TabularEncoder, feature_columns
from privacy.dp._ledger import BudgetLedger, DataIdentity
from privacy.dp._model import QUIET_WARNINGS, build_model, torch_threads
from privacy.errors import InputError, IntegrityError, PolicyError, TrainingStopped
from privacy.policy import Policy, TrainingSpec, load_policy

__all__ = ["TrainResult", "TrainingStopped", "train_model", "train_private"]

Progress = Callable[[int, int], None]


@dataclass
class TrainResult:
    card: dict[str, Any]
    weights: bytes  # safetensors of the model's state dict (privacy.dp.encode_weights)
    encoder: TabularEncoder


def _split(frame: pl.DataFrame, label: str, test_size: float, seed: int) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    index = np.arange(frame.height)
    y = frame.get_column(label).cast(pl.String).fill_null("").to_numpy()
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=y)
    return frame[np.sort(train)], frame[np.sort(test)]


def train_model(
    frame: pl.DataFrame,
    policy: Policy,
    *,
    run_id: str,
    ledger: BudgetLedger | None,
    device: str = "auto",
    data_sha256: str | None = None,
    data: DataIdentity | None = None,
    progress: Progress | None = None,
    checkpoint: Path | None = None,
    keys: KeyEncryptionProvider | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    source: str | None = None,
    nproc: int = 1,
) -> TrainResult:
    """Train the policy's model on ``frame`` (a sanitize output), charging the ledger
    before training when the run is private. ``data`` is the data's identity for the
    ledger (default: the frame's own digest, :meth:`DataIdentity.of_frame`);
    ``data_sha256`` the data file's SHA-256, for the card.

    With ``checkpoint`` (and ``keys``, the ``vault`` scope's, to seal it), the model,
    optimizer, accountant and generators are saved after every epoch, bound to
    ``run_id``, the data and the policy; ``resume`` continues run ``run_id`` from that
    file, with the same noise multiplier and the accountant's history, so ε comes out as
    an uninterrupted run's. The first resume of a checkpoint is covered by the run's
    charge; resuming the same checkpoint again (a copy) is charged again. ``stop_after``
    ends the run after that many epochs in all (a time-limited job), leaving the
    checkpoint to resume from. ``source`` names what ``frame`` is for the card
    (``published``, ``deidentified``, ``frame``: one the caller gave; default: the
    policy's ``training.input``). ``nproc`` > 1 trains in that many processes with
    distributed data parallel (:mod:`privacy.dp._distributed`): the same ε, δ, steps and
    noise as one process, one charge; no per-epoch checkpoint is written then.

    The steps, in order, each a function of its own: check the arguments, pick the
    device, prepare the data, charge the budget, train, evaluate, write the card."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    spec = policy.training
    checkpoint = _check_arguments(frame, spec, nproc=nproc, resume=resume, checkpoint=checkpoint)
    started = time.perf_counter()
    target = _pick_device(device, spec.seed)
    prepared = _prepare_data(frame, policy, target)
    charge = _charge_budget(
        prepared,
        frame,
        policy,
        ledger=ledger,
        run_id=run_id,
        data=data,
        data_sha256=data_sha256,
        checkpoint=checkpoint,
        keys=keys,
        resume=resume,
    )
    if nproc > 1:
        trained = _train_distributed(prepared, spec, nproc, target, progress)
    else:
        trained = _train_here(
            prepared,
            spec,
            target,
            charge,
            run_id=run_id,
            checkpoint=checkpoint,
            keys=keys,
            stop_after=stop_after,
            progress=progress,
        )
    evaluation = _evaluate(trained.model, prepared, spec, target)
    card = _write_card(
        policy,
        prepared,
        charge,
        trained,
        evaluation,
        run_id=run_id,
        data_sha256=data_sha256,
        source=source or spec.reads,
        device=target.type,
        seconds=time.perf_counter() - started,
    )
    return TrainResult(card, encode_weights(trained.model.state_dict()), charge.encoder)


def _check_arguments(
    frame: pl.DataFrame, spec: TrainingSpec, *, nproc: int, resume: bool, checkpoint: Path | None
) -> Path | None:
    """Refuse what cannot run, before any work; the checkpoint a run writes (none for a
    distributed one, which is not checkpointed per epoch)."""
    label = spec.label
    if label is None or label not in frame.columns:
        raise PolicyError(f"training.label: the data has no column {label!r}")
    if nproc < 1:
        raise PolicyError(f"--nproc: at least 1, not {nproc}")
    if nproc > 1:
        refused = (
            "training.dp: false (a non-private baseline runs in one process)"
            if not spec.dp
            else "--resume"
            if resume
            else "training.max_physical_batch_size"
            if spec.max_physical_batch_size is not None
            else None
        )
        if refused:
            raise PolicyError(f"--nproc {nproc}: not with {refused}")
        return None
    return checkpoint


def _pick_device(device: str, seed: int) -> Any:
    """The torch device (``auto``: CUDA where there is one), with torch's threads and
    the seeds set."""
    import torch

    torch_threads()
    torch.manual_seed(seed)
    np.random.seed(seed)
    target = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else "cpu"
        if device == "auto"
        else device
    )
    if target.type == "cuda" and not torch.cuda.is_available():
        raise PolicyError("--device cuda: no CUDA device is available here")
    return target


@dataclass
class _Prepared:
    """The data as the model sees it: encoded tensors on the device, the canaries
    planted among the training rows, and δ and the class weights for ``n`` rows."""

    columns: list[str]
    encoder: TabularEncoder
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: npt.NDArray[Any]
    canaries: tuple[Any, Any, npt.NDArray[np.bool_]] | None
    delta: float
    weight: Any

    @property
    def n(self) -> int:
        return len(self.y_train)


def _prepare_data(frame: pl.DataFrame, policy: Policy, target: Any) -> _Prepared:
    """Split, encode, check the model (refused before any charge), plant the canaries,
    and fix δ (default 1/(10 n), refused above 1/n) and the class weights."""
    import torch

    spec = policy.training
    label = str(spec.label)
    train_frame, test_frame = _split(frame, label, spec.test_size, spec.seed)
    columns = feature_columns(policy, frame, label)
    encoder = TabularEncoder.fit(train_frame, columns, label, spec.positive_class)
    build_model(spec.model, encoder.width, spec.hidden_sizes, spec.fix_modules)
    x_train = torch.from_numpy(encoder.features(train_frame)).to(target)
    y_train = torch.from_numpy(encoder.labels(train_frame)).to(target)
    x_test = torch.from_numpy(encoder.features(test_frame)).to(target)
    y_test = encoder.labels(test_frame)
    canaries = None
    if spec.canaries:  # copies of training rows with random labels, each kept with p = 1/2
        draw = np.random.default_rng(spec.seed + 1)
        rows = torch.from_numpy(draw.integers(0, len(y_train), spec.canaries)).to(target)
        canary_x = x_train[rows].clone()
        canary_y = torch.from_numpy(draw.integers(0, 2, spec.canaries)).to(target)
        planted = draw.random(spec.canaries) < 0.5
        keep = torch.from_numpy(planted).to(target)
        x_train = torch.cat([x_train, canary_x[keep]])
        y_train = torch.cat([y_train, canary_y[keep]])
        canaries = (canary_x, canary_y, planted)
    n = len(y_train)
    delta = spec.delta if spec.delta is not None else 1.0 / (10 * n)
    if delta > 1.0 / n:
        raise PolicyError(
            f"training.delta: {delta:g} is above 1/n = {1.0 / n:g} for {n} training rows"
        )
    weight = None
    if spec.class_weight == "balanced":
        counts = np.bincount(y_train.cpu().numpy(), minlength=2).astype(np.float64)
        weight = torch.tensor(n / (2 * np.maximum(counts, 1)), dtype=torch.float32).to(target)
    return _Prepared(columns, encoder, x_train, y_train, x_test, y_test, canaries, delta, weight)


@dataclass
class _Charge:
    """What the budget step settled: the data's identity, the checkpoint binding, the
    checkpoint resumed (if any), the encoder to train with, and the ledger's entry."""

    label: str
    bound: dict[str, str]
    saved: _Saved | None
    encoder: TabularEncoder
    entry: dict[str, Any] | None


def _charge_budget(
    prepared: _Prepared,
    frame: pl.DataFrame,
    policy: Policy,
    *,
    ledger: BudgetLedger | None,
    run_id: str,
    data: DataIdentity | None,
    data_sha256: str | None,
    checkpoint: Path | None,
    keys: KeyEncryptionProvider | None,
    resume: bool,
) -> _Charge:
    """Charge the ledger before any training (a refused run touches nothing), known by
    its people and records over the rows this run reads as well as by its digests; a
    resumed checkpoint is read (and checked) first, its own charge rules applying."""
    spec = policy.training
    label_name = spec.dataset or policy.name
    if data is None and (ledger is not None or checkpoint is not None):
        data = DataIdentity.of_frame(frame)
    identity = DataIdentity(
        data.sanitized_sha256 if data else (data_sha256 or ""),
        data.input_hmac_sha256 if data else None,
        data.input_key_id if data else None,
        label_name,
    )
    saved: _Saved | None = None
    encoder = prepared.encoder
    bound = checkpoint_binding(
        run_id=run_id, data_sha256=identity.sanitized_sha256, policy_sha256=policy.hash
    )
    if checkpoint is not None and keys is not None:
        require_checkpoint_scope(keys, checkpoint)  # before any charge
    if resume:
        if checkpoint is None or keys is None or not checkpoint.exists():
            raise InputError(f"{checkpoint}: no checkpoint to resume from")
        saved = _Saved.load(checkpoint, keys, bound, spec)
        encoder = TabularEncoder.from_dict(saved.state["encoder"])
    entry = None
    if spec.dp and ledger is not None:
        identity = ledger.identify(identity, frame, policy)
        eps, budget, delta = spec.epsilon, spec.budget, prepared.delta
        if saved is None:
            entry = ledger.charge(identity, epsilon=eps, delta=delta, budget=budget, run_id=run_id)
        else:
            entry = ledger.resume(
                identity,
                epsilon=eps,
                delta=delta,
                budget=budget,
                run_id=run_id,
                checkpoint_id=saved.checkpoint_id,
            )
    return _Charge(label_name, bound, saved, encoder, entry)


@dataclass
class _Trained:
    """The trained model (the plain module, in eval mode), how its gradients were
    clipped, and its privacy figures (None when it trained without DP)."""

    model: Any
    mode: str
    figures: dict[str, Any] | None


def _train_distributed(
    prepared: _Prepared, spec: TrainingSpec, nproc: int, target: Any, progress: Progress | None
) -> _Trained:
    """DDP in ``nproc`` processes: one accountant's figures (rank 0's), the weights it
    trained."""
    distributed = train_distributed(
        nproc,
        prepared.x_train,
        prepared.y_train,
        spec,
        delta=prepared.delta,
        width=prepared.encoder.width,
        weight=prepared.weight,
        device=target.type,
    )
    model = build_model(spec.model, prepared.encoder.width, spec.hidden_sizes, spec.fix_modules)
    model.load_state_dict(distributed["state"])
    model = model.to(target)
    if progress is not None:
        progress(spec.epochs, spec.epochs)
    figures = {k: distributed[k] for k in ("epsilon", "noise_multiplier", "sample_rate")}
    figures |= {"steps": distributed["steps"], "processes": nproc}
    model.eval()
    return _Trained(model, f"hooks ({nproc} processes, {distributed['backend']})", figures)


def _train_here(
    prepared: _Prepared,
    spec: TrainingSpec,
    target: Any,
    charge: _Charge,
    *,
    run_id: str,
    checkpoint: Path | None,
    keys: KeyEncryptionProvider | None,
    stop_after: int | None,
    progress: Progress | None,
) -> _Trained:
    """The training loop in this process: made private by Opacus when the policy says
    so (resuming the checkpoint's noise and accountant), checkpointed after each epoch,
    a logical batch split into physical ones where the policy caps them."""
    import torch
    from torch import nn

    encoder, saved = charge.encoder, charge.saved

    def fresh() -> tuple[Any, Any, Any, Any]:
        torch.manual_seed(spec.seed)
        model = build_model(spec.model, encoder.width, spec.hidden_sizes, spec.fix_modules).to(
            target
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
        criterion = nn.CrossEntropyLoss(weight=prepared.weight)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(prepared.x_train, prepared.y_train),
            batch_size=spec.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(spec.seed),
        )
        return model, optimizer, criterion, loader

    session_checkpoint = "ckpt-" + secrets.token_hex(8)  # what this session's checkpoints carry
    engine = None
    model, optimizer, criterion, loader = fresh()
    mode: str = spec.grad_sample_mode
    if spec.dp:
        noise = saved.noise_multiplier if saved is not None else None
        model, optimizer, criterion, loader, engine, mode = _make_private(
            fresh, spec, prepared.delta, noise
        )
    first_epoch = 0
    if saved is not None:
        first_epoch = saved.restore(model, optimizer, engine, loader, target)
    last = spec.epochs if stop_after is None else min(spec.epochs, stop_after)
    for epoch in range(first_epoch, last):
        _one_epoch(model, optimizer, criterion, loader, engine, spec)
        if checkpoint is not None and keys is not None:
            payload = _Saved.encode(
                model, optimizer, engine, loader, target, encoder, run_id, session_checkpoint
            )
            seal_checkpoint(checkpoint, payload(epoch + 1), keys, charge.bound)
        if progress is not None:
            progress(epoch + 1, spec.epochs)
    if last < spec.epochs:
        raise TrainingStopped(
            f"training stopped after epoch {last} of {spec.epochs}; resume from {checkpoint}"
        )
    figures = None
    if engine is not None:
        figures = {
            "epsilon": float(engine.get_epsilon(prepared.delta)),
            "noise_multiplier": float(optimizer.noise_multiplier),
            "sample_rate": 1.0 / len(loader),
            "steps": sum(n_steps for _, _, n_steps in engine.accountant.history),
            "processes": 1,
        }
    base = model._module if hasattr(model, "_module") else model
    base.eval()
    return _Trained(base, mode, figures)


def _one_epoch(
    model: Any, optimizer: Any, criterion: Any, loader: Any, engine: Any, spec: TrainingSpec
) -> None:
    """One pass over the loader; with a physical batch cap under DP, each logical batch
    in physical pieces and one noisy step per logical batch."""
    model.train()
    physical = spec.max_physical_batch_size
    split = engine is not None and physical is not None and physical < spec.batch_size
    with contextlib.ExitStack() as stack:
        batches = loader
        if split:
            from opacus.utils.batch_memory_manager import BatchMemoryManager

            batches = stack.enter_context(
                BatchMemoryManager(
                    data_loader=loader, max_physical_batch_size=physical, optimizer=optimizer
                )
            )
        for xb, yb in batches:
            if len(xb) == 0:  # Poisson sampling can draw an empty batch
                continue
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()


@dataclass
class _Evaluation:
    metrics: dict[str, Any]
    membership: dict[str, Any]
    canary_audit: dict[str, Any] | None


def _evaluate(model: Any, prepared: _Prepared, spec: TrainingSpec, target: Any) -> _Evaluation:
    """The test split's metrics, the canary audit (where canaries were planted) and the
    loss-threshold membership-inference attack on train against test rows."""
    import torch
    from torch import nn

    with torch.no_grad():
        test_logits = model(prepared.x_test)
        train_logits = model(prepared.x_train)
    y_test = prepared.y_test
    metrics = _metrics(y_test, torch.softmax(test_logits, 1)[:, 1].cpu().numpy(), spec.threshold)
    audit = None
    if prepared.canaries is not None:
        canary_x, canary_y, planted = prepared.canaries
        with torch.no_grad():
            canary_loss = nn.functional.cross_entropy(model(canary_x), canary_y, reduction="none")
        audit = canary_bound(-canary_loss.cpu().numpy(), planted)
    membership = membership_inference(
        nn.functional.cross_entropy(train_logits, prepared.y_train, reduction="none").cpu().numpy(),
        nn.functional.cross_entropy(
            test_logits, torch.from_numpy(y_test).to(target), reduction="none"
        )
        .cpu()
        .numpy(),
        spec.seed,
    )
    return _Evaluation(metrics, membership, audit)


def _write_card(
    policy: Policy,
    prepared: _Prepared,
    charge: _Charge,
    trained: _Trained,
    evaluation: _Evaluation,
    *,
    run_id: str,
    data_sha256: str | None,
    source: str,
    device: str,
    seconds: float,
) -> dict[str, Any]:
    """The model card: what was trained on what, its privacy (or the warning that it
    has none), its metrics and attacks, and the libraries' versions."""
    import opacus
    import sklearn
    import torch

    spec = policy.training
    encoder = charge.encoder
    return {
        "model_version": str(uuid.uuid4()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "model": {
            "kind": spec.model,
            "hidden_sizes": spec.hidden_sizes if spec.model == "mlp" else [],
            "fix_modules": spec.fix_modules if ":" in spec.model else None,
            "features": encoder.width,
            "label": spec.label,
            "positive_class": encoder.positive,
            "class_weight": spec.class_weight,
            "learning_rate": spec.learning_rate,
            "batch_size": spec.batch_size,
        },
        "data": {
            "sha256": data_sha256,
            "input": source,
            "input_why": _input_why(source, policy),
            "rows_train": prepared.n,
            "rows_test": len(prepared.y_test),
            "feature_columns": prepared.columns,
        },
        "policy": policy.identity(),
        "privacy": _privacy_section(spec, prepared.delta, charge, trained),
        "metrics": evaluation.metrics,
        "membership_inference": evaluation.membership,
        "canary_audit": evaluation.canary_audit,
        "device": device,
        "training_seconds": round(seconds, 3),
        "libraries": {
            "torch": torch.__version__,
            "opacus": opacus.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "polars": pl.__version__,
        },
    }


def _privacy_section(
    spec: TrainingSpec, delta: float, charge: _Charge, trained: _Trained
) -> dict[str, Any]:
    """The card's ``privacy``: ε spent (from Opacus' accountant), δ, the noise and the
    sampling, and the ledger's charge; or NOT PRIVATE."""
    figures, entry, saved = trained.figures, charge.entry, charge.saved
    if figures is None:
        return {
            "private": False,
            "warning": "NOT PRIVATE: trained without differential privacy (training.dp: false)",
            "epochs": spec.epochs,
        }
    return {
        "private": True,
        "epsilon": round(figures["epsilon"], 6),
        "target_epsilon": spec.epsilon,
        "delta": delta,
        "accountant": spec.accountant,
        "noise_multiplier": figures["noise_multiplier"],
        "sample_rate": figures["sample_rate"],
        "steps": int(figures["steps"]),
        "processes": figures["processes"],
        "epochs": spec.epochs,
        "max_grad_norm": spec.max_grad_norm,
        "poisson_sampling": True,
        "grad_sample_mode": trained.mode,
        "ledger": {
            "dataset": entry["dataset"] if entry else None,
            "label": charge.label,
            "budget": spec.budget,
            "spent_after": entry["epsilon_spent"] if entry else None,
            "charged": entry["charged"] if entry else None,
            "resumed_checkpoint": saved.checkpoint_id if saved is not None else None,
        },
    }


def train_private(
    frame: pl.DataFrame,
    policy: Policy | str | Path,
    *,
    ledger: BudgetLedger | None = None,
    device: str = "auto",
    **training: Any,
) -> TrainResult:
    """Train the policy's model with DP-SGD on ``frame``, from a notebook or a script.

    ``policy`` is a :class:`Policy` or a policy file; keyword arguments override its
    ``training`` section for this call and are validated as the policy's are
    (``epsilon=0.5``, ``model="mypackage.models:make"``, ``fix_modules=True``). Only
    private training: ``dp=False`` is refused. With ``ledger`` the run is charged to the
    data set's budget before training, as ``privpipe train`` charges it; without one
    nothing is recorded, and the card's ε is this run's alone.

    >>> result = train_private(frame, "policy.yaml", epsilon=1.0, epochs=10)
    >>> result.card["privacy"]["epsilon"], result.card["metrics"]["f1"]
    """

    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    if training:
        try:
            spec = TrainingSpec.model_validate(
                {**policy.training.model_dump(), "enabled": True, **training}
            )
        except ValueError as exc:
            raise PolicyError(f"training: {exc}") from None
        policy = policy.model_copy(update={"training": spec})
    if not policy.training.dp:
        raise PolicyError("train_private trains with differential privacy only: dp is false")
    return train_model(
        frame,
        policy,
        run_id=f"notebook-{uuid.uuid4()}",
        ledger=ledger,
        device=device,
        source="frame",
    )


def _input_why(reads: str, policy: Policy) -> str:
    """Why training on this input is safe, in words, for the card and the report."""
    if reads == "frame":
        return (
            "a frame given to train_private: what it holds is the caller's to judge; DP "
            "training bounds what the model reveals about any one of its rows"
        )
    if reads == "deidentified":
        return (
            "the transform stage's output before generalization: direct identifiers "
            "removed or pseudonymized, quasi-identifiers intact; sealed under the vault "
            "scope and read only by DP training, whose (epsilon, delta) bounds what the "
            "model reveals about any one record"
        )
    return f"the published release, {policy.privacy.k}-anonymous by the policy" + (
        "; DP training bounds what the model reveals beyond it" if policy.training.dp else ""
    )


def _base(model: Any) -> Any:
    return model._module if hasattr(model, "_module") else model


@dataclass
class _Saved:
    """A checkpoint as read back: tensors and JSON (see ``privacy.dp._checkpoint``)."""

    model: dict[str, Any]
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    state: dict[str, Any]

    @property
    def checkpoint_id(self) -> str:
        return str(self.state["checkpoint_id"])

    @property
    def noise_multiplier(self) -> float | None:
        value = self.state.get("noise_multiplier")
        return None if value is None else float(value)

    @classmethod
    def load(
        cls, path: Path, keys: KeyEncryptionProvider, bound: dict[str, str], spec: Any
    ) -> _Saved:
        saved = cls(*open_checkpoint(path, keys, bound))
        state = saved.state
        try:
            accountant = state["accountant"]
            epoch = int(state["epoch"])
            if (
                not str(state["checkpoint_id"]).startswith("ckpt-")
                or not 0 < epoch <= spec.epochs
                or (spec.dp and (accountant is None or accountant["mechanism"] != spec.accountant))
                or (spec.dp and not float(state["noise_multiplier"]) > 0)
            ):
                raise ValueError
            if accountant is not None:
                accountant["history"] = [
                    (float(sigma), float(rate), int(steps))
                    for sigma, rate, steps in accountant["history"]
                ]
        except (KeyError, TypeError, ValueError):
            raise IntegrityError(
                f"{path}: not a checkpoint of this policy's training (epoch, accountant or "
                "noise out of place); refused"
            ) from None
        return saved

    @staticmethod
    def encode(
        model: Any,
        optimizer: Any,
        engine: Any,
        loader: Any,
        target: Any,
        encoder: TabularEncoder,
        run_id: str,
        checkpoint_id: str,
    ) -> Callable[[int], bytes]:
        import torch

        def payload(epoch: int) -> bytes:
            rng = {"torch": torch.get_rng_state()}
            if loader.generator is not None:
                rng["loader"] = loader.generator.get_state()
            if target.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(target)
            accountant = engine.accountant.state_dict() if engine is not None else None
            state = {
                "run_id": run_id,
                "checkpoint_id": checkpoint_id,
                "epoch": epoch,
                "noise_multiplier": float(optimizer.noise_multiplier) if engine else None,
                "accountant": (
                    {"history": accountant["history"], "mechanism": accountant["mechanism"]}
                    if accountant is not None
                    else None
                ),
                "encoder": encoder.to_dict(),
            }
            return encode_checkpoint(
                model=_base(model).state_dict(),
                optimizer=optimizer.state_dict(),
                rng=rng,
                state=state,
            )

        return payload

    def restore(self, model: Any, optimizer: Any, engine: Any, loader: Any, target: Any) -> int:
        """Load the saved state into a fresh model, optimizer, accountant and generators;
        returns the epoch to go on from. A checkpoint that does not fit them is refused."""
        import torch

        try:
            _base(model).load_state_dict(
                {k: v.to(target) for k, v in self.model.items()}, strict=True
            )
            optimizer.load_state_dict(self.optimizer)
            if engine is not None:
                engine.accountant.load_state_dict(self.state["accountant"])
            if "torch" in self.rng:
                torch.set_rng_state(self.rng["torch"])
            if "loader" in self.rng and loader.generator is not None:
                loader.generator.set_state(self.rng["loader"])
            if "cuda" in self.rng and target.type == "cuda":
                torch.cuda.set_rng_state(self.rng["cuda"], target)
        except (RuntimeError, ValueError, KeyError, TypeError):
            raise IntegrityError(
                "the checkpoint does not fit this policy's model or optimizer; refused"
            ) from None
        return int(self.state["epoch"])


def _make_private(
    fresh: Callable[[], tuple[Any, Any, Any, Any]],
    spec: Any,
    delta: float,
    noise_multiplier: float | None = None,
) -> tuple[Any, Any, Any, Any, Any, str]:
    """Opacus' private model, optimizer, criterion and loader: the noise solved for the
    target ε, or (resuming) the noise the run started with."""
    from opacus import PrivacyEngine

    fallback = ""
    for mode in dict.fromkeys([spec.grad_sample_mode, "hooks"]):
        model, optimizer, criterion, loader = fresh()
        engine = PrivacyEngine(accountant=spec.accountant)
        common = {
            "module": model,
            "optimizer": optimizer,
            "criterion": criterion,
            "data_loader": loader,
            "max_grad_norm": spec.max_grad_norm,
            "grad_sample_mode": mode,
            "poisson_sampling": True,
        }
        try:
            if noise_multiplier is None:
                made = engine.make_private_with_epsilon(
                    target_epsilon=spec.epsilon,
                    target_delta=delta,
                    epochs=spec.epochs,
                    **common,
                )
            else:
                made = engine.make_private(noise_multiplier=noise_multiplier, **common)
        except (NotImplementedError, ValueError) as exc:  # a layer ghost clipping lacks
            if mode == "hooks":
                raise
            fallback = f"hooks (ghost clipping unavailable: {type(exc).__name__})"
            continue
        if mode == "ghost":
            model, optimizer, criterion, loader = made
            return model, optimizer, criterion, loader, engine, "ghost"
        model, optimizer, loader = made
        label = mode if mode == spec.grad_sample_mode else fallback
        return model, optimizer, criterion, loader, engine, label
    raise AssertionError("unreachable")  # pragma: no cover


THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # the report's curve


def _metrics(
    y: npt.NDArray[np.int64], score: npt.NDArray[np.float32], threshold: float = 0.5
) -> dict[str, Any]:
    """The model's metrics on the test split at ``threshold``, with what an imbalanced
    label needs (balanced accuracy, PR AUC, the confusion matrix) and precision and
    recall across thresholds."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = (score >= threshold).astype(np.int64)
    majority = max(float(y.mean()), 1.0 - float(y.mean())) if len(y) else math.nan
    both = len(set(y.tolist())) == 2
    (tn, fp), (fn, tp) = confusion_matrix(y, predicted, labels=[0, 1]).tolist()
    curve = []
    for t in THRESHOLDS:
        at = (score >= t).astype(np.int64)
        curve.append(
            {
                "threshold": t,
                "precision": round(float(precision_score(y, at, zero_division=0)), 6),
                "recall": round(float(recall_score(y, at, zero_division=0)), 6),
            }
        )
    return {
        "split": "test",
        "threshold": threshold,
        "accuracy": round(float(accuracy_score(y, predicted)), 6),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, predicted)), 6),
        "precision": round(float(precision_score(y, predicted, zero_division=0)), 6),
        "recall": round(float(recall_score(y, predicted, zero_division=0)), 6),
        "f1": round(float(f1_score(y, predicted, zero_division=0)), 6),
        "roc_auc": round(float(roc_auc_score(y, score)), 6) if both else math.nan,
        "pr_auc": round(float(average_precision_score(y, score)), 6) if both else math.nan,
        "majority_class_rate": round(majority, 6),
        "positive_rate": round(float(y.mean()), 6) if len(y) else math.nan,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "threshold_curve": curve,
    }
