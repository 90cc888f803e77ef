"""What every privpipe flow's tasks share: paths in, nothing persisted or cached, and
exceptions sanitized before Prefect records them (a privpipe error's message names
places, never values; any other exception becomes its type and the stage, the original
kept in this process for ``--debug``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from flows._keys import keyring
from privacy.crypto import Keyring
from privacy.errors import PolicyError, PrivpipeError
from privacy.policy import Policy, load_policy

__all__ = [
    "InternalStageError",
    "last_internal_error",
    "private_task",
    "run_policy",
    "sanitized",
    "unlocked",
]

P = ParamSpec("P")
R = TypeVar("R")

_internal: list[BaseException] = []


class InternalStageError(RuntimeError):
    """A stage failed for a reason that is not the user's; details stay out of Prefect."""


def last_internal_error() -> BaseException | None:
    """The unsanitized exception behind the last :class:`InternalStageError`, if any."""
    return _internal[-1] if _internal else None


def sanitized(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except PrivpipeError as exc:
                # a fresh error (no traceback, no frames holding data), keeping its fields
                # (a failed guarantee's names and figures, for the audit record)
                clean = type(exc)(str(exc))
                clean.__dict__.update(exc.__dict__)
                raise clean from None
            except Exception as exc:
                _internal.append(exc)
                raise InternalStageError(
                    f"internal error in stage {stage} ({type(exc).__name__})"
                ) from None

        return run

    return wrap


def private_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task whose parameters are paths and whose result is never persisted or cached."""
    return task(name=name, persist_result=False, cache_policy=NO_CACHE, log_prints=False, retries=0)


def run_policy(ref: dict[str, str]) -> Policy:
    """The run's policy (``{"path", "sha256"}``), loaded in a task: refused if the file
    changed since the flow checked it (its signature, say) when the run started."""
    policy = load_policy(ref["path"])
    if policy.hash != ref["sha256"]:
        raise PolicyError(
            f"{ref['path']}: policy changed while the run was going (its canonical SHA-256 "
            "is not the one checked at the start); nothing was published"
        )
    return policy


def unlocked(keyring_path: str) -> Keyring:
    """The keyring the command line unlocked in this process (see flows._keys)."""
    return keyring(keyring_path)
