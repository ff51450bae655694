"""Helpers shared by the benchmark scripts: where the data is, and the machine description."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """``MEDTWIN_SHARED_DATA`` or ``../shared/data``; exits with a message when missing."""
    path = Path(os.environ.get("MEDTWIN_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        sys.exit(f"shared data folder {path} not found (set MEDTWIN_SHARED_DATA)")
    return path


def machine() -> str:
    """One line describing this machine."""
    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpus} cores {model}, Python {platform.python_version()}"
