"""``ffpt label``: energies and forces for any structures, resumable."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("label")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Labelled frames: FrameSet .npz, or any ASE format (.extxyz, ...).")
@click.option("--engine", type=click.Choice(["xtb", "pyscf"]), default="xtb", show_default=True,
              help="xtb: GFN-xTB (tblite; molecules and periodic cells). "
                   "pyscf: molecular HF/DFT.")
@click.option("--method", default=None,
              help="xtb: GFN2-xTB (default) or GFN1-xTB; pyscf: HF or an XC functional "
                   "(default PBE).")
@click.option("--basis", default=None, help="pyscf basis set (default def2-SVP).")
@click.option("--charge", type=int, default=None, help="Total charge (default 0).")
@click.option("--multiplicity", type=int, default=None, help="Spin multiplicity (default 1).")
@click.option("--index", "index", default=None,
              help="Frames to label, Python slice syntax, e.g. '0:100' or '::10'.")
@click.option("--fresh", is_flag=True, help="Ignore earlier progress and relabel everything.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def label(input_path, output, engine, method, basis, charge, multiplicity, index, fresh,
          no_progress) -> None:
    """Label INPUT (any ASE-readable file or FrameSet .npz) with energies and forces.

    Already-labelled frames are journalled next to OUTPUT (OUTPUT.journal.jsonl); after an
    interruption the same command recomputes only the missing frames.
    """
    import numpy as np

    from ffpt.labelling.engines import make_engine
    from ffpt.labelling.label import label_frames, read_structures

    try:
        eng = make_engine(engine, method=method, basis=basis, charge=charge,
                          multiplicity=multiplicity)
        frames = read_structures(input_path)
        if index:
            parts = [int(p) if p.strip() else None for p in index.split(":")]
            if len(parts) == 1:
                sel = np.array([parts[0]])
            else:
                sel = np.arange(frames.n_frames)[slice(*parts)]
            frames = frames.subset(sel)
        out = label_frames(frames, eng, output, fresh=fresh, progress=not no_progress,
                           source=str(input_path))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    e = out.energy
    click.echo(
        f"labelled {out.n_frames} frames with {eng.name} ({eng.describe().get('method')}) "
        f"-> {Path(output)}  (energy {e.min():.4f} .. {e.max():.4f} eV, "
        f"max |F| {np.abs(out.forces).max():.3f} eV/A)"
    )
