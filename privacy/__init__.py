"""privpipe's library: policies, readers and writers, column operators, and stages.

It never imports Prefect, and nothing in it prints or exits: it raises the errors of
:mod:`privacy.errors` and returns records that callers log, audit and display.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
