"""Teacher interface, ASE adapter and registry.

A *teacher* is a cheap classical force field for one molecule, cluster or periodic box
(atomic numbers, and the cell of a periodic teacher, fixed at construction). ``label``
evaluates a batch of geometries at once::

    energy[F] (eV), forces[F, N, 3] (eV/Angstrom) = teacher.label(positions[F, N, 3])  # Angstrom

Teachers are created by name with :func:`get_teacher` (``tip3p-flex``,
``tip3p-flex-liquid``, ``qforce-h2``, ``gaff``) and drive ASE through
:class:`TeacherCalculator` (relaxations, scans).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

_REGISTRY: dict[str, Callable[..., Teacher]] = {}


class Teacher(ABC):
    """A force field for one molecule; subclasses set ``name``, ``numbers`` and
    ``initial_positions`` and implement :meth:`label`."""

    name: str = "teacher"
    numbers: np.ndarray  # (N,) atomic numbers
    initial_positions: np.ndarray  # (N, 3) Angstrom, a starting geometry for relaxation
    cell: np.ndarray | None = None  # (3, 3) Angstrom rows for periodic teachers, else None
    relax_fmax: float = 1e-6  # eV/Angstrom, tolerance of relaxed_positions

    @abstractmethod
    def label(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies (F,) in eV and forces (F, N, 3) in eV/Angstrom for positions (F, N, 3)."""

    # ------------------------------------------------------------ conveniences
    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self.numbers]

    @property
    def formula(self) -> str:
        from ase.formula import Formula

        return str(Formula("".join(self.symbols)).format("hill"))

    def describe(self) -> dict:
        """Provenance recorded in PT data files (JSON-serialisable)."""
        return {"teacher": self.name, "formula": self.formula}

    def check_positions(self, positions: np.ndarray) -> np.ndarray:
        """Return positions as a float64 (F, N, 3) array or raise a clear ``ValueError``."""
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim == 2:
            pos = pos[None]
        if pos.ndim != 3 or pos.shape[1:] != (self.n_atoms, 3):
            raise ValueError(
                f"{self.name} teacher for {self.formula} expects positions of shape "
                f"(frames, {self.n_atoms}, 3) in Angstrom, got {np.shape(positions)}"
            )
        return pos

    def energy_forces(self, positions: np.ndarray) -> tuple[float, np.ndarray]:
        """Single geometry (N, 3): energy (eV) and forces (N, 3)."""
        e, f = self.label(np.asarray(positions, dtype=np.float64)[None])
        return float(e[0]), f[0]

    def relax(
        self, positions: np.ndarray | None = None, fmax: float = 1e-6, maxiter: int = 20000
    ) -> np.ndarray:
        """Minimise the teacher energy (scipy L-BFGS-B, then BFGS polish) from ``positions``
        (default :attr:`initial_positions`). Returns the relaxed (N, 3) geometry; raises
        ``RuntimeError`` if the largest force stays above ``fmax`` (eV/Angstrom)."""
        from scipy.optimize import minimize

        x0 = np.array(self.initial_positions if positions is None else positions, dtype=float)
        if self.n_atoms == 1:
            return x0

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            e, f = self.energy_forces(x.reshape(-1, 3))
            return e, -f.reshape(-1)

        x = x0.reshape(-1)
        for method, opts in (
            ("L-BFGS-B", {"maxiter": maxiter, "gtol": fmax * 1e-2, "ftol": 1e-16, "maxcor": 50}),
            ("BFGS", {"maxiter": maxiter, "gtol": fmax * 1e-1}),
        ):
            res = minimize(fun, x, jac=True, method=method, options=opts)
            x = res.x
            if np.abs(fun(x)[1]).max() < fmax:
                break
        fmax_now = float(np.abs(fun(x)[1]).max())
        if fmax_now > fmax:
            raise RuntimeError(
                f"{self.name} relaxation of {self.formula} stopped with max force "
                f"{fmax_now:.2e} eV/A > {fmax:.1e}; pass a better starting geometry"
            )
        return x.reshape(-1, 3)

    @property
    def relaxed_positions(self) -> np.ndarray:
        """Relaxed geometry (computed once, cached)."""
        if getattr(self, "_relaxed", None) is None:
            self._relaxed = self.relax(fmax=self.relax_fmax)
        return self._relaxed.copy()

    @property
    def reference_positions(self) -> np.ndarray:
        """(K, N, 3) geometries that PT frames are rattled around (frame j uses reference
        j mod K); one molecule: the relaxed geometry only."""
        return self.relaxed_positions[None]

    def atoms(self, positions: np.ndarray | None = None):
        """``ase.Atoms`` of this molecule (default: relaxed geometry), teacher attached."""
        from ase import Atoms

        pos = self.relaxed_positions if positions is None else positions
        atoms = Atoms(numbers=self.numbers, positions=pos)
        if self.cell is not None:
            atoms.set_cell(self.cell)
            atoms.pbc = True
        atoms.calc = TeacherCalculator(self)
        return atoms

    def as_calculator(self) -> TeacherCalculator:
        return TeacherCalculator(self)


try:  # ASE is a hard dependency of ffpt, but keep the import local to the class
    from ase.calculators.calculator import Calculator, all_changes
except ImportError:  # pragma: no cover
    Calculator = object  # type: ignore[assignment,misc]
    all_changes = []  # type: ignore[assignment]


class TeacherCalculator(Calculator):
    """ASE calculator evaluating a :class:`Teacher` (energy, free_energy, forces).

    The Atoms must hold the teacher's atoms in the teacher's order; cells/PBC are ignored
    by molecular teachers, and must equal the teacher's cell for periodic ones."""

    implemented_properties = ["energy", "free_energy", "forces"]  # noqa: RUF012

    def __init__(self, teacher: Teacher, **kwargs) -> None:
        super().__init__(**kwargs)
        self.teacher = teacher

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        if not np.array_equal(self.atoms.numbers, self.teacher.numbers):
            raise ValueError(
                f"atoms {self.atoms.get_chemical_formula()} (numbers "
                f"{list(self.atoms.numbers)}) do not match the {self.teacher.name} teacher's "
                f"atoms {list(self.teacher.numbers)}; "
                "build the Atoms with teacher.atoms() or in the teacher's atom order"
            )
        cell = self.teacher.cell
        if cell is not None and not (
            self.atoms.pbc.all() and np.allclose(self.atoms.cell[:], cell, atol=1e-8)
        ):
            raise ValueError(
                f"the {self.teacher.name} teacher is periodic with cell "
                f"{np.round(cell, 6).tolist()} A; the atoms have cell "
                f"{np.round(self.atoms.cell[:], 6).tolist()} (pbc {self.atoms.pbc.tolist()}): "
                "build a teacher for this cell (cell=atoms.cell)"
            )
        e, f = self.teacher.energy_forces(self.atoms.positions)
        self.results = {"energy": e, "free_energy": e, "forces": f}


# Built-in teachers, resolved lazily ("module:attribute"), so that this module never imports
# them and they import nothing from the registry.
_BUILTIN: dict[str, str] = {
    "tip3p-flex": "ffpt.teachers.tip3p_flex:TIP3PFlex",
    "tip3p-flex-liquid": "ffpt.teachers.tip3p_liquid:TIP3PFlexLiquid",
    "qforce-h2": "ffpt.teachers.qforce_h2:QForceH2",
    "gaff": "ffpt.teachers.gaff:GAFFTeacher",
}


def register(name: str) -> Callable:
    """Class/factory decorator: make a (user) teacher available as ``get_teacher(name, ...)``."""

    def deco(factory: Callable[..., Teacher]) -> Callable[..., Teacher]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available_teachers() -> list[str]:
    return sorted({*_BUILTIN, *_REGISTRY})


def _factory(key: str) -> Callable[..., Teacher]:
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key not in _BUILTIN:
        raise ValueError(f"unknown teacher '{key}'; choose one of {available_teachers()}")
    import importlib

    module, attr = _BUILTIN[key].split(":")
    return getattr(importlib.import_module(module), attr)


def get_teacher(name: str, **kwargs) -> Teacher:
    """Create a teacher by name, e.g. ``get_teacher("qforce-h2", species="H2O2")``,
    ``get_teacher("gaff", smiles="CC(=O)Oc1ccccc1C(=O)O")``, ``get_teacher("tip3p-flex")``,
    ``get_teacher("tip3p-flex-liquid", n_molecules=8, periodic=True)``."""
    if str(name).endswith(".json"):  # a fitted EAM file (ffpt teacher fit-eam)
        from ffpt.teachers.eam import eam_teacher

        return eam_teacher(name, **kwargs)
    key = name.lower().replace("_", "-")
    factory = _factory(key)
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise ValueError(
            f"bad options for teacher '{key}': {exc}; accepted: {inspect.signature(factory)}"
        ) from exc
    return factory(**kwargs)
