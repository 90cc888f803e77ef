"""The environment of every process privpipe starts: an allow-list, not a deny-list.

A child process gets only the variables it needs to run: where programs and Python
live, the locale and time zone, the temporary folder, thread and allocator settings,
the devices it may use, and the non-secret settings of Prefect, Dask and privpipe.
Everything else stays behind, whatever it is called: cloud credentials (``AWS_*``,
``GOOGLE_*``, ``AZURE_*``), database settings (``PG*``, ``DATABASE_URL``), the user's
own ``MY_API_TOKEN``. Variables privpipe's code sets after import are not secret.

Kept, by name (:data:`ALLOWED_NAMES`) or by prefix (:data:`ALLOWED_PREFIXES`)::

    PATH HOME USER LOGNAME SHELL TERM LANG LANGUAGE LC_* TZ TMPDIR TEMP TMP XDG_*
    VIRTUAL_ENV PYTHONPATH PYTHONHOME PYTHONUNBUFFERED PYTHONIOENCODING PYTHONUTF8 ...
    SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NO_COLOR DO_NOT_TRACK
    OMP_* MKL_* OPENBLAS_* KMP_* NUMEXPR_* POLARS_* RAYON_NUM_THREADS MALLOC_ARENA_MAX
    _RJEM_MALLOC_CONF CUDA_* NCCL_* GLOO_SOCKET_IFNAME TORCH_* HF_HOME HF_HUB_OFFLINE ...
    PRESIDIO_DEVICE TLDEXTRACT_* SPACY_* PREFECT_* DASK_* PRIVPIPE_*

Even an allowed name is dropped (:func:`is_secret`) when it looks like a secret:
its name holds ``PASSWORD``, ``PASSWD``, ``PASSPHRASE``, ``SECRET``, ``TOKEN``,
``CREDENTIAL``, ``AUTH``, ``COOKIE`` or ``PRIVATE``, or a ``_``-separated word ending
in ``KEY`` (``PREFECT_API_KEY``, ``PRIVPIPE_PSEUDONYM_KEY``, ``PRIVPIPE_OPERATOR_KEY``);
or its value is a URI with user information (``scheme://user:pass@host``, a password
with ``/`` or ``@`` in it included). So ``PRIVPIPE_PASSPHRASE`` and a
``PREFECT_API_URL`` that carries a password never pass.

A child that really needs a secret (Dask workers unlock the keyring) gets it by an
explicit ``extra=`` at that one call site. ``withhold=`` drops names a policy makes
secret (its ``keys.pseudonym_key_env``).

Two ways to use it:

- :func:`child_environment` for ``subprocess`` (``env=``);
- :func:`spawn_context` for ``multiprocessing`` (a ``spawn`` context whose processes,
  and the resource tracker it starts, begin with the allowed environment), and
  :func:`narrowed_environ` around a library call that starts processes and takes no
  environment (Dask's ``LocalCluster``).

``/proc/PID/environ`` shows the environment a process was *started* with: removing a
variable inside the child afterwards would not hide it. So the narrowing happens in the
parent, before the child exists: :func:`narrowed_environ` replaces the C-level
environment (``os.putenv`` / ``os.unsetenv``) for the moment a library starts its
processes, under a lock, and puts it back. ``os.environ``, which Python code reads, is
never changed, so other threads still see the passphrase meanwhile.

Stdlib only: ``privpipe server status`` loads nothing heavy.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from multiprocessing import context as mp_context
from multiprocessing import popen_spawn_posix, resource_tracker
from typing import Any

__all__ = [
    "ALLOWED_NAMES",
    "ALLOWED_PREFIXES",
    "child_environment",
    "has_user_info",
    "is_secret",
    "narrowed_environ",
    "spawn_context",
]

ALLOWED_NAMES = frozenset(
    {
        # the shell's basics
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "NO_COLOR",
        "DO_NOT_TRACK",
        # Python
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUNBUFFERED",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED",
        "PYTHONWARNINGS",
        "PYTHONFAULTHANDLER",
        # TLS trust (paths, not keys)
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        # threads and memory
        "RAYON_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "MALLOC_ARENA_MAX",
        "_RJEM_MALLOC_CONF",
        "GLOO_SOCKET_IFNAME",
        # offline models (Presidio, spaCy, Hugging Face)
        "PRESIDIO_DEVICE",
        "HF_HOME",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    }
)
ALLOWED_PREFIXES = (
    "LC_",
    "XDG_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "KMP_",
    "NUMEXPR_",
    "POLARS_",
    "CUDA_",
    "NCCL_",
    "TORCH_",
    "TLDEXTRACT_",
    "SPACY_",
    "PREFECT_",
    "DASK_",
    "PRIVPIPE_",
)

_SECRET_WORDS = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|AUTH|COOKIE|PRIVATE|(?:^|_)[A-Z0-9]*KEY(?:_|$)"
)
# A password may hold a raw '/', '?' or '#' (which RFC 3986 would read as the path's
# start): any '@' after '://' counts as user information.
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")


def has_user_info(value: str) -> bool:
    """Whether ``value`` is a URI that carries user information (``user@`` or
    ``user:password@``), however its password is spelled: percent-encoded, or with a
    raw ``/``, ``?`` or ``#`` in it (which a strict parser would read as the path)."""
    scheme = _SCHEME.match(value)
    if scheme is None:
        return False
    return "@" in value[scheme.end() :]


def is_secret(name: str, value: str) -> bool:
    """Whether the variable ``name`` (holding ``value``) looks like a secret: its name
    (see the module docstring), or a URI with user information as its value."""
    return bool(_SECRET_WORDS.search(name.upper())) or has_user_info(value)


def _allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def child_environment(
    extra: Mapping[str, str] | None = None,
    *,
    withhold: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a child process: the allowed, non-secret variables of
    ``environ`` (default ``os.environ``) less the names in ``withhold``, then ``extra``
    on top (passed as given: the call site says why its child needs each)."""
    source = os.environ if environ is None else environ
    dropped = set(withhold)
    env = {
        name: value
        for name, value in source.items()
        if _allowed(name) and name not in dropped and not is_secret(name, value)
    }
    env.update(extra or {})
    return env


_NARROWING = threading.RLock()


@contextmanager
def narrowed_environ(
    extra: Mapping[str, str] | None = None, *, withhold: Iterable[str] = ()
) -> Iterator[dict[str, str]]:
    """While the block runs, the process's C-level environment (what ``exec`` hands
    on) is :func:`child_environment`; afterwards it is ``os.environ`` again, which is
    never changed. Only around code that starts processes and takes no environment;
    under a lock, so two such blocks never interleave. Yields the narrowed environment."""
    with _NARROWING:
        env = child_environment(extra, withhold=withhold)
        names = set(os.environ) | set(env)
        for name in names:
            if name in env:
                os.putenv(name, env[name])
            else:
                os.unsetenv(name)
        try:
            yield env
        finally:
            for name in names:
                if name in os.environ:
                    os.putenv(name, os.environ[name])
                else:
                    os.unsetenv(name)


_Narrowing = tuple[dict[str, str], tuple[str, ...]]


class _NarrowedPopen(popen_spawn_posix.Popen):
    """``spawn``'s start, with the C environment narrowed while the child is exec'd."""

    def __init__(self, process_obj: Any, narrowing: _Narrowing) -> None:
        self._narrowing = narrowing
        super().__init__(process_obj)

    def _launch(self, process_obj: Any) -> None:
        extra, withhold = self._narrowing
        with narrowed_environ(extra, withhold=withhold):
            resource_tracker.ensure_running()  # started clean, if this starts it
            super()._launch(process_obj)  # type: ignore[misc]  # typeshed lacks it


class _NarrowedProcess(mp_context.SpawnProcess):
    """A spawned process that starts with the allowed environment. What to narrow to
    is taken off the object before it is pickled for the child (it may hold ``extra``)."""

    _narrowing: _Narrowing = ({}, ())

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        narrowing = process_obj.__dict__.pop("_narrowing", ({}, ()))
        return _NarrowedPopen(process_obj, narrowing)


class _NarrowedContext(mp_context.SpawnContext):
    """A ``spawn`` context whose ``Process`` starts with the allowed environment."""

    def __init__(self, narrowing: _Narrowing) -> None:
        self._narrowing = narrowing

    def Process(self, *args: Any, **kwargs: Any) -> _NarrowedProcess:  # type: ignore[override]
        process = _NarrowedProcess(*args, **kwargs)
        process._narrowing = self._narrowing
        return process


def spawn_context(
    extra: Mapping[str, str] | None = None, *, withhold: Iterable[str] = ()
) -> mp_context.SpawnContext:
    """A ``multiprocessing`` ``spawn`` context (for ``ProcessPoolExecutor(mp_context=)``,
    ``ctx.Process``, ``ctx.SimpleQueue``) whose processes start with
    :func:`child_environment` (``extra`` and ``withhold`` as there). Creating it starts
    multiprocessing's resource tracker with that environment too, where this process
    has none running yet (one already running keeps the environment it started with)."""
    narrowing = (dict(extra or {}), tuple(withhold))
    with narrowed_environ(narrowing[0], withhold=narrowing[1]):
        resource_tracker.ensure_running()
    return _NarrowedContext(narrowing)
