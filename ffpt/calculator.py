"""ASE calculator for ffpt models (checkpoint path or NewtonNet instance)."""

from __future__ import annotations

import os

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ffpt.data.graph import atoms_to_batch
from ffpt.model.checkpoint import DTYPES, load_model
from ffpt.model.forces import batch_energies, batch_energy_forces, virial_to_stress
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
        if periodic:  # stress is defined for 3D-periodic cells only (else zeros)
            self.results["stress"] = (virial_to_stress(out["virial"][0], atoms.get_volume())
                                      if atoms.pbc.all() else np.zeros(6))

    def batch_energies(self, numbers, positions: np.ndarray, chunk: int = 256) -> np.ndarray:
        """Energies (eV) of many non-periodic geometries ``positions[P, N, 3]`` of one molecule,
        evaluated ``chunk`` frames at a time without forces (scans); NaN where not finite."""
        from ase import Atoms

        from ffpt.data.frames import FrameSet
        from ffpt.data.graph import GraphSet
        out = []
        for c in range(0, len(positions), chunk):
            images = [Atoms(numbers=numbers, positions=x) for x in positions[c : c + chunk]]
            fs = FrameSet.from_atoms(images, energy_key=None, forces_key=None)
            gs = GraphSet(fs, self.model.elements, self.model.cutoff)
            b = gs.batch(np.arange(len(images))).to(self.device, self.dtype)
            out.append(batch_energies(self.model, b).cpu().numpy())
        e = np.concatenate(out) if out else np.zeros(0)
        return np.where(np.isfinite(e), e, np.nan)


def force_deviation(forces: np.ndarray) -> np.ndarray:
    """Per-atom force deviation of an ensemble, DeePMD-kit's model deviation:
    ``sqrt(< |F_i^m - <F_i>_m|^2 >_m)`` for ``forces[K, N, 3]`` (eV/A) -> ``[N]``."""
    f = np.asarray(forces, dtype=np.float64)
    return np.sqrt(((f - f.mean(0)) ** 2).sum(-1).mean(0))


class EnsembleCalculator(Calculator):
    """A deep ensemble: the first model's results plus the ensemble's model deviation.

    ``calculators``: ffpt model calculators (:class:`FFPTCalculator` or a deployed artifact's)
    that share elements and cutoff. Extra results: ``forces_deviation`` (per atom, eV/A, see
    :func:`force_deviation`), ``max_forces_deviation``, ``mean_forces_deviation`` and
    ``energy_deviation`` (standard deviation of the K energies per atom, eV/atom), as in
    ``pair_style ffpt`` with several models (docs/ensembles.md).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress",  # noqa: RUF012
                              "forces_deviation", "max_forces_deviation",
                              "mean_forces_deviation", "energy_deviation"]

    def __init__(self, calculators, **kwargs):
        super().__init__(**kwargs)
        self.calculators = list(calculators)
        if len(self.calculators) < 2:
            raise ValueError("an ensemble needs at least 2 models (got "
                             f"{len(self.calculators)}); give several model files")
        models = [getattr(c, "model", None) for c in self.calculators]
        if any(not hasattr(m, "elements") or not hasattr(m, "cutoff") for m in models):
            raise ValueError("ensemble members must be ffpt models (checkpoints or deployed "
                             "artifacts), not teachers")
        first = models[0]
        for k, m in enumerate(models[1:], start=1):
            if list(m.elements) != list(first.elements) or abs(m.cutoff - first.cutoff) > 1e-9:
                raise ValueError(
                    f"ensemble models disagree: model {k} has elements {list(m.elements)}, "
                    f"cutoff {m.cutoff} A but model 0 has {list(first.elements)}, "
                    f"{first.cutoff} A; use models of one training config (ffpt train "
                    "--ensemble K)")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        results = []
        for calc in self.calculators:
            calc.calculate(self.atoms, ["energy", "forces"], all_changes)
            results.append(dict(calc.results))
        self.results = dict(results[0])
        dev = force_deviation(np.stack([r["forces"] for r in results]))
        energies = np.array([r["energy"] for r in results])
        self.results.update({
            "forces_deviation": dev,
            "max_forces_deviation": float(dev.max()) if len(dev) else 0.0,
            "mean_forces_deviation": float(dev.mean()) if len(dev) else 0.0,
            "energy_deviation": float(energies.std()) / max(1, len(self.atoms)),
        })


def load_calculator(
    spec: str | os.PathLike | list | tuple, dtype: str = "float64",
    species: str | None = None,
) -> Calculator:
    """One ASE calculator from a spec: a model file or a teacher.

    * a training checkpoint (``ffpt-checkpoint`` tag) -> :class:`FFPTCalculator` in ``dtype``;
    * a deployed artifact (``ffpt-deploy`` output) -> its ``DeployedCalculator`` (the
      artifact's own dtype);
    * a list of model files -> :class:`EnsembleCalculator` (the first drives, all give the
      force deviation);
    * a teacher ``NAME[:ARG]``: ``tip3p-flex``, ``qforce-h2:HO2`` (ARG = species; without it
      ``species`` or H2O), ``gaff:SMILES`` or ``gaff:FILE.sdf``.

    Files are told apart by content, not by extension. Anything else: ``ValueError``.
    """
    from pathlib import Path

    if isinstance(spec, list | tuple):
        missing = [str(s) for s in spec if not Path(s).is_file()]
        if missing:
            raise ValueError(f"ensemble model file {missing[0]} not found; give existing "
                             "checkpoints or deployed artifacts")
        if len(spec) == 1:
            return _load_model_file(Path(spec[0]), dtype)
        return EnsembleCalculator([_load_model_file(Path(s), dtype) for s in spec])
    path = Path(spec)
    if path.is_file() and path.suffix == ".json":  # a fitted EAM (ffpt teacher fit-eam)
        from ffpt.teachers.eam import EAMCalculator

        return EAMCalculator(path)
    if path.is_file():
        return _load_model_file(path, dtype)
    from ffpt.teachers.base import available_teachers, get_teacher

    name, _, arg = str(spec).partition(":")
    key = name.strip().lower().replace("_", "-")
    if key not in available_teachers():
        raise ValueError(
            f"'{spec}' is neither an existing model file nor a teacher; give a checkpoint, a "
            f"deployed artifact or a teacher ({', '.join(available_teachers())}, e.g. "
            "qforce-h2:HO2)"
        )
    if key == "gaff":
        opt = {"structure": arg} if arg and Path(arg).is_file() else {"smiles": arg or None}
        return get_teacher(key, **opt).as_calculator()
    arg = arg.strip() or species
    return get_teacher(key, **({"species": arg} if arg else {})).as_calculator()


def _load_model_file(path, dtype: str) -> Calculator:
    """Checkpoint or deployed artifact, recognised by content."""
    from ffpt.deploy.artifact import load_deployed, read_metadata
    from ffpt.model.checkpoint import load_checkpoint, model_from_checkpoint

    try:
        read_metadata(path)
    except ValueError:
        pass
    else:
        return load_deployed(path).calculator()
    try:
        ckpt = load_checkpoint(path)
    except ValueError as exc:
        raise ValueError(
            f"{path}: neither an ffpt training checkpoint nor a deployed artifact; give a "
            "file written by 'ffpt train' or 'ffpt-deploy'"
        ) from exc
    return FFPTCalculator(model_from_checkpoint(ckpt), dtype=dtype)
