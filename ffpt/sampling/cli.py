"""``ffpt pt-data`` command (``ffpt scan`` lives in :mod:`ffpt.analysis.cli`)."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

TEACHER_HELP = ("teacher name: tip3p-flex, tip3p-flex-liquid, qforce-h2 or gaff; or a fitted EAM "
                "file (ffpt teacher fit-eam), e.g. eam.json with --from DATA --perturb two-step")


def _teachers(teacher, species, smiles, structure, charge_method, liquid):
    from ffpt.sampling.spec import build_teachers

    options = {"charge_method": charge_method} if teacher.lower() == "gaff" else {}
    if teacher.lower().replace("_", "-") == "tip3p-flex-liquid":
        options = {k: v for k, v in liquid.items() if v is not None}
    elif any(v not in (None, False) for v in liquid.values()):
        raise click.ClickException(
            "--molecules/--periodic/--density/--references/--reference-seed only apply to "
            "--teacher tip3p-flex-liquid"
        )
    try:
        return build_teachers(teacher, species, smiles, structure, **options)
    except (ValueError, ImportError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("pt-data")
@click.option("--teacher", required=True, help=TEACHER_HELP)
@click.option(
    "--species",
    default=None,
    help="qforce-h2 species: one formula, a list 'H2,O2,H2O', weights 'H2O:3,H2O2:1', "
    "or 'all' (default: all eight, equal weights)",
)
@click.option("--smiles", multiple=True, help="gaff: molecule SMILES (repeat for a mixture)")
@click.option(
    "--structure",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="gaff: 3D structure file (.sdf/.mol, or .xyz with bonds perceived)",
)
@click.option(
    "--charge-method",
    default="auto",
    type=click.Choice(["auto", "am1bcc", "gasteiger", "mmff94"]),
    help="gaff partial charges (auto: AM1-BCC, Gasteiger if AmberTools fails)",
)
@click.option(
    "--molecules",
    default=None,
    help="tip3p-flex-liquid: waters per frame, N or a mixture 'N:W,M:V' (e.g. '1:1,4:2'; "
    "default 4)",
)
@click.option("--periodic", is_flag=True, help="tip3p-flex-liquid: cubic periodic box (Ewald)")
@click.option(
    "--density", default=None, type=click.FloatRange(min=0, min_open=True),
    help="tip3p-flex-liquid: g/cm^3 of the box / cluster placement [0.997]",
)  # fmt: skip
@click.option(
    "--references", default=None, type=click.IntRange(1),
    help="tip3p-flex-liquid: relaxed random placements to rattle around [8]",
)  # fmt: skip
@click.option(
    "--reference-seed", default=None, type=int, help="tip3p-flex-liquid: placement seed [0]"
)
@click.option("--frames", default=100_000, show_default=True, type=click.IntRange(1))
@click.option(
    "--sigma", default=0.2, show_default=True, type=click.FloatRange(0), help="rattle (Å)"
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--no-shuffle", is_flag=True, help="keep mixture frames grouped by species")
@click.option("--extxyz", type=click.Path(dir_okay=False), help="also write an extxyz copy")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help=".npz (or .xyz)"
)
@click.option("--from", "from_data", default=None, type=click.Path(exists=True, dir_okay=False),
              help="perturb these structures (any cells) instead of relaxed molecules")
@click.option("--perturb", default=None, type=click.Choice(["two-step"]),
              help="with --from: n rounds of displacing atoms, then straining the cell")
@click.option("--rounds", default=10, show_default=True, type=click.IntRange(1),
              help="two-step: perturbed frames per --from structure")
@click.option("--displacement", default=0.1, show_default=True, type=click.FloatRange(0),
              help="two-step: atomic displacement (A, per coordinate)")
@click.option("--strain", default=0.03, show_default=True, type=click.FloatRange(0, 0.5),
              help="two-step: cell strain amplitude (components U(-s, s))")
def pt_data(teacher, species, smiles, structure, charge_method, molecules, periodic, density,
            references, reference_seed, frames, sigma, seed, no_shuffle, extxyz,
            output, from_data, perturb, rounds, displacement, strain) -> None:  # fmt: skip
    """Relax molecules with a classical TEACHER, rattle them (x + sigma*N(0,1)) and label
    the frames: a pre-training data set in ffpt's FrameSet format. Materials: --teacher
    eam.json --from DATA --perturb two-step (ffpt.sampling.perturb)."""
    from ffpt.sampling.rattle import generate_pt_data

    if from_data or perturb:
        from ffpt.sampling.perturb import perturb_cmd

        return perturb_cmd(teacher, from_data, perturb, rounds, displacement, strain, seed,
                           output, extxyz)
    t0 = time.perf_counter()
    liquid = {"molecules": molecules, "periodic": periodic or None, "density": density,
              "references": references, "seed": reference_seed}  # fmt: skip
    teachers, weights = _teachers(teacher, species, smiles, structure, charge_method, liquid)
    for t in teachers:
        pos = t.relaxed_positions
        e, f = t.energy_forces(pos)
        label = getattr(t, "species", t.formula)
        click.echo(f"relaxed {label:>8s}: E = {e:.6f} eV, max |F| = {np.abs(f).max():.1e} eV/A")
    fs = generate_pt_data(
        teachers, frames, sigma=sigma, seed=seed, proportions=weights,
        shuffle=not no_shuffle, progress=True,
    )  # fmt: skip
    out = write_pt_frames(fs, output, extxyz)
    click.echo(f"wrote {out} in {time.perf_counter() - t0:.1f} s")


def write_pt_frames(fs, output: str, extxyz: str | None) -> Path:
    """Save PT frames to ``output`` (.npz, or .xyz/.extxyz), optionally also as extxyz, and
    print their summary; returns the output path."""
    from ffpt.sampling.rattle import export_extxyz, summary

    out = Path(output)
    if out.suffix.lower() in (".xyz", ".extxyz"):
        export_extxyz(fs, out)
    else:
        if out.suffix.lower() != ".npz":
            raise click.ClickException(f"{out}: output must end in .npz (or .xyz for extxyz)")
        fs.save(out)
    if extxyz:
        export_extxyz(fs, extxyz)
    click.echo(summary(fs))
    return out
