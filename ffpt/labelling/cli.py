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
              help="Frames to label: a frame number or a Python slice, e.g. '0:100' or '::10'. "
                   "Chunks labelled into the same OUTPUT merge.")
@click.option("--fresh", is_flag=True, help="Ignore earlier progress and relabel everything.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def label(input_path, output, engine, method, basis, charge, multiplicity, index, fresh,
          no_progress) -> None:
    """Label INPUT (any ASE-readable file or FrameSet .npz) with energies and forces.

    Finished frames are journalled next to OUTPUT (OUTPUT.journal.jsonl) by frame index and
    structure hash: after an interruption the same command computes only the missing frames;
    chunks (--index 0:100, then --index 100:200) merge into one OUTPUT in frame order, and a
    later run without --index reuses every finished frame.
    """
    import numpy as np

    from ffpt.data.frames import output_format
    from ffpt.labelling.engines import make_engine
    from ffpt.labelling.label import label_frames, read_structures

    output_format(output)  # an unknown output suffix fails before any work
    eng = make_engine(engine, method=method, basis=basis, charge=charge,
                      multiplicity=multiplicity)
    frames = read_structures(input_path)
    sel = parse_index(index, frames.n_frames) if index else None
    out = label_frames(frames, eng, output, indices=sel, fresh=fresh, progress=not no_progress,
                       source=str(input_path))
    e = out.energy
    held = "" if out.n_frames == frames.n_frames else f" of {frames.n_frames}"
    click.echo(
        f"{Path(output)} holds {out.n_frames}{held} frames labelled with {eng.name} "
        f"({eng.describe().get('method')})  (energy {e.min():.4f} .. {e.max():.4f} eV, "
        f"max |F| {np.abs(out.forces).max():.3f} eV/A)"
    )


def parse_index(text: str, n_frames: int):
    """Global frame indices of ``--index``: one number (negative counts from the end) or a
    Python slice ``start:stop[:step]``. Raises ``ValueError`` with the accepted forms."""
    import numpy as np

    hint = "use a frame number or a slice such as 0:100 or ::10"
    parts = text.split(":")
    try:
        vals = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise ValueError(f"--index {text!r} is not a frame number or slice; {hint}") from None
    if len(vals) > 3 or (len(vals) == 1 and vals[0] is None):
        raise ValueError(f"--index {text!r} is not a frame number or slice; {hint}")
    if len(vals) == 1:
        i = vals[0]
        if not -n_frames <= i < n_frames:
            raise ValueError(f"--index {i}: the input has {n_frames} frames (0..{n_frames - 1})")
        return np.array([i % n_frames])
    if vals[2:] == [0]:
        raise ValueError(f"--index {text!r}: the step cannot be zero; {hint}")
    sel = np.arange(n_frames)[slice(*vals)]
    if not len(sel):
        raise ValueError(f"--index {text!r} selects none of the {n_frames} input frames")
    return sel
