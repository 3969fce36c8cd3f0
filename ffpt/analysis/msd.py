"""Mean-squared displacement and self-diffusion coefficient (``ffpt analyze-msd``).

Unwrapped positions come from a LAMMPS text dump (``xu yu zu`` or ``x y z`` + image flags
``ix iy iz``) or, for ASE trajectories and dumps without image flags, from unwrapping
consecutive frames by the minimum image (valid when no atom moves half a box between frames).
MSD(tau) is averaged over atoms and all time origins (FFT algorithm); optionally the mean
displacement of the selected atoms (drift) is removed first. D = slope / 6 of a linear fit of
the whole trajectory's MSD over the fit window; the trajectory is also cut into ``blocks``
consecutive blocks, D is fitted in each over the same window, and the error bar is their
standard error (std / sqrt(blocks)). The window is given as fractions of the block length
(default 10-50 %; with one block, of the trajectory).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np

A2_PER_PS_TO_CM2_PER_S = 1e-4


def unwrap_by_continuity(pos: np.ndarray, cells: np.ndarray, pbc) -> np.ndarray:
    """Unwrap ``pos[F, N, 3]`` by the minimum image of frame-to-frame displacements."""
    out = np.empty_like(pos)
    out[0] = pos[0]
    pbc = np.asarray(pbc, bool)
    for k in range(1, len(pos)):
        d = pos[k] - pos[k - 1]
        frac = d @ np.linalg.inv(cells[k])
        frac[:, pbc] -= np.round(frac[:, pbc])
        out[k] = out[k - 1] + frac @ cells[k]
    return out


def load_trajectory(path: str | os.PathLike, timestep_fs: float, every: int = 1,
                    element: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(t_ps[F], unwrapped positions[F, N, 3])`` of a LAMMPS dump (times from its step
    numbers) or any ASE-readable trajectory (frames ``every`` steps apart). ``element``
    selects atoms (ASE symbols; for dumps a LAMMPS type number)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory {path} does not exist")
    with open(path, errors="replace") as f:
        is_dump = f.readline().startswith("ITEM: TIMESTEP")
    if is_dump:
        from ffpt.lammps.io import read_dump_frames

        frames = read_dump_frames(path)
        if len(frames) < 4:
            raise ValueError(f"{path}: {len(frames)} complete frames; the MSD needs at least 4")
        steps = np.array([fr.step for fr in frames], float)
        sel = np.ones(len(frames[0].types), bool) if element is None else \
            frames[0].types == int(element)
        try:
            pos = np.stack([fr.unwrapped() for fr in frames])
        except ValueError:
            pos = unwrap_by_continuity(np.stack([fr.positions for fr in frames]),
                                       np.stack([fr.cell for fr in frames]), frames[0].pbc)
    else:
        from ase.io import read

        images = read(path, index=":")
        if len(images) < 4:
            raise ValueError(f"{path}: {len(images)} frames; the MSD needs at least 4")
        steps = np.arange(len(images), dtype=float) * every
        sel = np.ones(len(images[0]), bool) if element is None else \
            np.array(images[0].get_chemical_symbols()) == element
        pos = unwrap_by_continuity(np.stack([a.positions for a in images]),
                                   np.stack([a.cell.array for a in images]), images[0].pbc)
    if not sel.any():
        raise ValueError(f"no atoms of element/type {element!r} in {path}")
    return (steps - steps[0]) * timestep_fs / 1000.0, pos[:, sel]


def msd_fft(pos: np.ndarray, remove_drift: bool = False) -> np.ndarray:
    """MSD(lag) for lags 0..F-1 from unwrapped ``pos[F, N, 3]``, averaged over atoms and time
    origins (Calandrini et al. FFT algorithm)."""
    x = pos - pos.mean(axis=1, keepdims=True) if remove_drift else pos
    n = len(x)
    d = np.sum(x**2, axis=(1, 2))  # per frame, summed over atoms and dims
    d = np.append(d, 0.0)
    s1 = np.zeros(n)
    q = 2 * d.sum()
    for m in range(n):
        q -= d[m - 1] + d[n - m]
        s1[m] = q / (n - m)
    f = np.fft.rfft(x, n=2 * n, axis=0)
    acf = np.fft.irfft(f * f.conj(), axis=0)[:n].sum(axis=(1, 2))
    s2 = acf / (n - np.arange(n))
    return (s1 - 2 * s2) / x.shape[1]


@dataclass
class Diffusion:
    """Result of :func:`diffusion_coefficient` (A^2/ps unless named otherwise)."""

    D: float
    D_err: float
    D_cm2_per_s: float
    D_err_cm2_per_s: float
    fit_ps: tuple[float, float]
    block_D: list[float]
    intercept: float


def _fit(t: np.ndarray, msd: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    m = (t >= lo) & (t <= hi)
    if m.sum() < 2:
        raise ValueError("fewer than 2 MSD points in the fit window; use a longer trajectory "
                         "or a wider --fit")
    slope, intercept = np.polyfit(t[m], msd[m], 1)
    return slope / 6.0, intercept


def diffusion_coefficient(t: np.ndarray, pos: np.ndarray, fit: tuple[float, float] = (0.1, 0.5),
                          blocks: int = 5, remove_drift: bool = False,
                          ) -> tuple[Diffusion, np.ndarray]:
    """D from the MSD slope over the window ``fit`` (fractions of the block length), with the
    block-averaging standard error; returns (result, MSD over all lags)."""
    if not 0 <= fit[0] < fit[1] <= 1:
        raise ValueError(f"fit window {fit} must be fractions 0 <= lo < hi <= 1")
    dt = np.diff(t)
    if np.any(dt <= 0) or np.ptp(dt) > 1e-6 * dt.mean():
        raise ValueError("frames must be equally spaced in time")
    msd = msd_fft(pos, remove_drift)
    lags = t - t[0]
    per = len(t) // blocks
    if blocks > 1 and per < 8:
        raise ValueError(f"{len(t)} frames give blocks of {per} frames; use fewer --blocks")
    span = lags[per - 1] if blocks > 1 else lags[-1]
    d, b = _fit(lags, msd, fit[0] * span, fit[1] * span)
    block_d = []
    if blocks > 1:
        for k in range(blocks):
            block = msd_fft(pos[k * per:(k + 1) * per], remove_drift)
            block_d.append(_fit(lags[:per], block, fit[0] * span, fit[1] * span)[0])
    err = float(np.std(block_d, ddof=1) / np.sqrt(len(block_d))) if len(block_d) > 1 else \
        float("nan")
    res = Diffusion(float(d), err, float(d) * A2_PER_PS_TO_CM2_PER_S,
                    err * A2_PER_PS_TO_CM2_PER_S, (fit[0] * span, fit[1] * span),
                    [float(x) for x in block_d], float(b))
    return res, msd


def write_msd_report(t: np.ndarray, msd: np.ndarray, res: Diffusion, outdir: Path,
                     source: str) -> None:
    """``msd.csv``, ``msd.json`` and ``msd.png`` (MSD with the fitted line) in ``outdir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    lags = t - t[0]
    np.savetxt(outdir / "msd.csv.tmp", np.c_[lags, msd], delimiter=",",
               header="t_ps,msd_A2", comments="")
    os.replace(outdir / "msd.csv.tmp", outdir / "msd.csv")
    (outdir / "msd.json.tmp").write_text(json.dumps({"source": source, **asdict(res)}, indent=1))
    os.replace(outdir / "msd.json.tmp", outdir / "msd.json")
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(lags, msd, label="MSD")
    lo, hi = res.fit_ps
    tt = np.linspace(lo, hi, 10)
    ax.plot(tt, 6 * res.D * tt + res.intercept, "--",
            label=f"fit: D = {res.D:.3g} ± {res.D_err:.2g} A²/ps")
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (A²)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(outdir / "msd.tmp.png", dpi=110)
    plt.close(fig)
    os.replace(outdir / "msd.tmp.png", outdir / "msd.png")


@click.command("analyze-msd")
@click.argument("trajectory", type=click.Path(exists=True, dir_okay=False))
@click.option("--timestep-fs", required=True, type=float, help="MD timestep (fs)")
@click.option("--every", default=1, show_default=True, type=click.IntRange(1),
              help="steps between frames of an ASE trajectory (dumps carry their steps)")
@click.option("--element", default=None,
              help="only these atoms (symbol; for LAMMPS dumps the type number)")
@click.option("--fit", default="0.1,0.5", show_default=True,
              help="fit window as fractions of the block length")
@click.option("--blocks", default=5, show_default=True, type=click.IntRange(1),
              help="blocks for the error bar")
@click.option("--remove-drift", is_flag=True, help="subtract the mean displacement first")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False))
def msd_cmd(trajectory, timestep_fs, every, element, fit, blocks, remove_drift, output) -> None:
    """MSD and self-diffusion coefficient of TRAJECTORY (LAMMPS dump or ASE trajectory):
    writes msd.csv, msd.json and msd.png into -o."""
    try:
        window = tuple(float(x) for x in fit.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"--fit {fit!r}: give two fractions, e.g. 0.1,0.5") from exc
    if len(window) != 2:
        raise click.BadParameter(f"--fit {fit!r}: give two fractions, e.g. 0.1,0.5")
    t, pos = load_trajectory(trajectory, timestep_fs, every, element)
    res, msd = diffusion_coefficient(t, pos, window, blocks, remove_drift)
    write_msd_report(t, msd, res, Path(output), str(trajectory))
    click.echo(f"D = {res.D:.4g} ± {res.D_err:.2g} A^2/ps = {res.D_cm2_per_s:.4g} ± "
               f"{res.D_err_cm2_per_s:.2g} cm^2/s ({pos.shape[1]} atoms, {len(t)} frames, "
               f"fit {res.fit_ps[0]:.3g}-{res.fit_ps[1]:.3g} ps); wrote {output}/msd.*")
