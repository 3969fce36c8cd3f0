"""Embedded-atom (EAM) teacher fitted to the target data (materials pre-training).

Energy of a structure (any elements, cluster or periodic cell)::

    E = sum_i F_a(rho_i) + 1/2 sum_i sum_{j != i} phi_ab(r_ij),   rho_i = sum_{j != i} f_b(r_ij)

with a = element of i, b = element of j, and, multiplied by the smooth cutoff
``psi(r) = x^4 / (1 + x^4)``, ``x = (r - rc) / h`` (0 beyond ``rc``):

* pair term per element pair (Morse):
  ``phi_ab(r) = D [exp(-2 alpha (r - r0)) - 2 exp(-alpha (r - r0))]``;
* electron density per element: ``f_b(r) = exp(-beta_b (r - r_ref))`` (``r_ref`` fixed at the
  data's typical nearest-neighbour distance, so that ``rho`` is of order the coordination);
* embedding per element: ``F_a(rho) = E0_a - A_a sqrt(rho) + B_a rho^2``.

:func:`fit_eam` fits D, alpha, r0, beta, A, B, E0 (D, alpha, beta, A, B > 0) to energies and
forces by least squares (torch L-BFGS, float64, autograd forces). :class:`EAMPotential`
evaluates any frames (vectorised over all pairs of all frames); :class:`EAMTeacher` is the
usual fixed-structure :class:`~ffpt.teachers.base.Teacher`; :class:`EAMCalculator` drives
ASE; :meth:`EAMPotential.write_setfl` writes a LAMMPS ``pair_style eam/alloy`` file (tabulated:
LAMMPS interpolates it with cubic splines and extrapolates ``F`` linearly beyond ``rho_max``).
The JSON file (``ffpt teacher fit-eam``) holds the parameters: ``get_teacher("eam.json",
structure=...)`` and ``--teacher eam.json`` load it.
"""

from __future__ import annotations

import json
import math
import time
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np
import torch

from ffpt.teachers.base import Teacher

KIND = "ffpt-eam"
PAIR_KEYS = ("D", "alpha", "r0")
ELEMENT_KEYS = ("beta", "A", "B", "E0")
POSITIVE = {"D", "alpha", "beta", "A", "B"}


def pair_name(a: str, b: str) -> str:
    return "-".join(sorted((a, b)))


def neighbour_pairs(frames, cutoff: float) -> dict[str, np.ndarray]:
    """All ordered pairs (i, j) within ``cutoff`` of every frame of a FrameSet, with global
    atom indices and Cartesian image shifts (A): ``{"i", "j", "shift", "frame"}``."""
    from ase.neighborlist import primitive_neighbor_list

    out_i, out_j, out_s = [], [], []
    offs = frames.offsets
    for k in range(frames.n_frames):
        s = frames.frame_slice(k)
        pos = frames.positions[s]
        if frames.cell is not None and frames.pbc is not None and frames.pbc[k].any():
            cell, pbc = frames.cell[k], frames.pbc[k]
        else:
            span = np.ptp(pos, axis=0) if len(pos) else np.zeros(3)
            cell, pbc = np.diag(span + 2 * cutoff + 1.0), np.zeros(3, bool)
        i, j, shift = primitive_neighbor_list("ijS", pbc, cell, pos, cutoff)
        out_i.append(i + offs[k])
        out_j.append(j + offs[k])
        out_s.append(shift @ cell)
    cat = (lambda x, shape: np.concatenate(x) if x else np.zeros(shape))  # noqa: E731
    return {"i": cat(out_i, 0).astype(np.int64), "j": cat(out_j, 0).astype(np.int64),
            "shift": cat(out_s, (0, 3)).astype(np.float64)}


class EAMPotential(torch.nn.Module):
    """EAM parameters as torch parameters (positive ones stored as logs); see module docstring."""

    def __init__(self, elements: list[str], params: dict, cutoff: float = 5.0,
                 smoothing: float = 0.5, r_ref: float = 2.5) -> None:
        super().__init__()
        if not cutoff > smoothing > 0:
            raise ValueError(f"need cutoff > smoothing > 0 (A), got {cutoff}, {smoothing}")
        self.elements = list(elements)
        self.cutoff, self.smoothing, self.r_ref = float(cutoff), float(smoothing), float(r_ref)
        self.pairs = [pair_name(a, b) for a, b in combinations_with_replacement(self.elements, 2)]
        n = len(self.elements)
        table = np.zeros((n, n), dtype=np.int64)
        for a, b in combinations_with_replacement(range(n), 2):
            table[a, b] = table[b, a] = self.pairs.index(pair_name(self.elements[a],
                                                                   self.elements[b]))
        self.register_buffer("pair_table", torch.as_tensor(table))
        raw = {}
        for key in PAIR_KEYS:
            raw[key] = [params["pairs"][p][key] for p in self.pairs]
        for key in ELEMENT_KEYS:
            raw[key] = [params["elements"][e][key] for e in self.elements]
        self.raw = torch.nn.ParameterDict({
            k: torch.nn.Parameter(torch.log(torch.as_tensor(v, dtype=torch.float64))
                                  if k in POSITIVE else torch.as_tensor(v, dtype=torch.float64))
            for k, v in raw.items()
        })

    # ---------------------------------------------------------------- parameters
    def value(self, key: str) -> torch.Tensor:
        v = self.raw[key]  # clamps keep wild line-search steps of the fit finite
        return torch.exp(v.clamp(-30.0, 5.0)) if key in POSITIVE else v

    def params(self) -> dict:
        vals = {k: self.value(k).detach().tolist() for k in self.raw}
        return {
            "pairs": {p: {k: vals[k][n] for k in PAIR_KEYS} for n, p in enumerate(self.pairs)},
            "elements": {e: {k: vals[k][n] for k in ELEMENT_KEYS}
                         for n, e in enumerate(self.elements)},
        }

    def to_dict(self) -> dict:
        return {"kind": KIND, "elements": self.elements, "cutoff_A": self.cutoff,
                "smoothing_A": self.smoothing, "r_ref_A": self.r_ref, **self.params(),
                "form": "E = sum_i [E0 - A sqrt(rho_i) + B rho_i^2] + 1/2 sum_ij D[exp(-2a(r-r0))"
                        " - 2exp(-a(r-r0))] psi(r); rho_i = sum_j exp(-beta_j (r_ij - r_ref))"
                        " psi(r); psi = x^4/(1+x^4), x = (r - cutoff)/smoothing"}

    @classmethod
    def from_dict(cls, d: dict) -> EAMPotential:
        if d.get("kind") != KIND:
            raise ValueError(f"not an ffpt EAM file (kind {d.get('kind')!r}, want {KIND!r}); "
                             "make one with ffpt teacher fit-eam")
        return cls(d["elements"], d, d["cutoff_A"], d["smoothing_A"], d["r_ref_A"])

    @classmethod
    def load(cls, path: str | Path) -> EAMPotential:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: EAM file not found; make it with "
                                    "ffpt teacher fit-eam DATA -o eam.json")
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        from ffpt.data.frames import atomic_write

        text = json.dumps({**self.to_dict(), **(extra or {})}, indent=1)
        atomic_write(path, lambda f: f.write(text.encode()))

    # ---------------------------------------------------------------- functions
    def psi(self, r: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((r - self.cutoff) / self.smoothing, max=0.0)
        x4 = x**4
        return x4 / (1 + x4)

    def phi(self, r: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        d, a, r0 = (self.value(k)[pair] for k in PAIR_KEYS)
        e = torch.exp((-a * (r - r0)).clamp(max=30.0))
        return d * (e * e - 2 * e) * self.psi(r)

    def density(self, r: torch.Tensor, elem: torch.Tensor) -> torch.Tensor:
        return torch.exp((-self.value("beta")[elem] * (r - self.r_ref)).clamp(max=30.0)) \
            * self.psi(r)

    def embed(self, rho: torch.Tensor, elem: torch.Tensor) -> torch.Tensor:
        a, b, e0 = (self.value(k)[elem] for k in ("A", "B", "E0"))
        return e0 - a * torch.sqrt(rho + 1e-30) + b * rho * rho

    def species(self, numbers: np.ndarray) -> np.ndarray:
        from ase.data import atomic_numbers

        z = np.array([atomic_numbers[e] for e in self.elements])
        idx = np.full(int(max(z.max(), np.max(numbers, initial=0))) + 1, -1)
        idx[z] = np.arange(len(z))
        sp = idx[np.asarray(numbers)]
        if (sp < 0).any():
            from ase.data import chemical_symbols

            bad = sorted({chemical_symbols[n] for n in np.asarray(numbers)[sp < 0]})
            raise ValueError(f"the EAM has elements {self.elements}; the structures also hold "
                             f"{bad}: fit an EAM to data with those elements")
        return sp

    def energies(self, positions: torch.Tensor, species: torch.Tensor, frame: torch.Tensor,
                 n_frames: int, pairs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame energies and per-atom densities for ``positions`` [N, 3] (all frames)."""
        i = torch.as_tensor(pairs["i"])
        j = torch.as_tensor(pairs["j"])
        vec = positions[j] - positions[i] + torch.as_tensor(pairs["shift"], dtype=positions.dtype)
        r = torch.linalg.norm(vec, dim=1)
        si, sj = species[i], species[j]
        rho = torch.zeros(len(positions), dtype=positions.dtype).index_add(
            0, i, self.density(r, sj))
        e_atom = self.embed(rho, species)
        e_atom = e_atom.index_add(0, i, 0.5 * self.phi(r, self.pair_table[si, sj]))
        return torch.zeros(n_frames, dtype=positions.dtype).index_add(0, frame, e_atom), rho

    def evaluate(self, frames, pairs: dict | None = None,
                 forces: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Energies (F,) eV and forces (N_total, 3) eV/A of every frame of a FrameSet."""
        pairs = pairs if pairs is not None else neighbour_pairs(frames, self.cutoff)
        sp = torch.as_tensor(self.species(frames.numbers))
        frame = torch.as_tensor(np.repeat(np.arange(frames.n_frames), frames.n_atoms))
        pos = torch.tensor(frames.positions, dtype=torch.float64, requires_grad=forces)
        with torch.enable_grad() if forces else torch.no_grad():
            e, _ = self.energies(pos, sp, frame, frames.n_frames, pairs)
            if not forces:
                return e.detach().numpy(), None
            (g,) = torch.autograd.grad(e.sum(), pos)
        return e.detach().numpy(), -g.numpy()

    # ---------------------------------------------------------------- LAMMPS
    def write_setfl(self, path: str | Path, rho_max: float, n_rho: int = 10000,
                    n_r: int = 10000, comment: str = "") -> Path:
        """LAMMPS ``eam/alloy`` (setfl) file; ``pair_coeff * * FILE`` + this order of elements.
        ``rho_max``: top of the embedding table (LAMMPS extrapolates linearly beyond)."""
        from ase.data import atomic_masses, atomic_numbers

        from ffpt.data.frames import atomic_write

        d_rho, d_r = rho_max / (n_rho - 1), self.cutoff / (n_r - 1)
        rho = torch.arange(n_rho, dtype=torch.float64) * d_rho
        r = torch.arange(n_r, dtype=torch.float64) * d_r
        lines = ["ffpt EAM (Morse pair, exponential density, -A sqrt(rho) + B rho^2 embedding)",
                 comment.replace("\n", " ")[:200] or "fitted with ffpt teacher fit-eam",
                 "units metal (eV, Angstrom)",
                 f"{len(self.elements)} " + " ".join(self.elements),
                 f"{n_rho} {d_rho:.16e} {n_r} {d_r:.16e} {self.cutoff:.16e}"]

        def block(values: torch.Tensor) -> list[str]:
            v = values.detach().numpy()
            return [" ".join(f"{x:.16e}" for x in v[k:k + 5]) for k in range(0, len(v), 5)]

        with torch.no_grad():
            for n, e in enumerate(self.elements):
                z = atomic_numbers[e]
                lines.append(f"{z} {atomic_masses[z]:.6f} 0.0 none")
                lines += block(self.embed(rho, torch.full((n_rho,), n)))
                lines += block(self.density(r, torch.full((n_r,), n)))
            for a in range(len(self.elements)):
                for b in range(a + 1):
                    pair = torch.full((n_r,), int(self.pair_table[a, b]))
                    lines += block(r * self.phi(r, pair))
        text = "\n".join(lines) + "\n"
        atomic_write(path, lambda f: f.write(text.encode()))
        return Path(path)


# ------------------------------------------------------------------------- fitting
def initial_params(frames, elements: list[str]) -> tuple[dict, float]:
    """A starting point from the data: r0 = r_ref = median nearest-neighbour distance,
    E0 = mean energy per atom, generic Morse/density/embedding shapes."""
    pairs = neighbour_pairs(frames, 6.0)
    d = np.linalg.norm(frames.positions[pairs["j"]] - frames.positions[pairs["i"]]
                       + pairs["shift"], axis=1)
    nn = np.full(len(frames.positions), np.inf)
    np.minimum.at(nn, pairs["i"], d)
    r_nn = float(np.median(nn[np.isfinite(nn)])) if np.isfinite(nn).any() else 2.5
    e0 = float(np.mean(frames.energy / frames.n_atoms))
    params = {
        "pairs": {pair_name(a, b): {"D": 0.5, "alpha": 1.5, "r0": r_nn}
                  for a, b in combinations_with_replacement(elements, 2)},
        "elements": {e: {"beta": 2.0, "A": 1.0, "B": 0.01, "E0": e0} for e in elements},
    }
    return params, r_nn


def fit_eam(frames, cutoff: float = 5.0, smoothing: float = 0.5, energy_weight: float = 1.0,
            forces_weight: float = 1.0, max_iter: int = 500, start: dict | None = None,
            r_ref: float | None = None, progress: bool = False) -> tuple[EAMPotential, dict]:
    """Least-squares EAM fit to a labelled FrameSet.

    Loss = energy_weight * mean((E - E_ref)/N)^2 + forces_weight * mean((F - F_ref)^2)
    (eV^2 per atom^2 and (eV/A)^2), minimised with L-BFGS (strong Wolfe). ``start``: initial
    parameters (default :func:`initial_params`). Returns the potential and fit statistics."""
    if frames.energy is None or frames.forces is None:
        raise ValueError("fit-eam needs energies and forces in the data; label it first "
                         "(ffpt label DATA -o labelled.npz)")
    from ase.data import atomic_numbers

    elements = sorted(frames.elements, key=atomic_numbers.__getitem__)
    guess, r_nn = initial_params(frames, elements)
    pot = EAMPotential(elements, start or guess, cutoff, smoothing, r_ref or r_nn)
    pairs = neighbour_pairs(frames, cutoff)
    sp = torch.as_tensor(pot.species(frames.numbers))
    frame = torch.as_tensor(np.repeat(np.arange(frames.n_frames), frames.n_atoms))
    pos = torch.tensor(frames.positions, dtype=torch.float64, requires_grad=True)
    e_ref = torch.as_tensor(frames.energy)
    f_ref = torch.as_tensor(frames.forces)
    n_at = torch.as_tensor(frames.n_atoms, dtype=torch.float64)

    def losses() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e, _ = pot.energies(pos, sp, frame, frames.n_frames, pairs)
        (g,) = torch.autograd.grad(e.sum(), pos, create_graph=True)
        le = (((e - e_ref) / n_at) ** 2).mean()
        lf = ((-g - f_ref) ** 2).mean()
        return energy_weight * le + forces_weight * lf, le, lf

    chunk = min(50, max_iter)
    opt = torch.optim.LBFGS(pot.parameters(), lr=1.0, max_iter=chunk, history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-15)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss, _, _ = losses()
        loss.backward()
        return loss

    t0 = time.perf_counter()
    with torch.no_grad():  # start E0 at the least-squares energy zero of the start model
        e, _ = pot.energies(pos, sp, frame, frames.n_frames, pairs)
        counts = np.zeros((frames.n_frames, len(elements)))
        np.add.at(counts, (frame.numpy(), sp.numpy()), 1.0)
        de = np.linalg.lstsq(counts, frames.energy - e.numpy(), rcond=None)[0]
        pot.raw["E0"] += torch.as_tensor(de)
    _, le0, lf0 = losses()
    good = {k: v.detach().clone() for k, v in pot.state_dict().items()}
    done, stopped = 0, "max_iter"
    while done < max_iter:  # chunks of L-BFGS; a step to a non-finite loss is undone
        opt.step(closure)
        done += chunk
        if not torch.isfinite(losses()[0]):
            pot.load_state_dict(good)
            stopped = "non-finite loss: last finite parameters kept"
            break
        good = {k: v.detach().clone() for k, v in pot.state_dict().items()}
    loss, le, lf = losses()
    if not torch.isfinite(loss):
        raise RuntimeError("the EAM fit diverged (non-finite loss); check the data's labels "
                           "or pass a larger --cutoff")
    stats = {"n_frames": int(frames.n_frames), "n_atoms": int(frames.n_atoms.sum()),
             "energy_rmse_eV_atom": math.sqrt(float(le.detach())),
             "forces_rmse_eV_A": math.sqrt(float(lf.detach())),
             "start_energy_rmse_eV_atom": math.sqrt(float(le0.detach())),
             "start_forces_rmse_eV_A": math.sqrt(float(lf0.detach())),
             "forces_rms_eV_A": float(np.sqrt((frames.forces**2).mean())),
             "energy_weight": energy_weight, "forces_weight": forces_weight,
             "max_iter": max_iter, "stopped": stopped,
             "seconds": round(time.perf_counter() - t0, 2)}
    with torch.no_grad():
        _, rho = pot.energies(pos, sp, frame, frames.n_frames, pairs)
    stats["rho_max_data"] = float(rho.max())
    return pot, stats


# ------------------------------------------------------------------------- teacher
class EAMTeacher(Teacher):
    """A fitted EAM as a :class:`Teacher` for one structure (atoms and, if periodic, cell)."""

    name = "eam"
    relax_fmax = 1e-3

    def __init__(self, potential: EAMPotential | str | Path, structure=None, numbers=None,
                 positions=None, cell=None, source: str = "<memory>") -> None:
        self.potential = (potential if isinstance(potential, EAMPotential)
                          else EAMPotential.load(potential))
        self.source = source if isinstance(potential, EAMPotential) else str(potential)
        if structure is not None:
            atoms = structure
            if isinstance(structure, str | Path):
                from ase.io import read

                atoms = read(structure)
            numbers, positions = atoms.numbers, atoms.positions
            cell = atoms.cell[:] if atoms.pbc.all() else None
        if numbers is None or positions is None:
            raise ValueError("the eam teacher needs a structure: structure=FILE (or numbers=, "
                             "positions=, cell=), or ffpt pt-data --from DATA")
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.potential.species(self.numbers)
        self.initial_positions = np.asarray(positions, dtype=float).reshape(-1, 3)
        self.cell = None if cell is None else np.asarray(cell, dtype=float).reshape(3, 3)

    def describe(self) -> dict:
        return {**super().describe(), "eam_file": self.source,
                "periodic": self.cell is not None, "params": self.potential.to_dict()}

    def label(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from ffpt.data.frames import FrameSet

        x = self.check_positions(positions)
        f_, n = x.shape[:2]
        fs = FrameSet(numbers=np.tile(self.numbers, f_), positions=x.reshape(-1, 3),
                      n_atoms=np.full(f_, n),
                      cell=None if self.cell is None else np.repeat(self.cell[None], f_, 0),
                      pbc=None if self.cell is None else np.ones((f_, 3), bool))
        e, f = self.potential.evaluate(fs)
        return e, f.reshape(f_, n, 3)


def eam_teacher(path: str | Path, **options) -> EAMTeacher:
    """``get_teacher("eam.json", structure=...)``: the teacher of a fitted EAM file."""
    return EAMTeacher(path, **options)


try:
    from ase.calculators.calculator import Calculator, all_changes
except ImportError:  # pragma: no cover
    Calculator, all_changes = object, []  # type: ignore[assignment,misc]


class EAMCalculator(Calculator):
    """ASE calculator (energy, forces) of a fitted EAM for any atoms and cell."""

    implemented_properties = ["energy", "free_energy", "forces"]  # noqa: RUF012

    def __init__(self, potential: EAMPotential | str | Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.potential = (potential if isinstance(potential, EAMPotential)
                          else EAMPotential.load(potential))

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        from ffpt.data.frames import FrameSet

        super().calculate(atoms, properties, system_changes)
        fs = FrameSet.from_atoms([self.atoms], energy_key=None, forces_key=None)
        e, f = self.potential.evaluate(fs)
        self.results = {"energy": float(e[0]), "free_energy": float(e[0]), "forces": f}
