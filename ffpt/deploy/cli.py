"""``ffpt-deploy CHECKPOINT`` (also ``ffpt deploy``)."""

from __future__ import annotations

import click


@click.command("deploy")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="artifact path [default: <checkpoint stem>-deployed.pt or .pt2]")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float64",
              show_default=True, help="precision of the deployed model")
@click.option("--format", "fmt", type=click.Choice(["torchscript", "aotinductor"]),
              default="torchscript", show_default=True,
              help="TorchScript (.pt) or AOTInductor (.pt2: ~1.5x faster model, 30-60 s to "
              "compile, weights frozen in); pair_style ffpt and load_deployed read both")
def deploy(checkpoint: str, output: str | None, dtype: str, fmt: str) -> None:
    """Turn a training CHECKPOINT into an artifact for LAMMPS ``pair_style ffpt`` and ASE."""
    from ffpt.deploy.deploy import deploy_checkpoint

    try:
        out, meta = deploy_checkpoint(checkpoint, output, dtype=dtype, fmt=fmt)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {out}: elements {' '.join(meta.elements)}, cutoff {meta.cutoff:g} A, "
        f"{meta.num_interactions} interactions (receptive field {meta.receptive_field:g} A), "
        f"{meta.dtype}, sha256 {meta.weights_sha256[:12]}"
    )
    click.echo(f"LAMMPS: pair_style ffpt\n        pair_coeff * * {out} {' '.join(meta.elements)}")


def main() -> None:
    """Console script ``ffpt-deploy``."""
    deploy()


if __name__ == "__main__":
    main()
