"""``ffpt train``, ``ffpt evaluate`` and ``ffpt info``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--config", "-c", "config_path", default=None, type=click.Path(dir_okay=False),
              help="YAML file with data/model/training sections (or give it as first argument).")
@click.option("--run-dir", "-o", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: runs/<config name>).")
@click.option("--resume", is_flag=True, help="Continue exactly from <run-dir>/last.pt.")
@click.option("--overwrite", is_flag=True,
              help="Start over in a run folder that holds a run (replaces best/last/log).")
@click.option("--no-progress", is_flag=True, help="No progress bar (log only).")
@click.option("--map-elements", "map_elements", multiple=True, metavar="NEW=OLD",
              help="finetune: initialise element NEW from OLD of the init_from model, e.g. "
                   "Ge=Si (config map_elements).")
@click.option("--ensemble", type=click.IntRange(min=1), default=None, metavar="K",
              help="Train K members (seed + k: own init, data order and validation split) "
                   "into <run-dir>/member<k>/, one after another; see docs/ensembles.md.")
@click.argument("overrides", nargs=-1)
def train(config_path: str | None, run_dir: str | None, resume: bool, overwrite: bool,
          no_progress: bool, map_elements: tuple[str, ...], ensemble: int | None,
          overrides: tuple[str, ...]) -> None:
    """Train a model (modes scratch, pretrain, finetune) from a YAML config.

    \b
    ffpt train CONFIG.yaml [section.key=value ...]
    e.g. ffpt train inputs/water/ft.yaml training.lr=1e-4 model.features=64
    Distributed: torchrun --nproc_per_node 2 -m ffpt.cli train CONFIG.yaml
    """
    from ffpt.train.config import load_config
    from ffpt.train.trainer import train as run

    overrides = list(overrides)
    if config_path is None:
        if not overrides or "=" in overrides[0]:
            raise click.UsageError("give the config file: ffpt train CONFIG.yaml [key=value ...]")
        config_path = overrides.pop(0)

    if map_elements:
        from ffpt.train.map_elements import parse_mapping

        try:
            overrides.append("map_elements=" + json.dumps(parse_mapping(list(map_elements))))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    try:
        cfg = load_config(config_path, list(overrides))
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    out = Path(run_dir) if run_dir else Path("runs") / Path(config_path).stem
    if ensemble is not None:
        from ffpt.train.ensemble import train_ensemble

        try:
            paths = train_ensemble(cfg, out, ensemble, resume=resume, overwrite=overwrite,
                                   progress=not no_progress)
        except (ValueError, FileExistsError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo("best checkpoints: " + " ".join(str(p) for p in paths))
        return
    try:
        result = run(cfg, out, resume=resume, overwrite=overwrite, progress=not no_progress)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
    if result.metrics:
        click.echo(json.dumps({k: v for k, v in result.metrics.items()}, indent=2))
    click.echo(f"best checkpoint: {result.best_checkpoint}")


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--energy-key", default="energy", show_default=True)
@click.option("--forces-key", default="forces", show_default=True)
@click.option("--energy-unit", default=None, help="Unit of the file's energies (default eV).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float64",
              show_default=True)
@click.option("--png", type=click.Path(dir_okay=False), default=None,
              help="Parity plot (default: <checkpoint stem>_parity.png next to the checkpoint).")
def evaluate(checkpoint: str, data: tuple[str, ...], energy_key: str, forces_key: str,
             energy_unit: str | None, dtype: str, png: str | None) -> None:
    """Energy and force MAE/RMSE of CHECKPOINT on DATA files, with a parity PNG."""
    from ffpt.data.graph import GraphSet
    from ffpt.data.readers import read_many
    from ffpt.model.checkpoint import load_model
    from ffpt.train.metrics import evaluate as run_eval
    from ffpt.train.plots import parity_plot

    model = load_model(checkpoint, dtype=dtype)
    try:
        fs = read_many(list(data), energy_key=energy_key, forces_key=forces_key,
                       energy_unit=energy_unit)
        graphs = GraphSet(fs, model.elements, model.cutoff)
    except (ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    res = run_eval(model, graphs, return_predictions=True)
    pred = res.pop("predictions")
    png = png or str(Path(checkpoint).with_name(Path(checkpoint).stem + "_parity.png"))
    parity_plot(pred, png, title=Path(checkpoint).name)
    click.echo(json.dumps(res, indent=2))
    click.echo(f"parity plot: {png}")


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
def info(checkpoint: str) -> None:
    """Show a checkpoint's elements, architecture, training state and metrics."""
    from ffpt.model.checkpoint import load_checkpoint, model_from_checkpoint

    try:
        ck = load_checkpoint(checkpoint)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    model = model_from_checkpoint(ck)
    n_par = sum(p.numel() for p in model.parameters())
    click.echo(f"checkpoint     {checkpoint}")
    click.echo(f"ffpt version   {ck.get('ffpt_version')}")
    click.echo(f"mode           {ck.get('mode', '?')}")
    click.echo(f"elements       {' '.join(ck['elements'])}")
    click.echo(f"model          {json.dumps(ck['model_config'])}")
    click.echo(f"parameters     {n_par}")
    click.echo(f"receptive field {model.num_interactions * model.cutoff:.2f} Å "
               f"({model.num_interactions} x {model.cutoff} Å)")
    shifts = ", ".join(f"{e}: {s:.4f}" for e, s in zip(ck["elements"], model.shift.tolist(),
                                                         strict=True))
    click.echo(f"energy shifts  {shifts} eV")
    click.echo(f"energy scale   {model.scale.tolist()}")
    if "epoch" in ck:
        click.echo(f"epoch          {ck['epoch']} (best validation loss {ck['best_val']:.5g})")
        last = ck["history"][-1] if ck.get("history") else {}
        for key in ("val_energy_per_atom_mae", "val_forces_mae", "lr"):
            if key in last:
                click.echo(f"{key:<15}{last[key]:.5g}")
