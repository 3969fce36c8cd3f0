"""``ffpt-deploy CHECKPOINT`` (also ``ffpt deploy``); ``ffpt-deploy --trust ARTIFACT.pt2``."""

from __future__ import annotations

from pathlib import Path

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
@click.option("--trust", "trust", is_flag=True,
              help="CHECKPOINT is a compiled .pt2 artifact from elsewhere: verify it and add it "
              "to this machine's allow-list (it contains native code: only if you trust its "
              "source)")
def deploy(checkpoint: str, output: str | None, dtype: str, fmt: str, trust: bool) -> None:
    """Turn a training CHECKPOINT into an artifact for LAMMPS ``pair_style ffpt`` and ASE."""
    from ffpt.deploy.deploy import deploy_checkpoint

    if trust:
        _trust(checkpoint)
        return
    try:
        out, meta = deploy_checkpoint(checkpoint, output, dtype=dtype, fmt=fmt)
    except (OSError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {out}: elements {' '.join(meta.elements)}, cutoff {meta.cutoff:g} A, "
        f"{meta.num_interactions} interactions (receptive field {meta.receptive_field:g} A), "
        f"{meta.dtype}, weights sha256 {meta.weights_sha256[:12]}, content sha256 "
        f"{meta.artifact_sha256[:12]}; MPI exchange modes: {meta.to_dict()['exchange']}"
    )
    click.echo(f"LAMMPS: pair_style ffpt\n        pair_coeff * * {out} {' '.join(meta.elements)}")


def _trust(path: str) -> None:
    from ffpt.deploy.artifact import verify_artifact
    from ffpt.deploy.trust import add_trusted, file_sha256

    if not path.endswith(".pt2"):
        raise click.ClickException(f"{path}: --trust is for compiled .pt2 artifacts (TorchScript "
                                   "artifacts need no allow-list)")
    try:
        verify_artifact(path, allow_compiled=True)
        digest = file_sha256(open(path, "rb").read())
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    listed = add_trusted(digest, str(Path(path).resolve()))
    click.echo(f"trusted {path} (sha256 {digest[:16]}...) in {listed}")


def main() -> None:
    """Console script ``ffpt-deploy``."""
    deploy()


if __name__ == "__main__":
    main()
