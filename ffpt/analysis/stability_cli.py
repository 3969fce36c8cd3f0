"""``ffpt stability``: MD stability of deployed models (seeds x temperatures x models)."""

from __future__ import annotations

from pathlib import Path

import click


def _models(specs: tuple[str, ...]) -> dict[str, str]:
    models: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name, path = (name, path) if sep else (Path(spec).stem, spec)
        if not name or not path or "/" in name:
            raise click.BadParameter(f"{spec!r}: give NAME=ARTIFACT (or just ARTIFACT)")
        if name in models:
            raise click.BadParameter(f"model name {name!r} given twice; name them NAME=ARTIFACT")
        models[name] = path
    return models


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: give comma-separated numbers, e.g. 300,500") from exc


@click.command("stability")
@click.argument("models", nargs=-1, required=True)
@click.option("--start", required=True, type=click.Path(exists=True, dir_okay=False),
              help="start structure (any ASE-readable file)")
@click.option("--temps", default="300", show_default=True, help="temperatures (K), e.g. 300,500")
@click.option("--seeds", default=4, show_default=True, type=click.IntRange(1),
              help="number of seeds (1..N) per model and temperature")
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--timestep", default=0.5, show_default=True, type=float, help="fs")
@click.option("--friction", default=2.0, show_default=True, type=float,
              help="Langevin friction (1/ps; damping time = 1/friction)")
@click.option("--system", default="auto", show_default=True,
              type=click.Choice(["auto", "molecule", "water", "reactive"]),
              help="failure criteria (auto: water box, one molecule, or several fragments)")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1),
              help="LAMMPS processes at once (one thread each)")
@click.option("--dump-every", default=20, show_default=True, type=click.IntRange(1),
              help="steps between checked frames (and thermo lines)")
@click.option("--chunk-steps", default=10_000, show_default=True, type=click.IntRange(1),
              help="steps per LAMMPS chunk (a multiple of --dump-every): an interrupted run "
                   "resumes after its last finished chunk")
@click.option("--bond-tolerance", default=0.5, show_default=True, type=float,
              help="molecule: largest bond-length change (A)")
@click.option("--min-distance", default=None, type=float,
              help="closest allowed pair (A) [default: 0.7; 0.5 for reactive]")
@click.option("--timeout", default=None, type=float, help="seconds per run (then censored)")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="output folder (reruns skip finished runs with the same settings)")
@click.option("--overwrite", is_flag=True, help="replace runs whose settings changed")
@click.option("--run-past-failure", is_flag=True,
              help="run every MD to its full length (default: stop a run once it has failed)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def stability(models, start, temps, seeds, steps, timestep, friction, system, jobs, dump_every,
              chunk_steps, bond_tolerance, min_distance, timeout, output, overwrite,
              run_past_failure, no_progress) -> None:
    """Langevin MD (LAMMPS, pair_style ffpt) of each MODEL (NAME=ARTIFACT) from --start at
    each temperature and seed; counts failures and writes summary.json, summary.md and the
    Kaplan-Meier survival curves survival.png into -o."""
    from ffpt.analysis.stability import run_stability

    crit = {"bond_tolerance": bond_tolerance, "min_distance": min_distance}
    summary = run_stability(_models(models), start, _floats(temps), seeds, steps, timestep,
                            friction, system, output, jobs, dump_every, criteria=crit,
                            overwrite=overwrite, timeout=timeout, progress=not no_progress,
                            echo=lambda m: click.echo(m, err=True),
                            stop_on_failure=not run_past_failure, chunk_steps=chunk_steps)
    for m, per_t in summary["results"].items():
        for temp, c in per_t.items():
            med = c["median_time_to_failure_ps"]
            click.echo(f"{m} {temp} K: {c['runs'] - c['failed']}/{c['runs']} stable, median time "
                       f"to failure {'not reached' if med is None else f'{med:.3g} ps'}")
    click.echo(f"wrote {Path(output) / 'summary.md'} and survival.png")
