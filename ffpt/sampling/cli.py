"""``ffpt pt-data`` and ``ffpt scan`` commands."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

TEACHER_HELP = "teacher name: tip3p-flex, qforce-h2 or gaff"


def _teachers(teacher, species, smiles, structure, charge_method):
    from ffpt.sampling.spec import build_teachers

    options = {"charge_method": charge_method} if teacher.lower() == "gaff" else {}
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
def pt_data(teacher, species, smiles, structure, charge_method, frames, sigma, seed,
            no_shuffle, extxyz, output) -> None:  # fmt: skip
    """Relax molecules with a classical TEACHER, rattle them (x + sigma*N(0,1)) and label
    the frames: a pre-training data set in ffpt's FrameSet format."""
    from ffpt.sampling.rattle import export_extxyz, generate_pt_data, summary

    t0 = time.perf_counter()
    teachers, weights = _teachers(teacher, species, smiles, structure, charge_method)
    for t in teachers:
        pos = t.relaxed_positions
        e, f = t.energy_forces(pos)
        label = getattr(t, "species", t.formula)
        click.echo(f"relaxed {label:>8s}: E = {e:.6f} eV, max |F| = {np.abs(f).max():.1e} eV/A")
    fs = generate_pt_data(
        teachers, frames, sigma=sigma, seed=seed, proportions=weights,
        shuffle=not no_shuffle, progress=True,
    )  # fmt: skip
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
    click.echo(f"wrote {out} in {time.perf_counter() - t0:.1f} s")


@click.command("scan")
@click.option("--teacher", "teachers", multiple=True, help=TEACHER_HELP + " (repeatable)")
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Path(exists=True),
    help="ffpt model checkpoint (repeatable)",
)
@click.option(
    "--species", default="H2O", show_default=True, help="molecule to scan (a qforce-h2 species)"
)
@click.option(
    "--bond", default="0,1", show_default=True, help="atom indices I,J of the stretched bond"
)
@click.option("--ymax", default=10.0, show_default=True, help="upper y-limit (eV)")
@click.option("--npz", type=click.Path(dir_okay=False), help="also save the curves (.npz)")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG")
def scan(teachers, models, species, bond, ymax, npz, output) -> None:
    """PES cuts (bond stretch 0.5-3 Å; for water also the H-O-H angle 60-180°) for
    teachers and/or trained models, drawn as a PNG."""
    from ase import Atoms

    from ffpt.sampling.scan import bond_scan, water_scans
    from ffpt.teachers.base import get_teacher
    from ffpt.teachers.qforce_h2 import canonical_species

    if not teachers and not models:
        raise click.ClickException("give at least one --teacher or --model")
    try:
        species = canonical_species(species)
        calcs, ref = {}, None
        for name in teachers:
            if name.lower() not in ("tip3p-flex", "qforce-h2"):
                raise ValueError(
                    f"ffpt scan draws water/combustion species: use --teacher tip3p-flex or "
                    f"qforce-h2, not '{name}' (for other molecules call "
                    "ffpt.sampling.scan.bond_scan from Python)"
                )
            t = get_teacher(name, species=species)
            calcs[f"{t.name} ({t.formula})"] = t.as_calculator()
            if ref is None:
                ref = Atoms(numbers=t.numbers, positions=t.relaxed_positions)
    except (ValueError, ImportError) as exc:
        raise click.ClickException(str(exc)) from exc
    for path in models:
        from ffpt.calculator import FFPTCalculator

        p = Path(path)
        label = p.parent.name if p.stem in ("best", "last", "model", "checkpoint") else p.stem
        calcs[label] = FFPTCalculator(str(p))
    if ref is None and species != "H2O":  # models only: qforce-h2 minimum as reference
        t = get_teacher("qforce-h2", species=species)
        ref = Atoms(numbers=t.numbers, positions=t.relaxed_positions)
    if species == "H2O":
        res = water_scans(calcs, output, reference=ref, ymax=ymax)
    else:
        try:
            i, j = (int(v) for v in bond.split(","))
        except ValueError:
            raise click.ClickException(
                f"--bond must be 'I,J' (atom indices), got '{bond}'"
            ) from None
        if not (0 <= i < len(ref) and 0 <= j < len(ref)) or i == j:
            raise click.ClickException(f"--bond {bond}: indices must differ and be < {len(ref)}")
        res = bond_scan(calcs, ref, i, j, output, ymax=ymax, title=species)
    if npz:
        flat = {k: v for k, v in res.items() if isinstance(v, np.ndarray)}
        for key in ("bond", "angle", "reference_energy"):
            for name, e in res.get(key, {}).items():
                flat[f"{key}/{name}"] = np.asarray(e)
        np.savez(npz, **flat)
    for name in calcs:
        e = res["bond"][name] - res["reference_energy"][name]
        msg = f"{name}: stretch E-E0 in [{e.min():.3f}, {e.max():.3f}] eV"
        if "angle" in res:
            a = res["angle"][name] - res["reference_energy"][name]
            msg += f"; bend E-E0 in [{a.min():.3f}, {a.max():.3f}] eV"
        click.echo(msg)
    click.echo(f"wrote {output}")
