"""Training plots: parity (predicted vs reference) and learning curves of one or more runs."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """A run's ``log.csv`` as rows of floats (empty cells: NaN)."""
    with open(path) as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(f)]


def plot_learning_curves(
    runs: Mapping[str, Sequence[Mapping] | str | os.PathLike],
    png: str | os.PathLike,
    metrics: Sequence[tuple[str, str]] = (("loss", "loss"),
                                          ("forces_rmse", "force RMSE (eV/Å)")),
    splits: Sequence[str] = ("val",),
    x: str = "epoch",
    x_scale: float = 1.0,
    y_scale: float = 1.0,
    xlabel: str | None = None,
    title: str = "",
) -> Path:
    """One panel per metric, one curve per run and split (log scale): the learning curves of
    a training run (``splits=("train", "val")``) or of several runs compared.

    ``runs``: name -> history rows (``log.csv`` rows or a trainer's history) or a ``log.csv``
    path. A ``val_`` column that a run lacks (no validation set) falls back to ``train_``.
    ``x``: the column on the x axis (``epoch``, ``step``, ``time_s``); ``x_scale``/``y_scale``
    multiply the columns (e.g. 1/60 for minutes, unit conversions).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hists = {name: read_history(h) if isinstance(h, str | os.PathLike) else list(h)
             for name, h in runs.items()}
    names = {"train": "train", "val": "validation"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.8), squeeze=False)
    for ax, (key, ylabel) in zip(axes[0], metrics, strict=True):
        for run, hist in hists.items():
            for split in splits:
                col = f"{split}_{key}"
                if hist and col not in hist[0] and split == "val" and "train" not in splits:
                    col = f"train_{key}"
                if not hist or col not in hist[0]:
                    continue
                label = " ".join(s for s in (run, names.get(split, split) if len(splits) > 1
                                             else "") if s)
                ax.semilogy([x_scale * float(h[x]) for h in hist],
                            [y_scale * float(h[col]) for h in hist], label=label or None)
        ax.set(xlabel=xlabel or x, ylabel=ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        axes[0][0].set_title(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
