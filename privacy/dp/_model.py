"""The model DP-SGD trains: the built-in MLP or logistic regression, or your own module,
checked by Opacus' ModuleValidator; and how torch is set up to run it. Shared by the
one-process trainer and the distributed workers, so neither imports the other."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from privacy.errors import PolicyError

__all__ = ["QUIET_WARNINGS", "build_model", "torch_threads"]

# Opacus' notices that say nothing about this run: secure_mode needs torchcsprng, which
# has no build here (documented in the README); the backward-hook notice is how ghost
# clipping works; the RDP notice comes from the PRV accountant's internal bounds.
QUIET_WARNINGS = (
    r"Secure RNG turned off",
    r"Full backward hook is firing",
    r"Optimal order is the largest alpha",
)


def torch_threads() -> None:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


def build_model(kind: str, width: int, hidden: list[int], fix: bool = False) -> Any:
    """The policy's model: the built-in MLP or logistic regression, or the module your
    own factory (``package.module:factory``) returns, checked by Opacus'
    ModuleValidator (and, with ``fix``, fixed by it)."""
    from torch import nn

    if kind == "logistic":
        return nn.Linear(width, 2)
    if kind == "mlp":
        layers: list[nn.Module] = []
        previous = width
        for size in hidden:
            layers += [nn.Linear(previous, size), nn.ReLU()]
            previous = size
        layers.append(nn.Linear(previous, 2))
        return nn.Sequential(*layers)
    return _own_model(kind, width, fix)


def _own_model(reference: str, width: int, fix: bool) -> Any:
    import importlib

    import torch
    from opacus.validators import ModuleValidator

    where = f"training.model: {reference}"
    module_name, _, name = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except ImportError as exc:
        raise PolicyError(f"{where}: cannot import {module_name} ({exc})") from None
    except AttributeError:
        raise PolicyError(f"{where}: {module_name} has no {name}") from None
    try:
        model = factory(width, 2)
    except Exception as exc:  # the user's code: its failure is theirs, named, not ours
        raise PolicyError(
            f"{where}: the factory failed with {type(exc).__name__} when called with "
            f"({width} features, 2 classes)"
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise PolicyError(f"{where}: returned {type(model).__name__}, not a torch.nn.Module")
    if ModuleValidator.validate(model, strict=False):
        if fix:
            model = ModuleValidator.fix(model)
        refused = _refused_layer(model)
        if refused is not None:
            layer, kind, why = refused
            hint = "" if fix else "; training.fix_modules: true lets Opacus replace it"
            raise PolicyError(
                f"{where}: layer {layer!r} ({kind}) cannot be trained with DP-SGD: {why}{hint}"
            )
    with torch.no_grad():
        was = model.training
        model.eval()
        try:
            shape = tuple(model(torch.zeros(2, width)).shape)
        except Exception as exc:
            raise PolicyError(
                f"{where}: the model fails on a batch of {width} features ({type(exc).__name__})"
            ) from None
        model.train(was)
    if shape != (2, 2):
        raise PolicyError(
            f"{where}: the model maps (batch, {width}) to {shape[1:]}, not to 2 class logits"
        )
    return model


def _refused_layer(model: Any) -> tuple[str, str, str] | None:
    """(name, type, the first sentence of Opacus' reason) of the first layer it refuses."""
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if not errors:
        return None
    for layer, sub in model.named_modules():
        if layer and not list(sub.children()):
            found = ModuleValidator.validate(sub, strict=False)
            if found:
                return layer, type(sub).__name__, str(found[0]).split(". ")[0]
    return "(model)", type(model).__name__, str(errors[0]).split(". ")[0]
