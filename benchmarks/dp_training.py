"""Figures: DP training utility on Adult by training input, and the cost of a DP epoch.

1. Utility at ε = 1, δ = 1e-5 with the policy defaults (`policies/adult.yaml` plus a
   training section: label salary-class), privpipe's own training code, each beside the
   same code with `training.dp: false` on the same input (the anchor, same run):
   (a) `training.input: deidentified`: the transform stage's output before
       generalization (goal: accuracy >= 0.83 and within 2 points of the anchor);
   (b) `published` with `privacy.metric: classification`, target salary-class (goal:
       accuracy >= 0.80, F1 >= 0.55), and beside it the Mondrian release;
   (c) today's DM-optimal published release (k = 5, 5 % suppression), for comparison.
2. Speed: one epoch of DP-SGD (Opacus, ghost clipping, Poisson sampling) beside one
   non-private epoch of the same model on the same tensors and batch size, best of 3
   (goal: at most 2x on CPU, 1.2x on GPU).
Needs ../shared/data/adult. Usage: python benchmarks/dp_training.py [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT.parent / "shared" / "data" / "adult"


def _policy(folder: Path, **training: object):  # type: ignore[no-untyped-def]
    from privacy.policy import load_policy, policy_from_dict

    base = load_policy(folder / "adult.yaml")
    data = base.model_dump(mode="json")
    data["training"] = {
        **data["training"],
        "enabled": True,
        "label": "salary-class",
        "positive_class": ">50K",
        "epsilon": 1.0,
        "delta": 1e-5,
        **training,
    }
    policy = policy_from_dict(data)
    policy._source = base.source
    return policy


def _epoch_seconds(x, y, spec, private: bool, device: str) -> float:  # type: ignore[no-untyped-def]
    import torch
    from opacus import PrivacyEngine
    from torch import nn

    from privacy.dp._model import build_model

    torch.manual_seed(0)
    model = build_model(spec.model, x.shape[1], spec.hidden_sizes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    criterion = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=spec.batch_size, shuffle=True
    )
    if private:
        model, optimizer, criterion, loader = PrivacyEngine(accountant="prv").make_private(
            module=model,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=loader,
            noise_multiplier=1.0,
            max_grad_norm=spec.max_grad_norm,
            grad_sample_mode="ghost",
            poisson_sampling=True,
        )
    best = float("inf")
    for _ in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for xb, yb in loader:
            if len(xb) == 0:
                continue
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if not (ADULT / "adult.csv").is_file():
        sys.exit(f"needs the Adult data in {ADULT}")
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    from privacy.crypto import Keyring
    from privacy.dp import train_model
    from privacy.dp._encode import TabularEncoder, feature_columns
    from privacy.dp._model import torch_threads as _torch_threads
    from privacy.dp._train import _split
    from privacy.io import read_input
    from privacy.kanon import anonymize
    from privacy.stages import transform

    _torch_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for path in ADULT.glob("adult_hierarchy_*.csv"):
            shutil.copy(path, folder)
        shutil.copy(ROOT / "policies" / "adult.yaml", folder)
        private = _policy(folder, input="published")
        raw = read_input(ADULT / "adult.csv", private)
        ring = Keyring.create(folder / "ring.json", "benchmark-only", scrypt_n=2**14)
        deidentified, _ = transform(raw, private, ring)
        classification = _policy(folder, input="published")
        classification = classification.model_copy(
            update={
                "privacy": classification.privacy.model_copy(
                    update={"metric": "classification", "target": "salary-class"}
                )
            }
        )
        mondrian = _policy(folder, input="published")
        mondrian = mondrian.model_copy(
            update={"privacy": mondrian.privacy.model_copy(update={"algorithm": "mondrian"})}
        )
        inputs = {
            "(a) deidentified": (deidentified, "deidentified", private),
            "(b) published, metric classification": (
                anonymize(raw, classification)[0],
                "published",
                classification,
            ),
            "    published, Mondrian (for comparison)": (
                anonymize(raw, mondrian)[0],
                "published",
                mondrian,
            ),
            "(c) published, DM-optimal (today)": (anonymize(raw, private)[0], "published", private),
        }
        print(f"DP training utility on Adult at ε = 1, δ = 1e-5, {args.device} (test split)")
        for name, case in inputs.items():
            frame, source, policy = case
            dp = policy.model_copy(
                update={"training": policy.training.model_copy(update={"input": None})}
            )
            plain = policy.model_copy(
                update={"training": policy.training.model_copy(update={"dp": False, "input": None})}
            )
            cards = [
                train_model(
                    frame, p, run_id="bench", ledger=None, device=args.device, source=source
                ).card
                for p in (dp, plain)
            ]
            (m, mp), eps = (c["metrics"] for c in cards), cards[0]["privacy"]["epsilon"]
            print(
                f"  {name}: privpipe accuracy {m['accuracy']:.4f}, F1 {m['f1']:.4f}, balanced "
                f"{m['balanced_accuracy']:.4f} at ε {eps:.3f}; anchor (dp: false) accuracy "
                f"{mp['accuracy']:.4f}, F1 {mp['f1']:.4f}; gap "
                f"{100 * (mp['accuracy'] - m['accuracy']):.2f} points"
            )
        print("  goals: (a) accuracy >= 0.83 and gap <= 2; (b) accuracy >= 0.80 and F1 >= 0.55")
        frame = inputs["(c) published, DM-optimal (today)"][0]  # type: ignore[index]

        spec = private.training
        train, _ = _split(frame, spec.label, spec.test_size, spec.seed)
        encoder = TabularEncoder.fit(
            train, feature_columns(private, frame, spec.label), spec.label, spec.positive_class
        )
        x = torch.from_numpy(encoder.features(train)).to(args.device)
        y = torch.from_numpy(encoder.labels(train)).to(args.device)
        dp_s = _epoch_seconds(x, y, spec, True, args.device)
        plain_s = _epoch_seconds(x, y, spec, False, args.device)
        print(
            f"one training epoch, {len(y):,} rows, batch {spec.batch_size}, MLP "
            f"{spec.hidden_sizes}, {args.device}"
        )
        print(f"  privpipe : {dp_s * 1000:>10.1f} ms  (DP-SGD: Opacus ghost clipping, Poisson)")
        print(f"  anchor   : {plain_s * 1000:>10.1f} ms  (the same model, non-private)")
        goal = "2" if args.device == "cpu" else "1.2"
        print(f"  ratio    : {dp_s / plain_s:>10.2f} x anchor (goal <= {goal})")


if __name__ == "__main__":
    main()
