"""Potential-energy cuts ("scans") for teachers and models: a bond stretch from 0.5 to
3 Angstrom and the water H-O-H angle from 60 to 180 degrees (the FFPT paper's Fig. 1c/3a
views, which expose the "holes" of models trained on ab initio data only).

All geometries are rigid cuts: only the scanned coordinate changes, everything else stays
at the reference geometry. Any ASE calculator works (a teacher via
``teacher.as_calculator()``, a trained model via ``ffpt.calculator.FFPTCalculator``)::

    from ffpt.sampling.scan import water_scans
    res = water_scans({"TIP3P": get_teacher("tip3p-flex").as_calculator(),
                       "PT": FFPTCalculator("pt/best.pt")}, "water_scans.png")
"""

from __future__ import annotations

import os
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
