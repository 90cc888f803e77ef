from __future__ import annotations

import pytest

from privacy.detect import TextScanner


@pytest.fixture(scope="session")
def scanner() -> TextScanner:
    """The default detector (one engine per process; the scanner holds settings only)."""
    return TextScanner()
