"""AOTInductor artifacts (``ffpt-deploy --format aotinductor``, file suffix ``.pt2``).

The model is traced through its ``autograd.grad`` with ``make_fx`` (symbolic shapes), exported
with dynamic atom and edge counts and compiled ahead of time by Inductor; weights are frozen in.
The interface differs from TorchScript only in the last input: a float mask of the atoms whose
energies are summed (an integer ``nlocal`` would bake an ``N >= nlocal`` guard into the graph).
The ffpt metadata is the record ``extra/ffpt_metadata.txt``, as in TorchScript artifacts.

Loading runs native code: :func:`load_package` extracts the records the caller has verified
(hash and allow-list, ``artifact.py``) into a private folder and loads them from there, so the
code that runs is the code that was checked; the folder is removed when loading fails or when
the model is garbage-collected.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ffpt.model.forces import MaskedEnergyForces

SUFFIX = ".pt2"
INTERFACE = "MaskedEnergyForces(pos,species,edge_index,edge_shift,local_mask)->(E,E_i,F,W)"


def _example(model: nn.Module, dtype: torch.dtype):
    """A small random cluster (12 atoms, all elements) as tracing example."""
    from ffpt.data.graph import neighbor_graph

    rng = np.random.default_rng(0)
    n = 12
    pos = rng.uniform(0, 1.2 * model.cutoff, size=(n, 3))
    ei, sh = neighbor_graph(pos, None, False, model.cutoff)
    species = np.arange(n) % len(model.elements)
    return (torch.tensor(pos, dtype=dtype), torch.tensor(species), torch.tensor(ei),
            torch.tensor(sh, dtype=dtype), torch.ones(n, dtype=dtype))


def compile_package(model: nn.Module, dtype: torch.dtype) -> bytes:
    """Trace, export and AOT-compile ``model``; the bytes of the package (no ffpt metadata)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    wrapper = MaskedEnergyForces(model)
    args = _example(model, dtype)
    gm = make_fx(wrapper, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*args)
    n = torch.export.Dim("atoms", min=2, max=10_000_000)
    e = torch.export.Dim("edges", min=2, max=1_000_000_000)
    ep = torch.export.export(gm, args, dynamic_shapes=({0: n}, {0: n}, {1: e}, {0: e}, {0: n}))
    with tempfile.TemporaryDirectory(prefix="ffpt-aoti-build-") as tmp:
        path = Path(tmp) / f"model{SUFFIX}"
        try:
            torch._inductor.aoti_compile_and_package(ep, package_path=str(path))
        except Exception as exc:
            msg = str(exc).strip().splitlines()
            raise OSError(f"AOTInductor compilation failed: {msg[0] if msg else type(exc)} "
                          "(needs a C++ compiler and free space in the temp folder)") from exc
        return path.read_bytes()


def load_package(records: dict[str, bytes], device_index: int = -1):
    """A callable package from verified ``records`` (extracted to a private folder)."""
    folder = tempfile.mkdtemp(prefix="ffpt-aoti-")
    try:
        for name, data in records.items():
            target = os.path.join(folder, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        loader = torch._C._aoti.AOTIModelPackageLoader(folder, "model", False, 1, device_index)
        from torch._inductor.package.package import AOTICompiledModel

        runner = AOTICompiledModel(loader)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    weakref.finalize(runner, shutil.rmtree, folder, True)
    return runner
