"""Importing Presidio offline and without torch: the one thing every detection module
needs before it touches Presidio, so it sits below all of them."""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["load_presidio"]

# tldextract (imported by Presidio's e-mail and URL recognizers) reads this when it is
# first imported; empty means: use the suffix list shipped in the package, fetch nothing.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
# Presidio imports torch to look for a CUDA device unless told the device; the spaCy
# model here is a CPU one (spaCy's GPU path needs cupy, which privpipe does not install).
os.environ.setdefault("PRESIDIO_DEVICE", "cpu")

_import_lock = threading.Lock()


def load_presidio() -> None:
    """Import Presidio, and with it spaCy, without torch.

    thinc (spaCy's machine-learning layer) imports torch whenever it is installed, only
    to offer its PyTorch wrappers, which this CPU model never uses: 1.8 s of spaCy's
    2.6 s import and a few hundred MiB here. torch is hidden while thinc is first
    imported (thinc then records it as absent), and visible again right after, for
    training in the same process. Where torch is already imported nothing is hidden."""
    if "presidio_analyzer" in sys.modules:
        return
    with _import_lock:
        hide = "thinc" not in sys.modules and "torch" not in sys.modules
        if hide:
            sys.modules["torch"] = None  # type: ignore[assignment]  # import torch: ImportError
        try:
            import presidio_analyzer  # noqa: F401  # imports spaCy and thinc
        finally:
            if hide and "torch" in sys.modules and sys.modules["torch"] is None:
                del sys.modules["torch"]
