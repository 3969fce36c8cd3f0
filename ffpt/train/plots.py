"""Parity plots of predicted vs reference energies and forces."""

from __future__ import annotations

import numpy as np


def parity_plot(pred: dict, png: str, title: str = "") -> None:
    """``pred`` as returned by ``evaluate(..., return_predictions=True)['predictions']``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep, er, na = pred["energy"]
    fp, fr = pred["forces"]
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    x, y = er / na, ep / na
    ax[0].plot(x, y, ".", ms=3)
    lim = [min(x.min(), y.min()), max(x.max(), y.max())]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    ax[0].set(xlabel="reference E/atom (eV)", ylabel="predicted E/atom (eV)",
              title=f"{title}  MAE {np.mean(np.abs(y - x)) * 1000:.2f} meV/atom")
    ax[1].plot(fr.ravel(), fp.ravel(), ".", ms=2, alpha=0.5)
    lim = [fr.min(), fr.max()]
    ax[1].plot(lim, lim, "k--", lw=0.8)
    ax[1].set(xlabel="reference F (eV/Å)", ylabel="predicted F (eV/Å)",
              title=f"MAE {np.mean(np.abs(fp - fr)):.3f} eV/Å")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
