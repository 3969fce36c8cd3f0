"""The ``ffpt`` command line. Sub-commands live in their stage's module and load lazily."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click.Command; imported only when used.
COMMANDS: dict[str, str] = {
    "train": "ffpt.train.cli:train",
    "evaluate": "ffpt.train.cli:evaluate",
    "info": "ffpt.train.cli:info",
    "pt-data": "ffpt.sampling.cli:pt_data",
    "scan": "ffpt.analysis.cli:scan",
    "deploy": "ffpt.deploy.cli:deploy",
    "build-plugin": "ffpt.lammps:build_plugin_cmd",
    "metad": "ffpt.md.metad_cli:metad",
    "fes": "ffpt.md.fes:fes_cmd",
    "label": "ffpt.labelling.cli:label",
    "demo": "ffpt.demo.cli:demo",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (keeps ``ffpt --help`` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            return click.Command(name, help=f"(unavailable: {exc})", callback=_unavailable(exc))


def _unavailable(exc: Exception):
    def fail() -> None:
        raise click.ClickException(f"this command could not be loaded: {exc}")

    return fail


@click.group(cls=LazyGroup)
@click.version_option(package_name="ffpt")
def main() -> None:
    """ffpt: pre-train MLIPs on force-field data, fine-tune on ab initio data, run MD."""


if __name__ == "__main__":
    main()
