"""``ffpt teacher``: teachers fitted to data (``fit-eam``)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("teacher")
def teacher() -> None:
    """Teachers fitted to the target data (materials: an EAM)."""


@teacher.command("fit-eam")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="EAM parameter file (.json); use it as --teacher OUTPUT.")
@click.option("--setfl", type=click.Path(dir_okay=False), default=None,
              help="Also write a LAMMPS eam/alloy file (default: OUTPUT with .eam.alloy).")
@click.option("--cutoff", default=5.0, show_default=True, type=click.FloatRange(1, min_open=True),
              help="Cutoff radius (A).")
@click.option("--smoothing", default=0.5, show_default=True,
              type=click.FloatRange(0, min_open=True), help="Width of the smooth cutoff (A).")
@click.option("--forces-weight", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Weight of the force MSE against the per-atom energy MSE.")
@click.option("--max-iter", default=500, show_default=True, type=click.IntRange(1),
              help="L-BFGS iterations.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
def fit_eam_cmd(data, output, setfl, cutoff, smoothing, forces_weight, max_iter,
                overwrite) -> None:
    """Fit an EAM (Morse pair, exponential density, -A sqrt(rho) + B rho^2 embedding) to the
    energies and forces of DATA (FrameSet .npz or labelled extxyz, any cells)."""
    from ffpt.data.readers import read_many
    from ffpt.teachers.eam import fit_eam

    out = Path(output)
    if out.suffix != ".json":
        raise click.ClickException(f"{out}: the EAM file must end in .json")
    setfl = Path(setfl) if setfl else out.with_suffix(".eam.alloy")
    for p in (out, setfl):
        if p.exists() and not overwrite:
            raise click.ClickException(f"{p} exists; pass --overwrite to replace it")
    try:
        fs = read_many(list(data))
    except KeyError as exc:
        raise click.ClickException(f"{exc.args[0].split(';')[0]}; fit-eam needs energies and "
                                   "forces: label the structures first (ffpt label DATA -o "
                                   "labelled.npz)") from exc
    pot, stats = fit_eam(fs, cutoff=cutoff, smoothing=smoothing, forces_weight=forces_weight,
                         max_iter=max_iter)
    rho_max = 2.0 * stats["rho_max_data"]
    pot.write_setfl(setfl, rho_max=rho_max, comment=f"fitted to {', '.join(data)}")
    pot.save(out, {"fit": {**stats, "data": list(data), "setfl": str(setfl),
                           "setfl_rho_max": rho_max}})
    click.echo(json.dumps(pot.params()))
    click.echo(f"fit: energy RMSE {stats['energy_rmse_eV_atom']:.4f} eV/atom, force RMSE "
               f"{stats['forces_rmse_eV_A']:.4f} eV/A (data force RMS "
               f"{stats['forces_rms_eV_A']:.4f}) on {stats['n_frames']} frames")
    click.echo(f"wrote {out} and {setfl} (LAMMPS: pair_style eam/alloy; "
               f"pair_coeff * * {setfl.name} {' '.join(pot.elements)})")
