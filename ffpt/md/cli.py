"""``ffpt metad``: well-tempered metadynamics through ASE + PLUMED with an ffpt model.

    ffpt metad model.pt -g geometry.xyz -p plumed.dat -o runs/rxn09 --steps 250000
    ffpt metad --calc qforce-h2 -g geometry.xyz -p plumed.dat -o runs/test --steps 2000

MODEL is a training checkpoint or an ``ffpt-deploy`` artifact (``ffpt.calculator.load_calculator``
tells them apart by content); ``--calc`` uses a built-in teacher force field instead (for
testing; any atom order).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import click
import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes


class PermutedCalculator(Calculator):
    """Evaluates ``teacher`` (fixed atom order) on atoms given in another order."""

    implemented_properties = ("energy", "free_energy", "forces")

    def __init__(self, teacher, perm: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.teacher = teacher
        self.perm = np.asarray(perm)  # teacher atom k is geometry atom perm[k]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        e, f_t = self.teacher.energy_forces(self.atoms.positions[self.perm])
        forces = np.zeros((len(self.atoms), 3))
        forces[self.perm] = f_t
        self.results = {"energy": e, "free_energy": e, "forces": forces}


def teacher_calculator(name: str, atoms: Atoms) -> Calculator:
    """A built-in teacher for ``atoms`` (any atom order: the best-matching permutation)."""
    from ffpt.teachers import available_teachers, get_teacher

    if name not in available_teachers():
        raise click.BadParameter(f"unknown teacher {name!r}; available: {available_teachers()}")
    formula = atoms.get_chemical_formula()
    try:
        teacher = get_teacher(name, species=formula) if name == "qforce-h2" else get_teacher(name)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"teacher {name} cannot describe {formula}: {exc}") from exc
    numbers = atoms.numbers
    if sorted(teacher.numbers) != sorted(numbers):
        raise click.BadParameter(f"teacher {name} describes {teacher.formula}, not {formula}")
    best, best_e = None, np.inf
    for perm in itertools.permutations(range(len(numbers))):
        perm = np.array(perm)
        if np.any(numbers[perm] != teacher.numbers):
            continue
        e, _ = teacher.energy_forces(atoms.positions[perm])
        if e < best_e:
            best, best_e = perm, e
    return PermutedCalculator(teacher, best)


@click.command("metad")
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@click.option("--calc", "teacher", default=None,
              help="use a built-in teacher (e.g. qforce-h2) instead of MODEL (for testing)")
@click.option("-g", "--geometry", required=True, type=click.Path(exists=True, dir_okay=False),
              help="starting geometry (any ASE format; xyz in Angstrom)")
@click.option("-p", "--plumed", "plumed_input", required=True,
              type=click.Path(exists=True, dir_okay=False), help="PLUMED input file")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="output folder (COLVAR, HILLS, trajectory.traj, md.log, plumed.log)")
@click.option("--steps", type=int, required=True, help="MD steps")
@click.option("--temperature", type=float, default=300.0, show_default=True, help="K")
@click.option("--friction", type=float, default=0.2, show_default=True, help="Langevin, 1/ps")
@click.option("--timestep", type=float, default=0.2, show_default=True, help="fs")
@click.option("--traj-every", type=int, default=100, show_default=True)
@click.option("--log-every", type=int, default=100, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--restart", is_flag=True, help="continue the run in --out (HILLS re-read)")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float64",
              show_default=True, help="checkpoint evaluation precision")
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads")
@click.option("--no-progress", is_flag=True)
def metad(model, teacher, geometry, plumed_input, out_dir, steps, temperature, friction,
          timestep, traj_every, log_every, seed, restart, dtype, threads, no_progress) -> None:
    """Langevin metadynamics of GEOMETRY with MODEL biased by a PLUMED input (ASE route)."""
    from ase.io import read

    from ffpt.md.metad import run_metad
    from ffpt.plumed import PlumedNotFoundError

    if (model is None) == (teacher is None):
        raise click.UsageError("give exactly one of MODEL (checkpoint or deployed artifact) "
                               "or --calc TEACHER")
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    atoms = read(geometry)
    if teacher:
        calc = teacher_calculator(teacher, atoms)
    elif not Path(model).is_file():
        raise click.BadParameter(f"model file {model} not found", param_hint="MODEL")
    else:
        from ffpt.calculator import load_calculator

        calc = load_calculator(model, dtype)
    try:
        res = run_metad(atoms, calc, plumed_input, out_dir, steps=steps,
                        temperature_K=temperature, friction_per_ps=friction,
                        timestep_fs=timestep, traj_every=traj_every, log_every=log_every,
                        seed=seed, restart=restart, progress=not no_progress)
    except (ValueError, FileNotFoundError, PlumedNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{res.steps_done} steps in {res.wall_s:.1f} s "
               f"({1e3 * res.wall_s / max(1, steps):.2f} ms/step); outputs in {res.out_dir}")
    if res.hills is not None:
        click.echo(f"free-energy surface: ffpt fes {res.hills}")
