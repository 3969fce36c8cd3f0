"""Vectorised pair potentials for teachers: plain Coulomb + Lennard-Jones for clusters, Ewald
Coulomb + cut-and-shifted Lennard-Jones for periodic cells. Positions (F, N, 3) in Angstrom,
energies (F,) in eV, forces (F, N, 3) in eV/Angstrom.

Ewald (Allen & Tildesley, ch. 6): splitting parameter ``alpha = sqrt(-ln acc) / r_c``, real
space summed over all images within ``r_c``, reciprocal space over all k with
``|k| <= 2 alpha sqrt(-ln acc)``; charge-neutral systems (no background term). Excluded
pairs (``exclude[i, j]``, same cell image) get the Ewald correction ``-q_i q_j erf(alpha r)/r``
so that they interact neither in real nor in reciprocal space.
"""

from __future__ import annotations

import numpy as np
from ase import units
from scipy.special import erfc

COULOMB = units.Hartree * units.Bohr  # e^2 / (4 pi eps0) in eV Angstrom (14.3996)
_PAIR_BLOCK = 2_000_000  # pair elements per vectorised block (memory bound)


def _lj(r: np.ndarray, eps: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """LJ energy 4 eps ((s/r)^12 - (s/r)^6) and dE/dr."""
    s6 = (sigma / r) ** 6
    return 4 * eps * (s6 * s6 - s6), 4 * eps * (-12 * s6 * s6 + 6 * s6) / r


def _forces(d: np.ndarray, r: np.ndarray, dphi: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """F_i = sum_j dphi(r_ij) d_ij / r_ij with d_ij = x_j - x_i (j and images on ``axes``)."""
    return np.sum((dphi / r)[..., None] * d, axis=axes)


def cluster_energy_forces(
    x: np.ndarray, charges: np.ndarray, exclude: np.ndarray, lj_index: np.ndarray,
    eps: float, sigma: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Non-periodic: sum over non-excluded pairs of ``COULOMB q_i q_j / r`` plus LJ between
    the atoms ``lj_index`` (also skipping excluded pairs), no cutoff."""
    n = x.shape[1]
    keep = ~exclude & ~np.eye(n, dtype=bool)
    qq = COULOMB * np.outer(charges, charges) * keep
    d = x[:, None, :, :] - x[:, :, None, :]  # d[f, i, j] = x_j - x_i
    r = np.sqrt(np.einsum("fijk,fijk->fij", d, d))
    r = np.where(keep, r, 1.0)
    energy = 0.5 * np.einsum("fij,ij->f", 1 / r, qq)
    forces = _forces(d, r, -qq / r**2, (2,))
    if len(lj_index) > 1:
        keep_lj = keep[np.ix_(lj_index, lj_index)]
        dl = d[:, lj_index][:, :, lj_index]
        rl = np.where(keep_lj, r[:, lj_index][:, :, lj_index], 1.0)
        e, de = _lj(rl, eps, sigma)
        energy += 0.5 * np.sum(e * keep_lj, axis=(1, 2))
        forces[:, lj_index] += _forces(dl, rl, de * keep_lj, (2,))
    return energy, forces


def _image_shifts(cell: np.ndarray, rc: float) -> np.ndarray:
    """Lattice vectors n @ cell that can bring a minimum-image pair within ``rc``."""
    signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)
    dmax = 0.5 * np.linalg.norm(signs @ cell, axis=1).max()  # longest wrapped displacement
    reach = rc + dmax
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
               for i in range(3)]  # fmt: skip
    ranges = [np.arange(-int(np.ceil(reach / h)), int(np.ceil(reach / h)) + 1) for h in heights]
    n = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3).astype(float)
    shifts = n @ cell
    keep = np.linalg.norm(shifts, axis=1) <= reach
    shifts = shifts[keep]
    order = np.argsort(np.linalg.norm(shifts, axis=1), kind="stable")
    return shifts[order]  # shifts[0] = 0


class Ewald:
    """Ewald Coulomb + LJ cut and shifted to zero at ``cutoff`` (LAMMPS ``lj/cut/coul/long``
    with ``pair_modify shift yes``) for a fixed cell; ``energy_forces(x)``."""

    def __init__(
        self, cell: np.ndarray, charges: np.ndarray, exclude: np.ndarray,
        lj_index: np.ndarray, eps: float, sigma: float, cutoff: float, accuracy: float = 1e-8,
    ) -> None:  # fmt: skip
        self.cell = np.asarray(cell, dtype=float)
        if abs(np.linalg.det(self.cell)) < 1e-6:
            raise ValueError(f"periodic cell {self.cell.tolist()} has zero volume")
        q = np.asarray(charges, dtype=float)
        if abs(q.sum()) > 1e-8:
            raise ValueError(f"Ewald needs a neutral cell; total charge is {q.sum():.6g} e")
        self.n = len(q)
        self.q, self.cutoff, self.accuracy = q, float(cutoff), float(accuracy)
        self.exclude = np.asarray(exclude, bool) & ~np.eye(self.n, dtype=bool)
        self.lj_index, self.eps, self.sigma = np.asarray(lj_index), eps, sigma
        self.lj_shift = _lj(np.array(self.cutoff), eps, sigma)[0]  # E_LJ(r_c) = 0: continuous
        p = np.sqrt(-np.log(accuracy))
        self.alpha = p / self.cutoff
        self.inv_cell = np.linalg.inv(self.cell)
        self.volume = abs(np.linalg.det(self.cell))
        self.shifts = _image_shifts(self.cell, self.cutoff)
        recip = 2 * np.pi * self.inv_cell.T  # rows b_i, a_i . b_j = 2 pi delta_ij
        kcut = 2 * self.alpha * p
        mmax = [int(np.ceil(kcut * np.linalg.norm(a) / (2 * np.pi))) for a in self.cell]
        mm = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in mmax], indexing="ij"), -1)
        mm = mm.reshape(-1, 3)
        half = (mm[:, 0] > 0) | ((mm[:, 0] == 0) & (mm[:, 1] > 0))
        half |= (mm[:, 0] == 0) & (mm[:, 1] == 0) & (mm[:, 2] > 0)
        k = mm[half] @ recip
        k2 = np.einsum("kd,kd->k", k, k)
        keep = k2 <= kcut**2
        self.k, k2 = k[keep], k2[keep]
        # E_rec = C (4 pi / V) sum_{half k} exp(-k^2 / 4 alpha^2) / k^2 |S(k)|^2
        self.k_weight = COULOMB * 4 * np.pi / self.volume * np.exp(-k2 / (4 * self.alpha**2)) / k2
        self.qq = COULOMB * np.outer(q, q)
        # real space over pairs i < j (x images); excluded pairs only in the home image
        self.pi, self.pj = np.triu_indices(self.n, 1)
        self.pair_qq = self.qq[self.pi, self.pj]
        self.pair_excl = np.zeros((len(self.pi), len(self.shifts)))
        self.pair_excl[:, 0] = self.exclude[self.pi, self.pj]
        self.incidence = np.zeros((len(self.pi), self.n))  # force on i: +g, on j: -g
        self.incidence[np.arange(len(self.pi)), self.pi] = 1.0
        self.incidence[np.arange(len(self.pi)), self.pj] = -1.0
        # constants: Ewald self term, and each charge with its own images within the cutoff
        rn = np.linalg.norm(self.shifts[1:], axis=1)
        rn = rn[rn < self.cutoff]
        self.self_energy = COULOMB * np.sum(q**2) * (
            0.5 * np.sum(erfc(self.alpha * rn) / rn) - self.alpha / np.sqrt(np.pi))

    def describe(self) -> dict:
        return {"coulomb": "Ewald", "alpha_per_A": self.alpha, "real_cutoff_A": self.cutoff,
                "lj_cutoff_A": self.cutoff, "lj": "cut and shifted to 0 at the cutoff",
                "accuracy": self.accuracy, "n_kvectors": len(self.k),
                "n_images": len(self.shifts)}  # fmt: skip

    def energy_forces(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        block = max(1, _PAIR_BLOCK // (self.n**2 * len(self.shifts)))  # LJ is dense
        out = [self._block(x[s : s + block]) for s in range(0, len(x), block)]
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])

    def _block(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e_real, f_real = self._real(x)
        e_lj, f_lj = self._lj(x)
        e_rec, f_rec = self._reciprocal(x)
        return e_real + e_lj + e_rec + self.self_energy, f_real + f_lj + f_rec

    def _pairs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displacements x_j + shift - x_i (F, N, N, S, 3) of minimum-image pairs and r."""
        d = x[:, None, :, :] - x[:, :, None, :]
        s = d @ self.inv_cell
        d = (s - np.round(s)) @ self.cell
        d = d[:, :, :, None, :] + self.shifts[None, None, None]
        return d, np.sqrt(np.einsum("fijsk,fijsk->fijs", d, d))

    def _real(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = x[:, self.pj] - x[:, self.pi]  # (F, P, 3), pairs i < j
        s = d @ self.inv_cell
        d = ((s - np.round(s)) @ self.cell)[:, :, None, :] + self.shifts[None, None]
        r = np.sqrt(np.einsum("fpsk,fpsk->fps", d, d))
        use = (r < self.cutoff) | (self.pair_excl > 0)
        r = np.where(use, r, 1.0)
        qq = self.pair_qq[:, None] * use
        ar = self.alpha * r
        ec = erfc(ar) - self.pair_excl  # excluded pairs: -erf(alpha r) / r
        energy = np.sum(qq * ec / r, axis=(1, 2))
        dphi = -qq * (ec / r**2 + 2 * self.alpha / np.sqrt(np.pi) * np.exp(-ar * ar) / r)
        g = _forces(d, r, dphi, (2,))  # (F, P, 3)
        return energy, np.einsum("fpk,pn->fnk", g, self.incidence)

    def _lj(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        forces = np.zeros_like(x)
        if len(self.lj_index) == 0:
            return np.zeros(len(x)), forces
        idx = self.lj_index
        d, r = self._pairs(x[:, idx])
        keep = r < self.cutoff
        keep[:, :, :, 0] &= ~(np.eye(len(idx), dtype=bool) | self.exclude[np.ix_(idx, idx)])
        r = np.where(keep, r, 1.0)
        e, de = _lj(r, self.eps, self.sigma)
        e = e - self.lj_shift
        forces[:, idx] = _forces(d, r, de * keep, (2, 3))
        return 0.5 * np.sum(e * keep, axis=(1, 2, 3)), forces

    def _reciprocal(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phase = x @ self.k.T  # (F, N, K)
        c, s = np.cos(phase), np.sin(phase)
        s_re = np.einsum("fnk,n->fk", c, self.q)
        s_im = np.einsum("fnk,n->fk", s, self.q)
        energy = (s_re**2 + s_im**2) @ self.k_weight
        # F_j = 2 w_k q_j k (S_re sin(k.x_j) - S_im cos(k.x_j)), w_k including C 4 pi / V
        amp = 2 * self.q[None, :, None] * (s * s_re[:, None] - c * s_im[:, None]) * self.k_weight
        return energy, amp @ self.k
