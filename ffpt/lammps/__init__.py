"""LAMMPS wing of ffpt: build/locate the plugins, run ``lmp``, read and write its files.

- :mod:`ffpt.lammps.plugin`: ``plugin_dir()`` (the ``lammps.plugins`` entry point), ``build_plugin``
  and ``ffpt build-plugin``;
- :mod:`ffpt.lammps.runner`: the one ``lmp`` runner (executable lookup, environment and
  threads, MPI ranks, timeout, progress bar, errors with the log tail) and ``single_point``;
- :mod:`ffpt.lammps.io`: data files, dumps, logs/thermo.

This package stays cheap to import (the entry point loads it in every ``lmp``): only
:mod:`ffpt.lammps.plugin` is imported eagerly, the other names load on first use.
"""

from __future__ import annotations

from ffpt.lammps.plugin import (
    PAIR_PLUGIN,
    SOURCE_DIR,
    build_plugin,
    build_plugin_cmd,
    plugin_built,
    plugin_dir,
)

_LAZY = {
    "runner": ("LammpsError", "LammpsRun", "lammps_env", "lammps_executable", "run_lammps",
               "single_point"),
    "io": ("NKTV2P_METAL", "DumpFrame", "lammps_cell", "read_dump", "read_dump_frames",
           "read_lammps_dump", "read_log", "read_thermo", "write_data"),
}

__all__ = ["PAIR_PLUGIN", "SOURCE_DIR", "build_plugin", "build_plugin_cmd", "plugin_built",
           "plugin_dir", *(n for names in _LAZY.values() for n in names)]


def __getattr__(name: str):
    import importlib

    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"ffpt.lammps.{module}"), name)
    raise AttributeError(f"module 'ffpt.lammps' has no attribute {name!r}")
