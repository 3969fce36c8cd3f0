"""Two-step perturbation of target structures (Zheng & Fung's materials pre-training data).

Each of ``rounds`` rounds makes one new frame from every source structure, in two steps:

1. displace the atoms: ``x' = x + d * eps``, ``eps ~ N(0, 1)`` per Cartesian coordinate
   (``d`` = ``displacement``, Angstrom, as in :func:`ffpt.sampling.rattle.rattle`);
2. strain the cell: ``cell' = cell (I + e)``, ``e`` symmetric with independent components
   ``e_ab ~ U(-s, s)`` (``s`` = ``strain``), atoms moved with the cell (fractional
   coordinates kept). Non-periodic structures get step 1 only.

Rounds are independent draws from the source (not cumulative), so the displacement and strain
statistics are exactly the amplitudes. The frames are then labelled by a teacher that
evaluates any cell (:class:`ffpt.teachers.eam.EAMPotential`).
"""

from __future__ import annotations

import time

import numpy as np

from ffpt.data.frames import FrameSet


def random_strains(n: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3, 3) symmetric strain tensors with components U(-amplitude, amplitude)."""
    e = rng.uniform(-amplitude, amplitude, (n, 3, 3))
    upper = np.triu(e)
    return upper + np.transpose(np.triu(e, 1), (0, 2, 1))


def two_step_perturb(source: FrameSet, rounds: int, displacement: float, strain: float,
                     seed: int = 0) -> FrameSet:
    """``rounds`` perturbed copies of every frame of ``source`` (round-major order: all
    sources of round 1, then round 2, ...); labels dropped. See module docstring."""
    if rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {rounds}")
    if displacement < 0 or not 0 <= strain < 0.5:
        raise ValueError(f"need displacement >= 0 A and 0 <= strain < 0.5, got {displacement}, "
                         f"{strain}")
    rng = np.random.default_rng(seed)
    n_src = source.n_frames
    periodic = (source.pbc.all(axis=1) if source.cell is not None and source.pbc is not None
                else np.zeros(n_src, bool))
    numbers, positions, cells = [], [], []
    for _ in range(rounds):
        eps = random_strains(n_src, strain, rng)
        for k in range(n_src):
            x = source.positions[source.frame_slice(k)]
            x = x + displacement * rng.standard_normal(x.shape)
            cell = source.cell[k] if source.cell is not None else np.zeros((3, 3))
            if periodic[k]:
                deform = np.eye(3) + eps[k]
                x, cell = x @ deform, cell @ deform
            numbers.append(source.numbers[source.frame_slice(k)])
            positions.append(x)
            cells.append(cell)
    return FrameSet(
        numbers=np.concatenate(numbers), positions=np.concatenate(positions),
        n_atoms=np.tile(source.n_atoms, rounds),
        cell=np.array(cells) if source.cell is not None else None,
        pbc=np.tile(source.pbc, (rounds, 1)) if source.pbc is not None else None,
        info={"kind": "ffpt-pt-data", "perturb": "two-step", "rounds": int(rounds),
              "displacement_A": float(displacement), "strain": float(strain), "seed": int(seed)},
    )


def perturbed_pt_data(teacher_file: str, source: FrameSet, rounds: int, displacement: float,
                      strain: float, seed: int = 0) -> FrameSet:
    """Two-step perturbed frames of ``source`` labelled with the EAM in ``teacher_file``."""
    from ffpt.teachers.eam import EAMPotential

    if not str(teacher_file).endswith(".json"):
        raise ValueError(f"--perturb two-step labels with a fitted EAM (--teacher eam.json), "
                         f"not '{teacher_file}': it evaluates structures of any cell")
    pot = EAMPotential.load(teacher_file)
    t0 = time.perf_counter()
    fs = two_step_perturb(source, rounds, displacement, strain, seed)
    fs.energy, fs.forces = pot.evaluate(fs)
    if not (np.isfinite(fs.energy).all() and np.isfinite(fs.forces).all()):
        raise RuntimeError("the EAM gave non-finite labels; lower --displacement/--strain")
    fs.info.update({"teacher": "eam", "eam_file": str(teacher_file), "eam": pot.to_dict(),
                    "source_frames": int(source.n_frames), "n_frames": int(fs.n_frames),
                    "units": {"positions": "Angstrom", "energy": "eV",
                              "forces": "eV/Angstrom"},
                    "label_seconds": round(time.perf_counter() - t0, 3)})
    return fs


def perturb_cmd(teacher: str, from_data: str | None, perturb: str | None, rounds: int,
                displacement: float, strain: float, seed: int, output: str,
                extxyz: str | None) -> None:
    """``ffpt pt-data --from DATA --perturb two-step``: write the labelled frames."""

    import click

    from ffpt.labelling.label import read_structures
    from ffpt.sampling.cli import write_pt_frames

    if not from_data or perturb != "two-step":
        raise click.ClickException("--from DATA and --perturb two-step go together "
                                   "(e.g. --teacher eam.json --from data.npz --perturb two-step)")
    fs = perturbed_pt_data(teacher, read_structures(from_data), rounds, displacement, strain,
                           seed)
    fs.info["source"] = str(from_data)
    out = write_pt_frames(fs, output, extxyz)
    click.echo(f"wrote {out}: {fs.n_frames} frames ({rounds} two-step rounds x "
               f"{fs.n_frames // rounds} structures, displacement {displacement} A, "
               f"strain {strain})")
