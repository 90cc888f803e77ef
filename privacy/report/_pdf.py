"""Printing a report to PDF with headless Chromium, for signing and archiving.

The report's print stylesheet keeps tables and charts whole and opens every "exact
values" detail. Chromium is found on ``PATH`` (``chromium``, ``chromium-browser``,
``google-chrome``) or named by ``PRIVPIPE_CHROMIUM``; it is never downloaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from privacy.errors import InputError
from privacy.io import atomic_write_bytes

__all__ = ["chromium", "print_pdf"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "install it (Debian/Ubuntu: apt-get install chromium; Fedora: dnf install chromium; "
    "macOS: brew install --cask chromium) or set PRIVPIPE_CHROMIUM to its path"
)


def chromium() -> str | None:
    """The headless-capable Chromium to use, or None when there is none."""
    named = os.environ.get("PRIVPIPE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_args(browser: str) -> list[str]:
    """The command line every headless use starts with (no sandbox when running as
    root, which Chromium otherwise refuses; a throwaway profile; no network at all)."""
    args = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    args += [
        "--disable-extensions",
        "--disable-background-networking",
        "--proxy-server=127.0.0.1:9",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


def print_pdf(html_file: Path, pdf_file: Path, *, timeout: float = 120) -> Path:
    """Print ``html_file`` to ``pdf_file`` (replaced only when printing succeeded)."""
    browser = chromium()
    if browser is None:
        raise InputError(f"--pdf {pdf_file}: headless Chromium was not found: {INSTALL_HINT}")
    pdf_file = Path(pdf_file)
    pdf_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="privpipe-pdf-") as scratch:
        partial = Path(scratch) / "report.pdf"
        command = [
            *browser_args(browser),
            f"--user-data-dir={Path(scratch) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={partial}",
            Path(html_file).resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InputError(
                f"--pdf {pdf_file}: Chromium did not print ({type(exc).__name__})"
            ) from None
        if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
            raise InputError(
                f"--pdf {pdf_file}: Chromium exited {done.returncode} without a PDF; "
                f"try it by hand: {browser} --headless --print-to-pdf=FILE {html_file}"
            )
        atomic_write_bytes(pdf_file, partial.read_bytes())
    return pdf_file
