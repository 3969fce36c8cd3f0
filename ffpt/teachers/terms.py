"""Vectorised bonded terms (numpy): values of internal coordinates and their Cartesian
gradients for a batch of frames. All functions take positions ``x`` of shape (F, N, 3)."""

from __future__ import annotations

import numpy as np

_TINY = 1e-12


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...k,...k->...", v, v))


def bond(x: np.ndarray, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Distance r_ij (F,) and unit vector (F, 3) from i to j (dr/dx_j = u, dr/dx_i = -u)."""
    d = x[:, j] - x[:, i]
    r = _norm(d)
    return r, d / np.maximum(r, _TINY)[:, None]


def angle(x: np.ndarray, i: int, j: int, k: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Angle i-j-k (F,) in rad (atan2 form, accurate near 0 and pi) and its gradients
    (d/dx_i, d/dx_j, d/dx_k), each (F, 3)."""
    a = x[:, i] - x[:, j]
    b = x[:, k] - x[:, j]
    n = np.cross(a, b)
    nn = np.maximum(_norm(n), _TINY)
    theta = np.arctan2(nn, np.einsum("fk,fk->f", a, b))
    aa = np.einsum("fk,fk->f", a, a)
    bb = np.einsum("fk,fk->f", b, b)
    gi = np.cross(a, n) / (aa * nn)[:, None]
    gk = np.cross(n, b) / (bb * nn)[:, None]
    return theta, (gi, -gi - gk, gk)


def dihedral(
    x: np.ndarray, i: int, j: int, k: int, l: int
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Dihedral i-j-k-l (F,) in (-pi, pi] (IUPAC sign; 0 = cis) and its gradients
    (Blondel & Karplus, J. Comput. Chem. 17, 1132 (1996)), each (F, 3)."""
    f_ = x[:, i] - x[:, j]
    g = x[:, j] - x[:, k]
    h = x[:, l] - x[:, k]
    a = np.cross(f_, g)
    b = np.cross(h, g)
    gn = np.maximum(_norm(g), _TINY)
    aa = np.maximum(np.einsum("fk,fk->f", a, a), _TINY)
    bb = np.maximum(np.einsum("fk,fk->f", b, b), _TINY)
    cos_term = np.einsum("fk,fk->f", a, b)
    sin_term = np.einsum("fk,fk->f", np.cross(b, a), g) / gn
    phi = np.arctan2(sin_term, cos_term)
    fg = np.einsum("fk,fk->f", f_, g)
    hg = np.einsum("fk,fk->f", h, g)
    ga = -(gn / aa)[:, None] * a
    gb = (gn / bb)[:, None] * b
    gi = ga
    gl = gb
    gj = -ga + (fg / (aa * gn))[:, None] * a - (hg / (bb * gn))[:, None] * b
    gk = -gb - (fg / (aa * gn))[:, None] * a + (hg / (bb * gn))[:, None] * b
    return phi, (gi, gj, gk, gl)


def scatter(grad: np.ndarray, idx: tuple[int, ...], parts: tuple[np.ndarray, ...], w) -> None:
    """grad[:, idx[m]] += w[:, None] * parts[m] (in place)."""
    w = np.asarray(w)[:, None]
    for a, p in zip(idx, parts, strict=True):
        grad[:, a] += w * p
