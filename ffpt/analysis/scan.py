"""Potential-energy cuts ("scans") and a hole finder for teachers and models.

Two layers, both rigid cuts through a reference geometry (only the scanned coordinate changes):

* water views of the FFPT paper (Fig. 1c/3a): :func:`water_scans` (O-H stretch 0.5-3 A,
  H-O-H bend 60-180 deg) and :func:`bond_scan`, drawn by :func:`plot_scans`;
* the general hole finder :func:`find_holes` for any molecule and any calculators: every
  bond stretch, every bend and every non-bonded close approach (:func:`build_scans`), each
  point flagged when it falls below the reference energy or "dips" below the running
  maximum (:func:`flag_points`); :mod:`ffpt.analysis.scan_report` writes CSV/Markdown/PNG.

Any ASE calculator works (``ffpt.calculator.load_calculator`` for teachers, checkpoints and
deployed artifacts)::

    from ffpt.analysis.scan import find_holes, water_scans
    res = water_scans({"TIP3P": get_teacher("tip3p-flex").as_calculator(),
                       "PT": FFPTCalculator("pt/best.pt")}, "water_scans.png")
    report = find_holes({"PT": load_calculator("pt/best.pt")}, water_reference())
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DISTANCES = np.linspace(0.5, 3.0, 126)  # Angstrom
ANGLES = np.linspace(60.0, 180.0, 121)  # degrees


def _energy(calc, atoms) -> float:
    a = atoms.copy()
    a.calc = calc
    return float(a.get_potential_energy())


def water_reference():
    """Water O, H, H at the flexible-TIP3P minimum (0.9572 A, 104.52 deg)."""
    from ase import Atoms

    from ffpt.teachers.tip3p_flex import TIP3PFlex

    return Atoms("OH2", positions=TIP3PFlex().initial_positions)


def bond_geometries(atoms, i: int, j: int, distances=DISTANCES) -> list:
    """Copies of ``atoms`` with atom j moved along the i->j axis to each distance."""
    d = atoms.positions[j] - atoms.positions[i]
    u = d / np.linalg.norm(d)
    out = []
    for r in distances:
        a = atoms.copy()
        a.positions[j] = a.positions[i] + r * u
        out.append(a)
    return out


def angle_geometries(atoms, i: int, center: int, k: int, angles_deg=ANGLES) -> list:
    """Copies of ``atoms`` with atom k rotated in the i-center-k plane to each angle,
    keeping |center-k| and atom i fixed."""
    p_c = atoms.positions[center]
    a_vec = atoms.positions[i] - p_c
    b_vec = atoms.positions[k] - p_c
    r_k = np.linalg.norm(b_vec)
    e1 = a_vec / np.linalg.norm(a_vec)
    perp = b_vec - (b_vec @ e1) * e1
    if np.linalg.norm(perp) < 1e-8:  # already linear: pick any perpendicular
        perp = np.cross(e1, [1.0, 0.0, 0.0] if abs(e1[0]) < 0.9 else [0.0, 1.0, 0.0])
    e2 = perp / np.linalg.norm(perp)
    out = []
    for t in np.deg2rad(angles_deg):
        a = atoms.copy()
        a.positions[k] = p_c + r_k * (np.cos(t) * e1 + np.sin(t) * e2)
        out.append(a)
    return out


def scan_energies(calcs: dict, images: list) -> dict[str, np.ndarray]:
    """Energy (eV) of every image for each named calculator."""
    return {name: np.array([_energy(c, a) for a in images]) for name, c in calcs.items()}


def water_scans(
    calcs: dict,
    png_path: str | os.PathLike | None = None,
    reference=None,
    distances=DISTANCES,
    angles=ANGLES,
    ymax: float = 10.0,
    title: str | None = None,
) -> dict:
    """O-H stretch and H-O-H bend of water for several calculators; optional two-panel PNG.

    Args:
        calcs: name -> ASE calculator (teachers, models, ...).
        png_path: where to draw the figure (None: no figure).
        reference: water Atoms (O, H, H order); default the flexible-TIP3P minimum.
        distances: O-H distances (Angstrom) for the stretch of the first H.
        angles: H-O-H angles (degrees).
        ymax: upper y-limit of the plot (eV above the reference energy).

    Returns:
        {"r": distances, "theta": angles, "bond": {name: E}, "angle": {name: E},
         "reference_energy": {name: E_ref}} with absolute energies in eV; the figure shows
        E - E_ref.
    """
    ref = water_reference() if reference is None else reference
    if list(ref.numbers) != [8, 1, 1]:
        raise ValueError(f"water reference must be O, H, H in that order, got {ref.symbols}")
    res = {
        "r": np.asarray(distances, float),
        "theta": np.asarray(angles, float),
        "bond": scan_energies(calcs, bond_geometries(ref, 0, 1, distances)),
        "angle": scan_energies(calcs, angle_geometries(ref, 1, 0, 2, angles)),
        "reference_energy": {n: _energy(c, ref) for n, c in calcs.items()},
    }
    if png_path is not None:
        plot_scans(res, png_path, ymax=ymax, title=title or "water")
    return res


def bond_scan(
    calcs: dict,
    atoms,
    i: int = 0,
    j: int = 1,
    png_path: str | os.PathLike | None = None,
    distances=DISTANCES,
    ymax: float = 10.0,
    title: str | None = None,
) -> dict:
    """Stretch bond i-j (move atom j) of any molecule; same return layout as
    :func:`water_scans` without the ``angle`` entries."""
    res = {
        "r": np.asarray(distances, float),
        "bond": scan_energies(calcs, bond_geometries(atoms, i, j, distances)),
        "reference_energy": {n: _energy(c, atoms) for n, c in calcs.items()},
    }
    if png_path is not None:
        sym = atoms.get_chemical_symbols()
        res["bond_label"] = f"{sym[i]}{i}-{sym[j]}{j}"
        plot_scans(res, png_path, ymax=ymax, title=title or atoms.get_chemical_formula())
    return res


def plot_scans(res: dict, png_path: str | os.PathLike, ymax: float = 10.0, title: str = "") -> Path:
    """Draw the bond (and, if present, angle) panels of a scan result as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("bond", "r", res.get("bond_label", "O-H") + " distance (Å)")]
    if "angle" in res:
        panels.append(("angle", "theta", "H-O-H angle (deg)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, (key, xkey, xlabel) in zip(axes[0], panels, strict=True):
        lo = 0.0
        for name, e in res[key].items():
            rel = e - res["reference_energy"][name]
            lo = min(lo, float(np.nanmin(rel)))
            ax.plot(res[xkey], rel, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("E - E(reference) (eV)")
        ax.set_ylim(lo - 0.5, ymax)
        ax.axhline(0.0, color="0.7", lw=0.8)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path


# ------------------------------------------------------------------------- hole finder
KINDS = ("stretch", "bend", "approach")
UNITS = {"stretch": "Å", "bend": "deg", "approach": "Å"}


@dataclass
class Scan:
    """One rigid cut: ``positions[P, N, 3]`` at coordinate ``values[P]`` (bond length or
    pair distance in Angstrom, angle in degrees); ``ref`` indexes the reference point."""

    kind: str
    atoms: tuple[int, ...]
    label: str
    values: np.ndarray
    positions: np.ndarray
    ref: int

    @property
    def unit(self) -> str:
        return UNITS[self.kind]


def bonded_pairs(atoms, scale: float = 1.2) -> list[tuple[int, int]]:
    """Pairs (i < j) closer than ``scale`` x the sum of their covalent radii."""
    from ase.neighborlist import natural_cutoffs

    rc = np.asarray(natural_cutoffs(atoms))
    d = atoms.get_all_distances()
    n = len(atoms)
    return [(i, j) for i in range(n) for j in range(i + 1, n) if d[i, j] < scale * (rc[i] + rc[j])]


def _side(n: int, bonds: list[tuple[int, int]], start: int, cut: tuple[int, int]) -> set[int]:
    """Atoms reachable from ``start`` through ``bonds`` without crossing bond ``cut``."""
    adj: dict[int, set[int]] = {k: set() for k in range(n)}
    for a, b in bonds:
        adj[a].add(b)
        adj[b].add(a)
    seen, stack = {start}, [start]
    while stack:
        a = stack.pop()
        for b in adj[a] - seen:
            if {a, b} != set(cut):
                seen.add(b)
                stack.append(b)
    return seen


def _grid_with(grid: np.ndarray, x0: float) -> tuple[np.ndarray, int]:
    """``grid`` with ``x0`` inserted (near-duplicates dropped); returns (values, index of x0)."""
    step = np.min(np.abs(np.diff(grid))) if len(grid) > 1 else 1.0
    values = np.sort(np.append(grid[np.abs(grid - x0) > 0.25 * step], x0))
    return values, int(np.flatnonzero(values == x0)[0])


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation matrix (right-handed, radians)."""
    n = axis / np.linalg.norm(axis)
    k = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _moving_side(n, bonds, fixed: int, moving: int, also_fixed: tuple[int, ...] = ()) -> set[int]:
    """The fragment on ``moving``'s side of bond fixed-moving, or just ``moving`` in a ring."""
    side = _side(n, bonds, moving, (fixed, moving))
    return {moving} if fixed in side or any(a in side for a in also_fixed) else side


def build_scans(
    atoms,
    kinds: tuple[str, ...] = KINDS,
    bond_scale: float = 1.2,
    stretch: tuple[float, float, int] = (0.5, 3.0, 51),
    bend: tuple[float, float, float] = (20.0, 180.0, 2.0),
    approach_min: float = 0.5,
    approach_factor: float = 0.3,
    approach_points: int = 41,
) -> list[Scan]:
    """Rigid cuts through ``atoms`` (the reference geometry).

    * stretch of every bond i-j (covalent radii x ``bond_scale``) from ``stretch[0]`` to
      ``stretch[1]`` x r0 (``stretch[2]`` points): the smaller side of the molecule (cut at
      the bond) moves along the bond axis; in a ring only atom j moves;
    * bend of every angle i-c-k between bonds, from ``bend[0]`` to ``bend[1]`` degrees in
      steps of ``bend[2]``: the smaller of i's and k's sides rotates rigidly about c in the
      i-c-k plane (only the end atom in a ring);
    * approach of every non-bonded pair i-j: both atoms move symmetrically along their axis
      (towards their midpoint) from the reference distance down to max(``approach_min``,
      ``approach_factor`` x the sum of the covalent radii) Angstrom, ``approach_points``
      points. (Moving one atom alone would drag it past the common neighbour of a 1-3 pair
      and relax that bond again: a false dip even for a bonded-only force field.)

    Every scan contains the reference point exactly (index ``Scan.ref``).
    """
    from ase.neighborlist import natural_cutoffs

    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown scan kind(s) {sorted(unknown)}; choose from {list(KINDS)}")
    if atoms.pbc.any():
        raise ValueError("the hole finder scans isolated molecules; give a non-periodic structure")
    pos0, n, sym = atoms.positions.copy(), len(atoms), atoms.get_chemical_symbols()
    bonds = bonded_pairs(atoms, bond_scale)
    scans: list[Scan] = []
    for i, j in bonds if "stretch" in kinds else []:
        u = pos0[j] - pos0[i]
        r0 = float(np.linalg.norm(u))
        side_j = _side(n, bonds, j, (i, j))
        side_i = {i} if i in side_j else set(range(n)) - side_j  # ring: only j moves
        side_j = {j} if i in side_j else side_j
        move, sign = (sorted(side_j), 1.0) if len(side_j) <= len(side_i) else (sorted(side_i), -1.0)
        factors, ref = _grid_with(np.linspace(*stretch[:2], int(stretch[2])), 1.0)
        pos = np.repeat(pos0[None], len(factors), axis=0)
        pos[:, move] += sign * ((factors - 1.0) * r0)[:, None, None] * (u / r0)
        scans.append(Scan("stretch", (i, j), f"{sym[i]}{i}-{sym[j]}{j}", factors * r0, pos, ref))
    for c in range(n) if "bend" in kinds else []:
        nbrs = sorted({b for a, b in bonds if a == c} | {a for a, b in bonds if b == c})
        for x, i in enumerate(nbrs):
            for k in nbrs[x + 1 :]:
                scans.append(_bend_scan(pos0, sym, bonds, i, c, k, bend))
    if "approach" in kinds:
        rc = np.asarray(natural_cutoffs(atoms))
        for i in range(n):
            for j in range(i + 1, n):
                d0 = float(np.linalg.norm(pos0[j] - pos0[i]))
                d_min = max(approach_min, approach_factor * (rc[i] + rc[j]))
                if (i, j) in bonds or d0 <= d_min:
                    continue
                d = np.linspace(d0, d_min, approach_points)
                u, mid = (pos0[j] - pos0[i]) / d0, 0.5 * (pos0[i] + pos0[j])
                pos = np.repeat(pos0[None], len(d), axis=0)
                pos[:, i] = mid - 0.5 * d[:, None] * u
                pos[:, j] = mid + 0.5 * d[:, None] * u
                scans.append(Scan("approach", (i, j), f"{sym[i]}{i}-{sym[j]}{j}", d, pos, 0))
    return scans


def _bend_scan(pos0, sym, bonds, i, c, k, bend) -> Scan:
    n = len(pos0)
    a, b = pos0[i] - pos0[c], pos0[k] - pos0[c]
    cos0 = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    theta0 = float(np.degrees(np.arccos(np.clip(cos0, -1.0, 1.0))))
    axis = np.cross(a, b)
    if np.linalg.norm(axis) < 1e-8:  # linear: any perpendicular plane
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 * np.linalg.norm(a) else [0, 1.0, 0])
    side_k = _moving_side(n, bonds, c, k, (i,))
    side_i = _moving_side(n, bonds, c, i, (k,))
    move, sign = (sorted(side_k), 1.0) if len(side_k) <= len(side_i) else (sorted(side_i), -1.0)
    grid = np.arange(bend[0], bend[1] + 1e-9, bend[2])
    values, ref = _grid_with(grid, theta0)
    pos = np.repeat(pos0[None], len(values), axis=0)
    for p, t in enumerate(values):
        rot = _rotation(axis, sign * np.radians(t - theta0))
        pos[p, move] = pos0[c] + (pos0[move] - pos0[c]) @ rot.T
    label = f"{sym[i]}{i}-{sym[c]}{c}-{sym[k]}{k}"
    return Scan("bend", (i, c, k), label, values, pos, ref)


def scan_energies_batch(calc, numbers, positions: np.ndarray) -> np.ndarray:
    """Energies (eV) of ``positions[P, N, 3]``; teachers and ffpt models are evaluated in
    batches, other ASE calculators point by point; a NaN/inf model energy becomes NaN."""
    from ase import Atoms

    from ffpt.teachers.base import TeacherCalculator

    if isinstance(calc, TeacherCalculator) and np.array_equal(numbers, calc.teacher.numbers):
        return np.asarray(calc.teacher.label(positions)[0], float)
    if hasattr(calc, "batch_energies"):  # ffpt models: many frames per forward pass
        return calc.batch_energies(numbers, positions)
    atoms = Atoms(numbers=numbers, positions=positions[0])
    atoms.calc = calc
    out = np.empty(len(positions))
    for p, x in enumerate(positions):
        atoms.positions = x
        try:
            out[p] = atoms.get_potential_energy()
        except FloatingPointError:
            out[p] = np.nan
    return out


def flag_points(
    rel: np.ndarray, ref: int, threshold: float = 0.1, tolerance: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Depth below the running maximum and flags of one scan's E - E_ref (eV).

    Walking away from the reference point ``ref`` in each direction, ``depth[p]`` is how far
    point p lies below the highest energy met on the way (the reference counts as 0).
    Flags: ``below_ref`` (E - E_ref < -tolerance), ``dip`` (depth > threshold),
    ``nonfinite`` (NaN/inf), joined by ``+``; "" for a clean point.
    """
    depth = np.zeros(len(rel))
    for idx in (range(ref + 1, len(rel)), range(ref - 1, -1, -1)):
        top = 0.0
        for p in idx:
            if np.isfinite(rel[p]):
                depth[p] = max(top - rel[p], 0.0)
                top = max(top, rel[p])
    flags = np.full(len(rel), "", dtype=object)
    for name, mask in (
        ("below_ref", rel < -tolerance),
        ("dip", depth > threshold),
        ("nonfinite", ~np.isfinite(rel)),
    ):
        flags[mask] = [f"{f}+{name}" if f else name for f in flags[mask]]
    return depth, flags


@dataclass
class HoleReport:
    """Scans, per-model energies relative to the reference (``rel``), depths and flags."""

    scans: list[Scan]
    e_ref: dict[str, float]
    rel: dict[str, list[np.ndarray]]
    depth: dict[str, list[np.ndarray]]
    flags: dict[str, list[np.ndarray]]
    threshold: float
    tolerance: float
    formula: str = ""

    @property
    def models(self) -> list[str]:
        return list(self.e_ref)

    def flagged_scans(self, model: str) -> list[int]:
        return [s for s, f in enumerate(self.flags[model]) if any(f)]

    @property
    def has_holes(self) -> bool:
        return any(self.flagged_scans(m) for m in self.models)

    def severity(self, model: str, scan: int) -> np.ndarray:
        """Per point: eV below the running maximum or the reference (inf for NaN), -1 when
        the point is not flagged."""
        f, rel, depth = self.flags[model][scan], self.rel[model][scan], self.depth[model][scan]
        return np.where(f != "", np.nan_to_num(np.maximum(depth, -rel), nan=np.inf), -1.0)

    def worst(self, model: str) -> dict | None:
        """The deepest flagged point of a model: scan, coordinate, depth (eV), E - E_ref."""
        best = None
        for s in self.flagged_scans(model):
            f, rel, score = self.flags[model][s], self.rel[model][s], self.severity(model, s)
            p = int(np.argmax(score))
            if best is None or score[p] > best["depth"]:
                sc = self.scans[s]
                best = {"scan": s, "label": sc.label, "kind": sc.kind, "value": sc.values[p],
                        "unit": sc.unit, "depth": float(score[p]), "e_rel": float(rel[p]),
                        "flag": f[p]}  # fmt: skip
        return best

    def rows(self):
        """One dict per (model, scan, point): the CSV table."""
        for m in self.models:
            for s, sc in enumerate(self.scans):
                for p, v in enumerate(sc.values):
                    yield {"model": m, "kind": sc.kind, "atoms": sc.label, "coordinate": v,
                           "unit": sc.unit, "e_minus_ref_eV": self.rel[m][s][p],
                           "below_running_max_eV": self.depth[m][s][p],
                           "flag": self.flags[m][s][p]}  # fmt: skip


def find_holes(
    calcs: dict,
    atoms,
    scans: list[Scan] | None = None,
    threshold: float = 0.1,
    tolerance: float = 0.05,
    progress: bool = False,
    **scan_options,
) -> HoleReport:
    """Scan ``atoms`` (reference geometry, ideally each model's minimum) with every calculator
    in ``calcs`` (name -> ASE calculator) and flag holes (see :func:`flag_points`).

    ``scans`` default: :func:`build_scans(atoms, **scan_options) <build_scans>`.
    """
    from tqdm.auto import tqdm

    scans = build_scans(atoms, **scan_options) if scans is None else scans
    numbers = atoms.numbers
    rep = HoleReport(scans, {}, {}, {}, {}, threshold, tolerance, atoms.get_chemical_formula())
    with tqdm(total=len(calcs) * len(scans), desc="scan", unit="scan", disable=not progress,
              mininterval=1.0) as bar:  # fmt: skip
        for name, calc in calcs.items():
            e_ref = float(scan_energies_batch(calc, numbers, atoms.positions[None])[0])
            if not np.isfinite(e_ref):
                raise FloatingPointError(f"{name}: energy at the reference geometry is NaN/inf")
            rep.e_ref[name] = e_ref
            for key in ("rel", "depth", "flags"):
                getattr(rep, key)[name] = []
            for sc in scans:
                rel = scan_energies_batch(calc, numbers, sc.positions) - e_ref
                depth, flags = flag_points(rel, sc.ref, threshold, tolerance)
                rep.rel[name].append(rel)
                rep.depth[name].append(depth)
                rep.flags[name].append(flags)
                bar.update()
    return rep


def reference_atoms(structure: str | os.PathLike | None = None, species: str | None = None):
    """Reference geometry: a structure file (any ASE format; its last frame) or a teacher's
    relaxed geometry: a teacher spec (``tip3p-flex``, ``qforce-h2:HO2``, ``gaff:SMILES``) or
    a qforce-h2 species formula (``HO2``; H2O is the flexible-TIP3P minimum)."""
    from ase import Atoms

    if (structure is None) == (species is None):
        raise ValueError("give exactly one reference: a structure file or a species")
    if structure is not None:
        import ase.io

        return ase.io.read(structure)
    from ffpt.teachers.base import available_teachers

    if species.partition(":")[0].lower().replace("_", "-") in available_teachers():
        from ffpt.calculator import load_calculator

        t = load_calculator(species).teacher
    else:
        from ffpt.teachers.qforce_h2 import canonical_species

        key = canonical_species(species)
        if key == "H2O":
            return water_reference()
        from ffpt.teachers.base import get_teacher

        t = get_teacher("qforce-h2", species=key)
    return Atoms(numbers=t.numbers, positions=t.relaxed_positions)
