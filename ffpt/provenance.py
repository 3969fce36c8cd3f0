"""Where and under what load a result was measured, and from which files: the lines every
benchmark and report records next to its numbers."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_summary() -> str:
    """One line: host, cores, CPU, OS and Python."""
    return (f"{platform.node() or 'host'}: {os.cpu_count()} cores ({cpu_model()}), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def machine_info() -> dict:
    """The same as a dict, with the torch version, GPU presence and thread setting."""
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "gpu": torch.cuda.is_available(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def load_average() -> str:
    """``"1.0 / 0.8 / 0.5"``: the 1, 5 and 15 minute load averages (``uptime``)."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
