"""Prefect flows (thin wrappers over :mod:`privacy`) and the ``privpipe`` command line.

Importing this package imports neither Prefect nor the heavy libraries: commands load
what they need when they run.
"""

import os

# polars' allocator (jemalloc) keeps freed pages for seconds by default, so one stage's
# frames still count while the next one's are built: returning them at once lowers the
# 1M-row Adult run's peak by about 150 MiB at no measured cost in time
# (benchmarks/kanon_adult.py --scale). Set before polars is first imported; a caller's
# own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
