"""ASE calculator for ffpt models (checkpoint path or NewtonNet instance)."""

from __future__ import annotations

import os

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ffpt.data.graph import atoms_to_batch
from ffpt.model.checkpoint import DTYPES, load_model
from ffpt.model.forces import batch_energy_forces
from ffpt.model.newtonnet import NewtonNet


class FFPTCalculator(Calculator):
    """Energy (eV), forces (eV/Angstrom), per-atom energies and, for periodic cells, stress.

    ``model``: a checkpoint path or a ``NewtonNet``. ``dtype``: evaluation precision.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]  # noqa: RUF012

    def __init__(
        self,
        model: str | os.PathLike | NewtonNet,
        dtype: str = "float64",
        device: str = "cpu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, not {dtype!r}")
        if isinstance(model, str | os.PathLike):
            model = load_model(model)
        self.model = model.to(device=device, dtype=DTYPES[dtype]).eval()
        self.dtype = DTYPES[dtype]
        self.device = torch.device(device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(self.model.elements))
        if unknown:
            raise ValueError(
                f"element(s) {unknown} not in the model's elements {self.model.elements}; "
                "use a model trained on them"
            )
        periodic = bool(atoms.pbc.any())
        b = atoms_to_batch(atoms, self.model.elements, self.model.cutoff).to(
            self.device, self.dtype
        )
        out = batch_energy_forces(
            self.model, b.species, b.pos, b.edge_index, b.edge_shift, b.batch, 1,
            training=False, compute_virial=periodic,
        )
        energy = float(out["energy"][0])
        if not np.isfinite(energy):
            raise FloatingPointError("model energy is NaN/inf for this structure")
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = out["atomic_energies"].cpu().numpy().astype(np.float64)
        self.results["forces"] = out["forces"].detach().cpu().numpy().astype(np.float64)
        if periodic:
            from ase.stress import full_3x3_to_voigt_6_stress

            if not atoms.pbc.all():
                # stress is defined for 3D-periodic cells only
                self.results["stress"] = np.zeros(6)
            else:
                virial = out["virial"][0].detach().cpu().numpy().astype(np.float64)
                self.results["stress"] = full_3x3_to_voigt_6_stress(-virial / atoms.get_volume())
