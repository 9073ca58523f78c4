"""Headless Chromium for the tests that render pages (reports, the MLflow UI).

Needs Debian's ``chromium`` (``make browser`` installs it; ``LOWSPIKE_CHROMIUM`` may name another
binary); the ``chromium`` fixture skips, saying so, where none is installed. The flags keep it off
the network (this machine has none) and let the page's scripts run for ``budget_ms`` of virtual
time before the DOM is dumped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    candidates = [os.environ.get("LOWSPIKE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]
    return next((shutil.which(c) for c in candidates if c and shutil.which(c)), None)


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium on this machine: install Debian's package (apt-get install chromium) "
                    "or set LOWSPIKE_CHROMIUM to a Chromium binary")
    return binary


def dump_dom(chromium: str, url: str, profile: Path, budget_ms: int = 10000, width: int = 1400,
             screenshot: Path | None = None) -> subprocess.CompletedProcess:
    """The DOM of ``url`` after its scripts ran (``stdout``); optionally a PNG screenshot too, taken
    by the same headless run (Chromium does both when given both flags)."""
    flags = [*FLAGS, f"--virtual-time-budget={budget_ms}", f"--window-size={width},1000",
             f"--user-data-dir={profile}"]
    if screenshot is not None:
        flags.append(f"--screenshot={screenshot}")
    return subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
