"""Free-energy surfaces from PLUMED HILLS files (``ffpt fes``).

Same numbers as ``plumed sum_hills`` on the same grid: F(s) = -sum_i w_i G_i(s) with the
heights ``w_i`` as PLUMED writes them (for well-tempered METAD already multiplied by
gamma/(gamma-1), so the sum is the free-energy estimate) and the truncated, shifted
Gaussians sum_hills uses (zero beyond sqrt(12.5) = 3.54 sigma). Diagonal (non-multivariate)
hills, 1 to 3 CVs, periodic CVs through ``#! SET min_X/max_X``. Units are those of the
HILLS file (PLUMED default: kJ/mol, CVs in nm). HILLS files may be xz- or gzip-compressed
(``HILLS.xz``, ``HILLS.gz``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

DP2CUTOFF = 12.5  # sum_hills' kernel support, (distance/sigma)^2 (= 2 x METAD's 6.25)


@dataclass
class Hills:
    names: list[str]  # CV names
    time: np.ndarray  # (H,)
    centers: np.ndarray  # (H, D)
    sigmas: np.ndarray  # (H, D)
    heights: np.ndarray  # (H,)  as written (well-tempered: already rescaled)
    biasf: np.ndarray | None
    periods: list[tuple[float, float] | None]  # (min, max) for periodic CVs

    @property
    def ndim(self) -> int:
        return len(self.names)


def _parse_number(text: str) -> float:
    t = text.strip().lower()
    sign = -1.0 if t.startswith("-") else 1.0
    t = t.lstrip("+-")
    if t.endswith("pi"):
        pre = t[:-2].rstrip("*")
        return sign * (float(pre) if pre else 1.0) * np.pi
    return sign * float(t)


def read_text(path: str | os.PathLike) -> str:
    """A PLUMED text file (HILLS, COLVAR), plain or compressed (``.xz``, ``.gz``)."""
    path = Path(path)
    if path.suffix in (".xz", ".gz"):
        import gzip
        import lzma

        opener = lzma.open if path.suffix == ".xz" else gzip.open
        with opener(path, "rt") as f:
            return f.read()
    return path.read_text()


def read_hills(path: str | os.PathLike) -> Hills:
    """Parse a PLUMED HILLS file (restarted files with repeated headers are fine)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HILLS file {path} not found")
    fields: list[str] | None = None
    sets: dict[str, str] = {}
    rows: list[list[float]] = []
    for line in read_text(path).splitlines():
        if line.startswith("#!"):
            words = line.split()
            if len(words) > 2 and words[1] == "FIELDS":
                fields = words[2:]
            elif len(words) > 3 and words[1] == "SET":
                sets[words[2]] = words[3]
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if fields is None:
            raise ValueError(f"{path}: no '#! FIELDS' header; is this a PLUMED HILLS file?")
        vals = line.split()
        if len(vals) != len(fields):
            continue  # truncated last line of a killed run
        rows.append([float(v) for v in vals])
    if fields is None or not rows:
        raise ValueError(f"{path} holds no hills")
    if sets.get("multivariate", "false") == "true":
        raise ValueError(f"{path}: multivariate (ADAPTIVE) hills are not supported; use plumed "
                         "sum_hills for those")
    data = np.array(rows)
    col = {f: k for k, f in enumerate(fields)}
    names = [f[len("sigma_"):] for f in fields if f.startswith("sigma_")]
    if not names or "height" not in col:
        raise ValueError(f"{path}: FIELDS {fields} lack sigma_*/height columns")
    periods: list[tuple[float, float] | None] = []
    for n in names:
        if f"min_{n}" in sets and f"max_{n}" in sets:
            periods.append((_parse_number(sets[f"min_{n}"]), _parse_number(sets[f"max_{n}"])))
        else:
            periods.append(None)
    return Hills(
        names=names,
        time=data[:, col["time"]] if "time" in col else np.arange(len(data), dtype=float),
        centers=data[:, [col[n] for n in names]],
        sigmas=data[:, [col["sigma_" + n] for n in names]],
        heights=data[:, col["height"]],
        biasf=data[:, col["biasf"]] if "biasf" in col else None,
        periods=periods,
    )


def default_grid(hills: Hills, bins: int | list[int] | None = None,
                 gmin: list[float] | None = None, gmax: list[float] | None = None
                 ) -> list[np.ndarray]:
    """Grid axes like sum_hills: ``bins+1`` points from min to max (``bins`` if periodic).

    Default range: hill centres +- 2 sigma, not below 0 when all centres are >= 0."""
    d = hills.ndim
    if bins is None:
        bins = [200] if d == 1 else [100] * d
    elif isinstance(bins, int):
        bins = [bins] * d
    axes = []
    for k in range(d):
        per = hills.periods[k]
        if per is not None:
            lo, hi = per
            axes.append(lo + (hi - lo) * np.arange(bins[k]) / bins[k])
            continue
        c, s = hills.centers[:, k], hills.sigmas[:, k]
        lo = float((c - 2.0 * s).min())
        if c.min() >= 0.0:  # distances, coordination numbers: nothing below zero
            lo = max(lo, 0.0)
        lo = gmin[k] if gmin is not None else lo
        hi = gmax[k] if gmax is not None else float((c + 2.0 * s).max())
        axes.append(np.linspace(lo, hi, bins[k] + 1))
    return axes


def _kernel_1d(x: np.ndarray, c: np.ndarray, s: np.ndarray,
               period: tuple[float, float] | None) -> np.ndarray:
    """(H, G) scaled squared distances (x - c)^2 / sigma^2 (minimum image if periodic)."""
    dx = x[None, :] - c[:, None]
    if period is not None:
        L = period[1] - period[0]
        dx -= L * np.round(dx / L)
    return (dx / s[:, None]) ** 2


def sum_hills(hills: Hills, axes: list[np.ndarray], upto: int | None = None,
              chunk: int = 2000) -> np.ndarray:
    """Free energy F = -sum of hills on the grid ``axes`` (first ``upto`` hills)."""
    n = len(hills.heights) if upto is None else int(upto)
    d = hills.ndim
    if d > 3:
        raise ValueError("at most 3 CVs are supported")
    shape = tuple(len(a) for a in axes)
    bias = np.zeros(shape)
    # sum_hills' Gaussians go smoothly to zero at the cutoff: a exp(-dp2/2) + b inside it
    a = 1.0 / (1.0 - np.exp(-0.5 * DP2CUTOFF))
    b = -np.exp(-0.5 * DP2CUTOFF) * a
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        w = hills.heights[sl]
        dp2 = [_kernel_1d(axes[k], hills.centers[sl, k], hills.sigmas[sl, k],
                          hills.periods[k]) for k in range(d)]
        if d == 1:
            tot = dp2[0]
        elif d == 2:
            tot = dp2[0][:, :, None] + dp2[1][:, None, :]
        else:
            tot = dp2[0][:, :, None, None] + dp2[1][:, None, :, None] + dp2[2][:, None, None, :]
        g = np.where(tot < DP2CUTOFF, a * np.exp(-0.5 * tot) + b, 0.0)
        bias += np.tensordot(w, g, axes=(0, 0))
    return -bias


@dataclass
class FES:
    axes: list[np.ndarray]
    free_energy: np.ndarray  # minimum shifted to zero
    names: list[str]
    times: np.ndarray | None = None  # convergence: time of each slice
    slices: list[np.ndarray] | None = None  # FES of the first k hills (min at zero)


def compute_fes(hills_path: str | os.PathLike, bins=None, gmin=None, gmax=None,
                n_slices: int = 0) -> FES:
    """FES (min at 0) from a HILLS file; ``n_slices`` > 0 adds FES at evenly spaced times."""
    hills = read_hills(hills_path)
    axes = default_grid(hills, bins, gmin, gmax)
    f = sum_hills(hills, axes)
    fes = FES(axes=axes, free_energy=f - f.min(), names=hills.names)
    if n_slices > 0:
        nh = len(hills.heights)
        cuts = np.unique(np.linspace(0, nh, n_slices + 1)[1:].round().astype(int))
        cuts = cuts[cuts > 0]
        fes.times = hills.time[cuts - 1]
        fes.slices = []
        for c in cuts:
            s = sum_hills(hills, axes, upto=c)
            fes.slices.append(s - s.min())
    return fes


def basin_free_energies(free_energy: np.ndarray, regions: dict[str, np.ndarray],
                        kT: float) -> dict[str, float]:
    """Free energy of each region of the CV grid, ``-kT ln sum exp(-F/kT)`` over its grid
    points (a uniform grid; same units as ``F`` and ``kT``), relative to the lowest region.
    A region with no grid point is left out."""
    f = np.asarray(free_energy, float)
    f0 = f.min()
    out = {name: float(f0 - kT * np.log(np.exp(-(f[m] - f0) / kT).sum()))
           for name, m in regions.items() if np.any(m)}
    low = min(out.values(), default=0.0)
    return {k: v - low for k, v in out.items()}


def fes_at(fes: FES, points: np.ndarray) -> np.ndarray:
    """F at ``points`` [n, D] (CV units): the value of the nearest grid point (points beyond
    the grid take the edge's)."""
    pts = np.atleast_2d(np.asarray(points, dtype=float))
    idx = tuple(np.clip(np.rint((pts[:, k] - ax[0]) / (ax[1] - ax[0])).astype(int), 0,
                        len(ax) - 1) for k, ax in enumerate(fes.axes))
    return fes.free_energy[idx]


def reweighted_state_free_energies(states: list[str], bias: np.ndarray,
                                   kT: float) -> dict[str, float]:
    """Free energy of each state from frames sampled under a static bias ``V`` (one value per
    frame, energy units of ``kT``): F_s = -kT ln sum_{t in s} exp(V_t / kT), relative to the
    lowest. Valid where the bias no longer changes, e.g. the late frames of a well-tempered
    run with its final bias V = -(gamma - 1) / gamma F."""
    b = np.asarray(bias, dtype=float) / kT
    labels = np.asarray(states, dtype=object)
    out = {}
    for s in dict.fromkeys(states):
        v = b[labels == s]
        out[s] = float(-kT * (v.max() + np.log(np.exp(v - v.max()).sum())))
    low = min(out.values())
    return {k: v - low for k, v in out.items()}


def write_fes(fes: FES, path: str | os.PathLike) -> None:
    grids = np.meshgrid(*fes.axes, indexing="ij")
    cols = [g.ravel() for g in grids] + [fes.free_energy.ravel()]
    header = "FIELDS " + " ".join(fes.names) + " file.free"
    np.savetxt(path, np.column_stack(cols), header=header, fmt="%.8g")


def plot_fes(fes: FES, png: str | os.PathLike, energy_unit: str = "kJ/mol",
             cv_unit: str = "nm", fmax: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = 2 if fes.slices else 1
    fig, axs = plt.subplots(1, ncol, figsize=(5.5 * ncol, 4.2), squeeze=False)
    ax = axs[0, 0]
    f = fes.free_energy
    top = fmax if fmax is not None else float(np.percentile(f, 95))
    if len(fes.axes) == 1:
        ax.plot(fes.axes[0], f, "k-", lw=1.5, label="final")
        if fes.slices:
            cmap = plt.get_cmap("viridis")
            for k, (t, s) in enumerate(zip(fes.times, fes.slices, strict=True)):
                ax.plot(fes.axes[0], s, color=cmap(k / max(1, len(fes.slices) - 1)), lw=0.8,
                        alpha=0.7, label=f"t={t:g}" if k in (0, len(fes.slices) - 1) else None)
            ax.legend(fontsize=8)
        ax.set_xlabel(f"{fes.names[0]} ({cv_unit})")
        ax.set_ylabel(f"F ({energy_unit})")
        ax.set_ylim(-0.05 * top, top)
    elif len(fes.axes) == 2:
        cs = ax.contourf(fes.axes[0], fes.axes[1], np.clip(f, 0, top).T, levels=30,
                         cmap="viridis")
        ax.contour(fes.axes[0], fes.axes[1], np.clip(f, 0, top).T, levels=10, colors="k",
                   linewidths=0.4)
        fig.colorbar(cs, ax=ax, label=f"F ({energy_unit})")
        ax.set_xlabel(f"{fes.names[0]} ({cv_unit})")
        ax.set_ylabel(f"{fes.names[1]} ({cv_unit})")
    else:
        raise ValueError("plots are for 1 or 2 CVs")
    if fes.slices:
        ax2 = axs[0, 1]
        mask = f < top
        rms = [float(np.sqrt(np.mean((s - f)[mask] ** 2))) for s in fes.slices]
        ax2.plot(fes.times, rms, "o-")
        ax2.set_xlabel("time (PLUMED units, ps by default)")
        ax2.set_ylabel(f"RMS(F(t) - F_final) where F<{top:.3g} ({energy_unit})")
        ax2.set_title("convergence")
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)


def _floats(text: str | None) -> list[float] | None:
    return None if text is None else [_parse_number(t) for t in text.split(",")]


@click.command("fes")
@click.argument("hills", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", default=None, help="output prefix (default: next to HILLS: fes)")
@click.option("--bin", "bins", default=None, help="grid bins, comma separated per CV")
@click.option("--min", "gmin", default=None, help="grid minimum per CV, comma separated")
@click.option("--max", "gmax", default=None, help="grid maximum per CV, comma separated")
@click.option("--slices", default=0, show_default=True,
              help="also compute the FES at this many evenly spaced times (convergence)")
@click.option("--fmax", type=float, default=None, help="upper end of the colour/energy scale")
@click.option("--energy-unit", default="kJ/mol", show_default=True, help="axis label only")
@click.option("--cv-unit", default="nm", show_default=True, help="axis label only")
def fes_cmd(hills, out, bins, gmin, gmax, slices, fmax, energy_unit, cv_unit) -> None:
    """Free-energy surface from a PLUMED HILLS file: fes.dat (sum_hills numbers) + fes.png."""
    b = None if bins is None else [int(x) for x in bins.split(",")]
    fes = compute_fes(hills, bins=b, gmin=_floats(gmin), gmax=_floats(gmax), n_slices=slices)
    prefix = Path(out) if out else Path(hills).with_name("fes")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_fes(fes, f"{prefix}.dat")
    plot_fes(fes, f"{prefix}.png", energy_unit=energy_unit, cv_unit=cv_unit, fmax=fmax)
    click.echo(f"wrote {prefix}.dat and {prefix}.png ({' x '.join(fes.names)}, "
               f"grid {'x'.join(str(len(a)) for a in fes.axes)}, "
               f"F range 0..{fes.free_energy.max():.4g} {energy_unit})")
