"""Quantum-chemistry engines that turn one ``ase.Atoms`` into (energy eV, forces eV/Angstrom)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


class Engine:
    """Base class: ``compute(atoms) -> (energy, forces)``; ``describe()`` is the provenance."""

    name = "engine"

    def compute(self, atoms) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"engine": self.name, **asdict(self)}  # type: ignore[call-overload]


@dataclass
class XTBEngine(Engine):
    """GFN-xTB from ``tblite`` (molecules and periodic cells). A fresh calculator per frame,
    so a label does not depend on which frames came before (resumed runs are identical)."""

    method: str = "GFN2-xTB"
    charge: int = 0
    multiplicity: int = 1
    accuracy: float = 1.0
    electronic_temperature: float = 300.0
    max_iterations: int = 250
    name = "xtb"

    def compute(self, atoms) -> tuple[float, np.ndarray]:
        from tblite.ase import TBLite

        atoms = atoms.copy()
        atoms.calc = TBLite(
            method=self.method,
            charge=self.charge,
            multiplicity=self.multiplicity,
            accuracy=self.accuracy,
            electronic_temperature=self.electronic_temperature,
            max_iterations=self.max_iterations,
            verbosity=0,
        )
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces(), dtype=np.float64)
        return energy, forces


@dataclass
class PySCFEngine(Engine):
    """Molecular SCF from PySCF: ``method`` is ``HF`` or any PySCF XC functional (run as RKS/UKS).
    Default PBE/def2-SVP: cheap, and honest about being a low level of theory."""

    method: str = "PBE"
    basis: str = "def2-SVP"
    charge: int = 0
    multiplicity: int = 1
    conv_tol: float = 1e-9
    name = "pyscf"

    def compute(self, atoms) -> tuple[float, np.ndarray]:
        try:
            from pyscf import dft, gto, scf
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the pyscf engine needs PySCF: "
                "PIP_CONSTRAINT=scripts/constraints.txt .venv/bin/pip install pyscf"
            ) from exc
        from ase.units import Bohr, Hartree

        if atoms.pbc.any():
            raise ValueError(
                "the pyscf engine is molecular only, but this frame is periodic; "
                "use --engine xtb for periodic cells"
            )
        symbols = atoms.get_chemical_symbols()
        mol = gto.M(
            atom=[(s, tuple(p)) for s, p in zip(symbols, atoms.positions, strict=True)],
            unit="Angstrom",
            basis=self.basis,
            charge=self.charge,
            spin=self.multiplicity - 1,
            verbose=0,
        )
        open_shell = self.multiplicity != 1
        if self.method.upper() == "HF":
            mf = scf.UHF(mol) if open_shell else scf.RHF(mol)
        else:
            mf = dft.UKS(mol) if open_shell else dft.RKS(mol)
            mf.xc = self.method
        mf.conv_tol = self.conv_tol
        energy = mf.kernel()
        if not mf.converged:
            raise RuntimeError(f"PySCF {self.method}/{self.basis} SCF did not converge")
        grad = mf.nuc_grad_method().kernel()
        return float(energy) * Hartree, -np.asarray(grad) * Hartree / Bohr


ENGINES: dict[str, type[Engine]] = {"xtb": XTBEngine, "pyscf": PySCFEngine}


def make_engine(name: str, **options) -> Engine:
    """Engine by name; options that are ``None`` keep the engine's default."""
    if name not in ENGINES:
        raise ValueError(f"unknown labelling engine '{name}'; choose one of {sorted(ENGINES)}")
    cls = ENGINES[name]
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    unknown = [k for k, v in options.items() if v is not None and k not in fields]
    if unknown:
        raise ValueError(f"engine '{name}' has no option(s) {unknown}; it takes {sorted(fields)}")
    return cls(**{k: v for k, v in options.items() if v is not None})
