"""Model weights and training checkpoints as safetensors: tensors and JSON, never pickles.

A checkpoint is read in the custodian's process, with every key unlocked. Anything that
unpickles (``torch.load`` without ``weights_only``, and even with it a format that
grows) is a way to run code there for whoever can seal one. So both files are
`safetensors <https://github.com/huggingface/safetensors>`_: a JSON header of names,
dtypes and shapes, then raw tensor bytes; the rest of a checkpoint (epoch, run and
checkpoint ids, the encoder, the accountant's history, the optimizer's scalar
hyper-parameters, the noise multiplier) is JSON in the header's ``__metadata__``.

A checkpoint is a run intermediate, so it is sealed under the custodian's ``vault``
scope, bound (associated data) to the run id, the sanitized data's hash, the policy
hash and that scope. Opening one checks the binding and, from the sealed header before
anything is decrypted, that the key it was sealed under is a ``vault`` key: the
``published`` key an analyst's keyring holds can seal a file the custodian's keyring
opens, but never a checkpoint it resumes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from privacy.crypto import KeyEncryptionProvider, read_header, seal_bytes, unseal_bytes
from privacy.errors import IntegrityError, ScopeError
from privacy.io import atomic_write_bytes

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_SCOPE",
    "WEIGHTS_FORMAT",
    "checkpoint_binding",
    "decode_checkpoint",
    "decode_weights",
    "encode_checkpoint",
    "encode_weights",
    "kek_scope",
    "open_checkpoint",
    "require_checkpoint_scope",
    "require_resume_scope",
    "seal_checkpoint",
]

CHECKPOINT_FORMAT = "privpipe-checkpoint/v1"
WEIGHTS_FORMAT = "privpipe-weights/v1"
CHECKPOINT_SCOPE = "vault"  # run intermediates are the custodian's (SCOPE_ROLES)
_MAX_HEADER = 1 << 26


def _tensors_only(tensors: Mapping[str, Any]) -> dict[str, Any]:
    return {name: t.detach().cpu().contiguous() for name, t in tensors.items()}


def encode_weights(state: Mapping[str, Any]) -> bytes:
    """A model's state dict as safetensors bytes (CPU tensors)."""
    from safetensors.torch import save

    return save(_tensors_only(state), metadata={"format": WEIGHTS_FORMAT})


def _metadata(data: bytes, name: str) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes, parsed as JSON (nothing else runs)."""
    if len(data) < 8:
        raise IntegrityError(f"{name}: not a safetensors file (too short)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(_MAX_HEADER, len(data) - 8):
        raise IntegrityError(f"{name}: not a safetensors file (bad header length)")
    try:
        header = json.loads(data[8 : 8 + length])
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ValueError
    except (ValueError, AttributeError, UnicodeDecodeError):
        raise IntegrityError(f"{name}: not a safetensors file (malformed header)") from None
    return meta


def _load(data: bytes, name: str, expected_format: str) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    meta = _metadata(data, name)
    if meta.get("format") != expected_format:
        raise IntegrityError(
            f"{name}: not a {expected_format} file (format {meta.get('format')!r})"
        )
    try:
        return load(data), meta
    except SafetensorError:
        raise IntegrityError(f"{name}: not a safetensors file (malformed tensors)") from None


def decode_weights(data: bytes, name: str = "weights") -> dict[str, Any]:
    """The state dict from :func:`encode_weights` bytes."""
    return _load(data, name, WEIGHTS_FORMAT)[0]


def _json_scalars(value: Any, where: str) -> Any:
    """``value`` with tuples as lists, refused if it holds anything but JSON scalars."""
    if isinstance(value, (list, tuple)):
        return [_json_scalars(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise IntegrityError(f"{where}: {type(value).__name__} is not a JSON value")


def encode_checkpoint(
    *,
    model: Mapping[str, Any],
    optimizer: Mapping[str, Any],
    rng: Mapping[str, Any],
    state: Mapping[str, Any],
) -> bytes:
    """Safetensors bytes of a checkpoint: ``model.<name>`` (the state dict),
    ``optimizer.<param>.<key>`` (the optimizer's per-parameter tensors), ``rng.<name>``
    (generator states); ``state`` (JSON) and the optimizer's param groups and scalar
    state go to the metadata."""
    from safetensors.torch import save

    tensors = {f"model.{k}": v for k, v in model.items()}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in optimizer["state"].items():
        for key, value in entry.items():
            if hasattr(value, "detach"):
                tensors[f"optimizer.{int(index)}.{key}"] = value
            else:
                scalars.setdefault(str(int(index)), {})[key] = _json_scalars(value, "optimizer")
    tensors |= {f"rng.{k}": v for k, v in rng.items()}
    groups = [
        {k: _json_scalars(v, f"optimizer.param_groups.{k}") for k, v in group.items()}
        for group in optimizer["param_groups"]
    ]
    meta = {
        "format": CHECKPOINT_FORMAT,
        "state": json.dumps(dict(state), sort_keys=True),
        "optimizer": json.dumps({"param_groups": groups, "scalars": scalars}, sort_keys=True),
    }
    return save(_tensors_only(tensors), metadata=meta)


def decode_checkpoint(
    data: bytes, name: str = "checkpoint"
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model state dict, optimizer state dict, rng states, JSON state) of checkpoint
    bytes from :func:`encode_checkpoint`."""
    tensors, meta = _load(data, name, CHECKPOINT_FORMAT)
    try:
        state = json.loads(meta["state"])
        opt = json.loads(meta["optimizer"])
        groups, scalars = list(opt["param_groups"]), dict(opt["scalars"])
        if not isinstance(state, dict):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"{name}: not a privpipe checkpoint (malformed state)") from None
    model: dict[str, Any] = {}
    per_param: dict[int, dict[str, Any]] = {}
    rng: dict[str, Any] = {}
    for key, tensor in tensors.items():
        kind, _, rest = key.partition(".")
        if kind == "model":
            model[rest] = tensor
        elif kind == "rng":
            rng[rest] = tensor
        elif kind == "optimizer" and rest.partition(".")[0].isdigit():
            index, _, field = rest.partition(".")
            per_param.setdefault(int(index), {})[field] = tensor
        else:
            raise IntegrityError(f"{name}: not a privpipe checkpoint (unknown tensor {key!r})")
    try:
        for index, values in scalars.items():
            per_param.setdefault(int(index), {}).update(values)
    except (TypeError, ValueError, AttributeError):
        raise IntegrityError(f"{name}: not a privpipe checkpoint (malformed state)") from None
    return model, {"state": per_param, "param_groups": groups}, rng, state


def checkpoint_binding(*, run_id: str, data_sha256: str, policy_sha256: str) -> dict[str, str]:
    """What a sealed checkpoint is bound to: opened for another run, other data,
    another policy or as sealed under another scope, it is refused."""
    return {
        "artifact": "checkpoint",
        "run_id": run_id,
        "data_sha256": data_sha256,
        "policy_sha256": policy_sha256,
        "scope": CHECKPOINT_SCOPE,
    }


def kek_scope(keys: Any, kek_id: str) -> str | None:
    """The scope of ``kek_id`` as the keyring behind ``keys`` records it ("" for a
    version-1 keyring's key, which serves every scope); None if it holds no such key."""
    ring = getattr(keys, "ring", keys)
    for info in getattr(ring, "list_keys", list)():
        if info.id == kek_id:
            return info.scope or ""
    return None


def require_checkpoint_scope(keys: KeyEncryptionProvider, path: Path) -> None:
    """Raise :class:`ScopeError` unless ``keys`` seal under a ``vault`` key."""
    if kek_scope(keys, keys.active_kek_id) not in (CHECKPOINT_SCOPE, ""):
        raise ScopeError(
            f"{path}: checkpoints are sealed under the {CHECKPOINT_SCOPE!r} scope "
            "(run intermediates are the custodian's), and these keys seal under another",
            scope=CHECKPOINT_SCOPE,
            keyring=str(getattr(getattr(keys, "ring", keys), "path", "")),
        )


def require_resume_scope(ring: Any) -> None:
    """Raise :class:`ScopeError` for a keyring that cannot open checkpoints (one without
    the ``vault`` scope: it trains without them)."""
    if CHECKPOINT_SCOPE not in getattr(ring, "scopes", ()):
        raise ScopeError(
            f"{getattr(ring, 'path', 'keyring')}: --resume: checkpoints are run "
            f"intermediates, sealed under the {CHECKPOINT_SCOPE!r} scope, which this keyring "
            "does not hold, so it trains without them: run again without --resume, or "
            "resume with the custodian's keyring",
            scope=CHECKPOINT_SCOPE,
            keyring=str(getattr(ring, "path", "")),
        )


def seal_checkpoint(
    path: Path, payload: bytes, keys: KeyEncryptionProvider, binding: Mapping[str, str]
) -> None:
    """Seal ``payload`` to ``path`` (atomically, 0600) under the vault scope's key.

    Raises :class:`ScopeError` when ``keys`` would seal under another scope's key."""
    require_checkpoint_scope(keys, path)
    atomic_write_bytes(path, seal_bytes(payload, keys, binding))


def open_checkpoint(
    path: Path, keys: KeyEncryptionProvider, binding: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A sealed checkpoint, decoded (see :func:`decode_checkpoint`), after checking from
    its header that a ``vault`` key sealed it, then its binding and every segment.

    Raises :class:`IntegrityError` for a checkpoint sealed under another scope's key,
    bound to another run, other data or another policy, or not a checkpoint at all."""
    with path.open("rb") as handle:
        header = read_header(handle, str(path))
    scope = kek_scope(keys, header.kek_id)
    if scope not in (CHECKPOINT_SCOPE, ""):
        raise IntegrityError(
            f"{path}: sealed under {header.kek_id} ({scope or 'a key this keyring lacks'}), "
            f"not a {CHECKPOINT_SCOPE!r} key: a checkpoint this run did not write; refused "
            "without opening it"
        )
    found = header.associated_data
    for key in ("run_id", "data_sha256", "policy_sha256"):
        if found.get(key) != binding[key]:
            what = {"run_id": "run", "data_sha256": "data", "policy_sha256": "policy"}[key]
            raise IntegrityError(
                f"{path}: a checkpoint of another {what} ({key} {found.get(key)!r}, this "
                f"resume expects {binding[key]!r}); refused"
            )
    return decode_checkpoint(unseal_bytes(path, keys, expected=binding), str(path))
