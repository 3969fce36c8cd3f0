"""Q-Force-style non-reactive bonded force field for the hydrogen-combustion species
H, O, H2, O2, OH, H2O, HO2, H2O2 (parameters: the FFPT paper's Table 1, Q-Force fits;
Sami et al., J. Chem. Theory Comput. 17, 4946 (2021) for the Q-Force method).

Terms (table units nm, kJ/mol, rad; converted here to Angstrom and eV):

* Morse bond, shifted so that E(r0) = -D and E(inf) = 0::

      E = D (1 - exp(-a (r - r0)))^2 - D,   a = sqrt(k_r / (2 D))

  (the extracted table prints the exponent as k_r (r - r0)/2D, which is not dimensionless;
  this ``a`` gives the harmonic limit (k_r / 2)(r - r0)^2 + const);
* harmonic angle E = (k_theta / 2)(theta - theta0)^2;
* H2O2 H-O-O-H dihedral E = sum_n k_phi (1 + cos(n phi - phi0)), n = 1..4.

Isolated atoms (H, O) have zero energy and force. Atom orders: H2O = O,H,H;
OH = O,H; HO2 = H,O,O (H bonded to the first O); H2O2 = H,O,O,H.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import units

from ffpt.teachers import terms
from ffpt.teachers.base import Teacher

KJ_MOL = units.kJ / units.mol  # eV per kJ/mol
NM = 10.0  # Angstrom per nm

# name: (r0 nm, k_r kJ/mol/nm^2, D kJ/mol)
BONDS_TABLE: dict[str, tuple[float, float, float]] = {
    "H2:H-H": (0.074451338, 352643.84, 450.529259),
    "OH:O-H": (0.097519183, 472095.947, 441.538052),
    "O2:O-O": (0.119614093, 839237.053, 529.522227),
    "H2O:O-H": (0.096205047, 511168.368, 476.339341),
    "HO2:O-O": (0.131276144, 462105.576, 306.492086),
    "HO2:O-H": (0.09757723, 451086.258, 441.538052),
    "H2O2:O-O": (0.143811214, 316472.666, 234.832386),
    "H2O2:O-H": (0.096527728, 493591.819, 441.538052),
}
# name: (theta0 rad, k_theta kJ/mol/rad^2)
ANGLES_TABLE: dict[str, tuple[float, float]] = {
    "H2O:H-O-H": (1.83330493, 448.270537),
    "HO2:O-O-H": (1.84308154, 698.279951),
    "H2O2:O-O-H": (1.73955327, 638.30292),
}
# H2O2 H-O-O-H: (phi0 rad, k_phi kJ/mol, n)
DIHEDRAL_TABLE: list[tuple[float, float, int]] = [
    (0.0, 5.9853054, 1),
    (np.pi, -3.0246061, 2),
    (0.0, -2.185907, 3),
    (np.pi, 0.650878, 4),
]


@dataclass(frozen=True)
class Morse:
    """Morse bond in eV/Angstrom units."""

    r0: float  # A
    a: float  # 1/A
    D: float  # eV

    @classmethod
    def from_table(cls, key: str) -> Morse:
        r0, kr, D = BONDS_TABLE[key]
        return cls(r0=r0 * NM, a=np.sqrt(kr / (2 * D)) / NM, D=D * KJ_MOL)

    @property
    def k_r(self) -> float:
        """Harmonic force constant 2 D a^2 (eV/A^2, k/2 convention)."""
        return 2 * self.D * self.a**2

    def energy_dr(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ex = np.exp(-self.a * (r - self.r0))
        return self.D * (1 - ex) ** 2 - self.D, 2 * self.D * self.a * ex * (1 - ex)


# species: (numbers, bonds [(i, j, key)], angles [(i, j, k, key)], dihedral or None,
#           initial geometry builder args)
SPECIES: dict[str, dict] = {
    "H": {"numbers": [1], "bonds": [], "angles": [], "dihedral": None},
    "O": {"numbers": [8], "bonds": [], "angles": [], "dihedral": None},
    "H2": {"numbers": [1, 1], "bonds": [(0, 1, "H2:H-H")], "angles": [], "dihedral": None},
    "O2": {"numbers": [8, 8], "bonds": [(0, 1, "O2:O-O")], "angles": [], "dihedral": None},
    "OH": {"numbers": [8, 1], "bonds": [(0, 1, "OH:O-H")], "angles": [], "dihedral": None},
    "H2O": {
        "numbers": [8, 1, 1],
        "bonds": [(0, 1, "H2O:O-H"), (0, 2, "H2O:O-H")],
        "angles": [(1, 0, 2, "H2O:H-O-H")],
        "dihedral": None,
    },
    "HO2": {
        "numbers": [1, 8, 8],
        "bonds": [(0, 1, "HO2:O-H"), (1, 2, "HO2:O-O")],
        "angles": [(0, 1, 2, "HO2:O-O-H")],
        "dihedral": None,
    },
    "H2O2": {
        "numbers": [1, 8, 8, 1],
        "bonds": [(0, 1, "H2O2:O-H"), (1, 2, "H2O2:O-O"), (2, 3, "H2O2:O-H")],
        "angles": [(0, 1, 2, "H2O2:O-O-H"), (1, 2, 3, "H2O2:O-O-H")],
        "dihedral": (0, 1, 2, 3),
    },
}
SPECIES_NAMES = list(SPECIES)


def canonical_species(name: str) -> str:
    """Map a formula in any order ('OH2', 'HOOH', 'h2o2' is not accepted) to a species key."""
    from ase.formula import Formula

    try:
        count = Formula(name.strip()).count()
    except Exception as exc:
        raise ValueError(f"'{name}' is not a chemical formula; use one of {SPECIES_NAMES}") from exc
    for key in SPECIES:
        if Formula(key).count() == count:
            return key
    raise ValueError(
        f"qforce-h2 has no parameters for '{name}'; species available: {SPECIES_NAMES}"
    )


def _initial_geometry(key: str) -> np.ndarray:
    spec = SPECIES[key]
    n = len(spec["numbers"])
    if n == 1:
        return np.zeros((1, 3))
    r = {(i, j): BONDS_TABLE[b][0] * NM for i, j, b in spec["bonds"]}
    if n == 2:
        return np.array([[0, 0, 0], [0, 0, r[(0, 1)]]], float)
    if key == "H2O":
        t = ANGLES_TABLE["H2O:H-O-H"][0] / 2
        ro = r[(0, 1)]
        return np.array(
            [[0, 0, 0], [ro * np.sin(t), 0, ro * np.cos(t)], [-ro * np.sin(t), 0, ro * np.cos(t)]]
        )
    theta = ANGLES_TABLE[f"{key}:O-O-H"][0]
    roo = r[(1, 2)]
    roh = r[(0, 1)]
    o1 = np.zeros(3)
    o2 = np.array([0, 0, roo])
    h1 = o1 + roh * np.array([np.sin(theta), 0, np.cos(theta)])
    if key == "HO2":
        return np.array([h1, o1, o2])
    phi = np.deg2rad(115.0)  # initial guess for H2O2
    h2 = o2 + roh * np.array(
        [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), -np.cos(theta)]
    )
    return np.array([h1, o1, o2, h2])


class QForceH2(Teacher):
    """Q-Force bonded FF for one hydrogen-combustion species (see module docstring)."""

    name = "qforce-h2"

    def __init__(self, species: str = "H2O") -> None:
        self.species = canonical_species(species)
        spec = SPECIES[self.species]
        self.numbers = np.array(spec["numbers"])
        self.bonds = [(i, j, Morse.from_table(k)) for i, j, k in spec["bonds"]]
        self.angles = [
            (i, j, k, ANGLES_TABLE[key][0], ANGLES_TABLE[key][1] * KJ_MOL)
            for i, j, k, key in spec["angles"]
        ]
        self.dihedral = spec["dihedral"]
        self.dihedral_terms = [(p0, kp * KJ_MOL, n) for p0, kp, n in DIHEDRAL_TABLE]
        self.initial_positions = _initial_geometry(self.species)

    def describe(self) -> dict:
        return {**super().describe(), "species": self.species}

    def dihedral_energy(self, phi: np.ndarray) -> np.ndarray:
        """H2O2 cosine series (eV) at dihedral angles ``phi`` (rad)."""
        return sum(k * (1 + np.cos(n * phi - p0)) for p0, k, n in self.dihedral_terms)

    def label(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.check_positions(positions)
        energy = np.zeros(len(x))
        grad = np.zeros_like(x)
        for i, j, m in self.bonds:
            r, u = terms.bond(x, i, j)
            e, de = m.energy_dr(r)
            energy += e
            grad[:, j] += de[:, None] * u
            grad[:, i] -= de[:, None] * u
        for i, j, k, t0, kt in self.angles:
            theta, parts = terms.angle(x, i, j, k)
            energy += 0.5 * kt * (theta - t0) ** 2
            terms.scatter(grad, (i, j, k), parts, kt * (theta - t0))
        if self.dihedral is not None:
            phi, parts = terms.dihedral(x, *self.dihedral)
            energy += self.dihedral_energy(phi)
            dphi = sum(-k * n * np.sin(n * phi - p0) for p0, k, n in self.dihedral_terms)
            terms.scatter(grad, self.dihedral, parts, dphi)
        return energy, -grad
