"""Load a deployed artifact in Python and evaluate it exactly as ``pair_style ffpt`` does."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ffpt.deploy.deploy import DTYPES, FORMAT_VERSION, METADATA_FILE, ArtifactMetadata


def read_metadata(path: str | os.PathLike) -> ArtifactMetadata:
    """Metadata of an artifact without loading its code."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"deployed model {path} does not exist")
    if path.suffix == ".pt2":
        from ffpt.deploy.aoti import load_package

        meta = load_package(path)[1]
        return ArtifactMetadata.from_text("".join(f"{k}={v}\n" for k, v in meta.items()))
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(f"/extra/{METADATA_FILE}")]
            if not names:
                raise ValueError(f"{path} is not an ffpt artifact (no {METADATA_FILE})")
            text = zf.read(names[0]).decode()
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path} is not an ffpt artifact (not a TorchScript archive)") from exc
    return ArtifactMetadata.from_text(text)


class DeployedModel:
    """A loaded artifact: ``module`` (TorchScript), ``metadata``, and ``evaluate``."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        if self.metadata.format_version != FORMAT_VERSION:
            raise ValueError(
                f"{self.path}: artifact format version {self.metadata.format_version}, this "
                f"ffpt reads {FORMAT_VERSION}; re-deploy the checkpoint with this ffpt"
            )
        self.device = torch.device(device)
        # as in pair_style ffpt: the profiling executor re-specialises on every new edge count
        # and runs ~2x slower than eager; the legacy executor matches eager (process-wide)
        torch._C._jit_set_profiling_executor(False)
        self.aoti = self.path.suffix == ".pt2"
        if self.aoti:
            from ffpt.deploy.aoti import load_package

            self.module = load_package(self.path)[0]
        else:
            self.module = torch.jit.load(str(self.path), map_location=self.device)
        self.dtype = DTYPES[self.metadata.dtype]
        self.elements = list(self.metadata.elements)
        self.cutoff = self.metadata.cutoff
        self.num_interactions = self.metadata.num_interactions

    def species(self, symbols: list[str]) -> np.ndarray:
        index = {s: k for k, s in enumerate(self.elements)}
        unknown = sorted(set(symbols) - set(index))
        if unknown:
            raise ValueError(f"elements {unknown} are not in the model (it knows {self.elements})")
        return np.array([index[s] for s in symbols], dtype=np.int64)

    def evaluate(self, atoms) -> dict[str, np.ndarray | float]:
        """Energy (eV), atomic energies, forces (eV/A) and virial (eV) of an ``ase.Atoms``."""
        from ffpt.data.graph import neighbor_graph

        pbc = np.asarray(atoms.pbc, dtype=bool)
        cell = np.asarray(atoms.cell.array) if pbc.any() else None
        edge_index, shifts = neighbor_graph(atoms.positions, cell, pbc, self.cutoff)
        kw = {"dtype": self.dtype, "device": self.device}
        n = len(atoms)
        args = (
            torch.as_tensor(atoms.positions, **kw),
            torch.as_tensor(self.species(atoms.get_chemical_symbols()), device=self.device),
            torch.as_tensor(edge_index, device=self.device),
            torch.as_tensor(shifts, **kw),
        )
        out = self.module(*args, torch.ones(n, **kw)) if self.aoti else self.module(*args, n)
        e, ei, f, w = (t.detach().cpu().double().numpy() for t in out)
        return {"energy": float(e), "energies": ei, "forces": f, "virial": w}

    def calculator(self) -> DeployedCalculator:
        return DeployedCalculator(self)


class DeployedCalculator(Calculator):
    """ASE calculator running a deployed artifact (energy, energies, forces, stress)."""

    implemented_properties = ("energy", "free_energy", "energies", "forces", "stress")

    def __init__(self, model: DeployedModel | str | os.PathLike, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model if isinstance(model, DeployedModel) else DeployedModel(model)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        r = self.model.evaluate(self.atoms)
        self.results = {
            "energy": r["energy"],
            "free_energy": r["energy"],
            "energies": r["energies"],
            "forces": r["forces"],
        }
        if self.atoms.pbc.all():
            w = 0.5 * (r["virial"] + r["virial"].T)
            # ASE stress = -virial / volume (Voigt xx yy zz yz xz xy)
            s = -w / self.atoms.get_volume()
            self.results["stress"] = s.flat[[0, 4, 8, 5, 2, 1]]


def load_deployed(path: str | os.PathLike, device: str = "cpu") -> DeployedModel:
    """Load an ``ffpt-deploy`` artifact; ``.calculator()`` gives an ASE calculator."""
    return DeployedModel(path, device=device)
