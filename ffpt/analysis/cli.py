"""``ffpt scan``: the hole finder (and the older water/bond PNG views)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np

from ffpt.analysis.scan_report import OUTPUTS

LABEL = re.compile(r"^([\w.+#-]+)=(.+)$")  # NAME=SPEC (a spec like gaff:CC(=O)O has a ':' first)


def _model_specs(specs: list[str], names: tuple[str, ...]) -> dict[str, str]:
    """label -> spec from ``NAME=SPEC`` entries, ``--name`` labels (in order) or defaults."""
    if len(names) > len(specs):
        raise click.UsageError(f"{len(names)} --name labels for {len(specs)} models; give one each")
    out: dict[str, str] = {}
    for n, spec in enumerate(specs):
        m = LABEL.match(spec)
        label, spec = (m.group(1), m.group(2)) if m and not Path(spec).exists() else (None, spec)
        if n < len(names):
            label = names[n]
        if label is None:
            p = Path(spec)
            label = p.parent.name if p.stem in ("best", "last", "model", "checkpoint") else p.stem
            label = label if p.is_file() else spec
        base, k = label, 2
        while label in out:
            label, k = f"{base}#{k}", k + 1
        out[label] = spec
    return out


def _load(specs: dict[str, str], dtype: str, species: str | None, structure: str | None) -> dict:
    from ffpt.calculator import load_calculator

    calcs = {}
    for label, spec in specs.items():
        if structure and spec.lower().replace("_", "-") == "gaff":
            spec = f"gaff:{structure}"  # a bare gaff teacher types the scanned structure
        try:
            calcs[label] = load_calculator(spec, dtype=dtype, species=species)
        except (ValueError, ImportError, FileNotFoundError) as exc:
            raise click.BadParameter(str(exc), param_hint=f"model '{label}'") from exc
    return calcs


@click.command("scan")
@click.argument("models", nargs=-1)
@click.option("--structure", type=click.Path(exists=True, dir_okay=False),
              help="reference geometry: a structure file (any ASE format; last frame)")
@click.option("--species", default=None,
              help="reference geometry: a teacher's minimum, e.g. H2O, HO2, qforce-h2:H2O2, "
                   "tip3p-flex, gaff:SMILES")
@click.option("--name", "names", multiple=True, help="label of the n-th MODEL (repeatable)")
@click.option("--threshold", default=0.1, show_default=True, type=click.FloatRange(0),
              help="flag a point this far (eV) below the running maximum of its scan")
@click.option("--tolerance", default=0.05, show_default=True, type=click.FloatRange(0),
              help="flag a point this far (eV) below the reference energy")
@click.option("--min-bend", default=20.0, show_default=True, type=click.FloatRange(1, 179),
              help="smallest angle of the bend scans (deg)")
@click.option("--max-bend", default=180.0, show_default=True, type=click.FloatRange(2, 180),
              help="largest angle of the bend scans (deg)")
@click.option("--kinds", default="stretch,bend,approach", show_default=True,
              help="scan kinds to run (comma-separated)")
@click.option("--dtype", default="float64", show_default=True,
              type=click.Choice(["float64", "float32"]), help="checkpoint evaluation precision")
@click.option("--ymax", default=10.0, show_default=True, help="upper y-limit of plots (eV)")
@click.option("--overwrite", is_flag=True, help="replace the results of an earlier scan in OUTDIR")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.option("--teacher", "teachers", multiple=True, help="a teacher as model (repeatable)")
@click.option("--model", "model_files", multiple=True, type=click.Path(exists=True),
              help="a checkpoint or deployed artifact as model (repeatable)")
@click.option("--bond", default="0,1", show_default=True,
              help="PNG mode only: atom indices I,J of the stretched bond (non-water species)")
@click.option("--npz", type=click.Path(dir_okay=False), help="PNG mode only: save the curves")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="OUTDIR for the hole finder, or a .png for the water/bond view")
@click.pass_context
def scan(ctx, models, structure, species, names, threshold, tolerance, min_bend, max_bend,
         kinds, dtype, ymax, overwrite, no_progress, teachers, model_files, bond, npz,
         output) -> None:  # fmt: skip
    """Find holes of MODELs (checkpoints, deployed artifacts, teachers such as tip3p-flex or
    qforce-h2:HO2; NAME=SPEC sets a label) by rigid scans of every bond stretch (0.5-3 r0),
    bend and non-bonded close approach of one molecule (--structure FILE or --species NAME).

    Writes OUTDIR/holes.csv (every point), holes.md (summary), scans.png and, when anything
    is flagged, flagged_scans.png. Exit status: 0 no model has a flagged point, 3 holes were
    found (gate deployment on it), 2 usage error, 1 other failure.

    With ``-o FILE.png`` the older view is drawn instead: water O-H stretch and H-O-H bend
    (or --bond I,J of another species) for --teacher/--model calculators.
    """
    specs = [*models, *teachers, *model_files]
    if not specs:
        raise click.UsageError("give at least one MODEL (checkpoint, artifact or teacher name)")
    if output.lower().endswith(".png"):
        if structure:
            raise click.UsageError("--structure needs the hole finder: give -o OUTDIR, not a .png")
        return _png_view(specs, names, species or "H2O", bond, ymax, npz, output, dtype)
    if (structure is None) == (species is None):
        raise click.UsageError("give exactly one reference: --structure FILE or --species NAME")
    if min_bend >= max_bend:
        raise click.BadParameter(f"{min_bend} >= {max_bend}", param_hint="--min-bend/--max-bend")
    kind_list = tuple(k.strip() for k in kinds.split(",") if k.strip())
    outdir = Path(output)
    if outdir.exists() and not outdir.is_dir():
        raise click.UsageError(f"-o {outdir} is a file; give a folder (or a .png for the view)")
    old = [outdir / f for f in OUTPUTS if (outdir / f).exists()]
    if old and not overwrite:
        raise click.UsageError(f"{outdir} already holds scan results ({old[0].name}); "
                               "pass --overwrite or choose another -o")  # fmt: skip
    from ffpt.analysis.scan import build_scans, find_holes, reference_atoms
    from ffpt.analysis.scan_report import write_report

    try:
        ref = reference_atoms(structure=structure, species=species)
        scans = build_scans(ref, kinds=kind_list, bend=(min_bend, max_bend, 2.0))
    except (ValueError, ImportError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    calcs = _load(_model_specs(specs, names), dtype, ref.get_chemical_formula(), structure)
    try:
        report = find_holes(calcs, ref, scans, threshold, tolerance, progress=not no_progress)
    except (ValueError, FloatingPointError) as exc:
        raise click.ClickException(str(exc)) from exc
    for f in old:
        f.unlink()
    paths = write_report(report, outdir, ymax=ymax)
    for m in report.models:
        w = report.worst(m)
        msg = f"{m}: {len(scans)} scans, {len(report.flagged_scans(m))} flagged"
        if w:
            msg += (f"; worst {w['depth']:.3g} eV ({w['flag']}) at {w['kind']} {w['label']} = "
                    f"{w['value']:.3g} {w['unit']}")  # fmt: skip
        click.echo(msg)
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
    if report.has_holes:
        click.echo("holes found (exit status 3)")
        ctx.exit(3)


def _png_view(specs, names, species, bond, ymax, npz, output, dtype) -> None:
    """The water (O-H stretch + H-O-H bend) or single-bond PNG of the earlier ``ffpt scan``."""
    from ase import Atoms

    from ffpt.analysis.scan import bond_scan, water_scans
    from ffpt.teachers.qforce_h2 import canonical_species

    try:
        species = canonical_species(species)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--species") from exc
    calcs = _load(_model_specs(specs, names), dtype, species, None)
    teachers = [c.teacher for c in calcs.values() if hasattr(c, "teacher")]
    if teachers:
        ref = Atoms(numbers=teachers[0].numbers, positions=teachers[0].relaxed_positions)
    else:
        from ffpt.analysis.scan import reference_atoms

        ref = reference_atoms(species=species)
    if species == "H2O":
        res = water_scans(calcs, output, reference=ref, ymax=ymax)
    else:
        try:
            i, j = (int(v) for v in bond.split(","))
        except ValueError:
            raise click.BadParameter(
                f"'{bond}' is not 'I,J' (atom indices)", param_hint="--bond"
            ) from None
        if not (0 <= i < len(ref) and 0 <= j < len(ref)) or i == j:
            raise click.BadParameter(f"{bond}: indices must differ and be < {len(ref)}",
                                     param_hint="--bond")  # fmt: skip
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
