"""Where the command line listens to a running flow: callbacks set by the CLI, called in
this process only.

A module of its own, looked up by name at call time: a task shipped to a Dask worker is
pickled with its globals, and a module travels by reference, whereas a callback (a
method of a live progress bar, with its locks) could not travel at all. On a worker
nothing is set, and nothing is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

stage: Callable[[dict[str, Any]], None] | None = None
search: Callable[[int, int], None] | None = None
partitions: Callable[[str, int, int], None] | None = None
