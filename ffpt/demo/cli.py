"""``ffpt demo``: run the FFPT-FT water pipeline and write a report."""

from __future__ import annotations

import os
import time

import click

#: wall time of the whole chain on 2 CPU cores, by preset (docs/demo.md)
EXPECTED = {None: "about 15 minutes on 2 CPU cores", "tiny": "a couple of minutes",
            "paper": "hours on a CPU"}


@click.command("demo")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Demo config [default: inputs/water/demo.yaml of the repository].")
@click.option("--preset", default=None,
              help="Preset from the config: 'tiny' (CI size) or 'paper' (the paper's model size).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run folder [default: run_dir of the config, runs/demo-water].")
@click.option("--fresh", is_flag=True, help="Delete the run folder and start over.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set ft_data.path=my_dft.extxyz "
                   "or --set stability.steps=4000 (repeatable).")
@click.option("--ft-data", default=None, type=click.Path(dir_okay=False),
              help="Shortcut for --set ft_data.path=FILE: fine-tune on your labelled frames.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--until", default=None, metavar="STAGE",
              help="Stop after this stage, e.g. train_pt (pre-train on a GPU machine, copy the "
                   "run folder back, rerun without --until).")
def demo(config_path, preset, run_dir, fresh, sets, ft_data, no_progress, until) -> None:
    """FFPT-FT against scratch, end to end (default: water): PT data -> FT data (TIP3P
    liquid + xTB labels) -> train PT, then FT and scratch on the same data and epochs ->
    deploy -> test errors, hole scans, LAMMPS MD survival over seeds -> report.

    Finished stages are skipped on a rerun of the same run folder; --fresh starts over.
    """
    # One thread per process unless the user says otherwise: on a busy 2-core machine two
    # torch/OpenMP threads per process ran 3x slower (training, MD, model evaluation).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import Pipeline, StopAfter

    sets = list(sets)
    if ft_data:
        sets.append(f"ft_data.path={ft_data}")
    try:
        cfg = load_demo_config(config_path, preset, sets)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    run = run_dir or cfg["run_dir"]
    click.echo(start_notice(run, preset, fresh, custom=bool(config_path or sets),
                            variants=list(cfg["train"]["variants"])))
    t0 = time.perf_counter()
    pipe = Pipeline(cfg, run, fresh=fresh, progress=not no_progress, until=until)
    try:
        report = pipe.run_all()
    except StopAfter:
        click.echo(f"\nstopped after {until} as asked (--until); wall time "
                   f"{time.perf_counter() - t0:.0f} s; rerun without --until to continue")
        return
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(f"{exc}\n(finished stages are kept in {run}; rerun to "
                                   "continue, --fresh to start over)") from exc
    click.echo(f"\nreport: {report}  (wall time {time.perf_counter() - t0:.0f} s)")
    click.echo(report.read_text().split("\n\n")[2] if report.exists() else "")


def start_notice(run: str, preset: str | None, fresh: bool, custom: bool = False,
                 variants: list[str] = ("ft", "scratch")) -> str:
    """One line: what starts, where, for how long, and how to stop and resume."""
    expect = EXPECTED.get(preset, "unknown duration")
    if custom:
        expect += " with the default settings"
    again = "starting over (--fresh)" if fresh else "finished stages there are reused"
    return (f"ffpt demo: FFPT-FT chain (PT data, FT data, PT + {len(variants)} trainings: "
            f"{', '.join(variants)}; scans, LAMMPS MD) in {run}, {expect}; {again}; "
            "Ctrl-C stops it, the same command resumes.")
