"""The ``ffpt`` command line. Sub-commands live in their stage's module and load lazily."""

from __future__ import annotations

import importlib
import os
import warnings

import click

# name -> "module:attribute" of a click.Command; imported only when used.
COMMANDS: dict[str, str] = {
    "train": "ffpt.train.cli:train",
    "evaluate": "ffpt.train.cli:evaluate",
    "info": "ffpt.train.cli:info",
    "pt-data": "ffpt.sampling.cli:pt_data",
    "teacher": "ffpt.teachers.cli:teacher",
    "scan": "ffpt.analysis.cli:scan",
    "deploy": "ffpt.deploy.cli:deploy",
    "build-plugin": "ffpt.lammps.plugin:build_plugin_cmd",
    "patch-lammps": "ffpt.lammps.patch:patch_lammps_cmd",
    "metad": "ffpt.md.cli:metad",
    "fes": "ffpt.analysis.fes:fes_cmd",
    "stability": "ffpt.analysis.stability_cli:stability",
    "analyze-msd": "ffpt.analysis.msd:msd_cmd",
    "label": "ffpt.labelling.cli:label",
    "demo": "ffpt.demo.cli:demo",
}


#: exceptions from commands shown as one line (``--debug`` or FFPT_DEBUG=1: the traceback)
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, KeyError, FileNotFoundError, RuntimeError, OSError,
)


class CLIError(click.ClickException):
    """Printed as one line ``error: MESSAGE`` on stderr; exit code 1."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def error_line(exc: BaseException) -> str:
    """One line for ``exc``: YAML errors name file, line and column; long texts keep their
    first line."""
    import yaml

    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None:
        return (f"{mark.name}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: "
                f"{exc.problem}; fix the file's syntax")
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] + (" (ffpt --debug shows the rest)" if len(lines) > 1 else "")


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """``ffpt --debug`` or FFPT_DEBUG=1: show tracebacks instead of one-line errors."""
    flag = bool(ctx is not None and ctx.params.get("debug"))
    return flag or os.environ.get("FFPT_DEBUG", "").strip() not in ("", "0")


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (keeps ``ffpt --help`` fast), and
    whose commands' errors are one line each (click usage errors keep exit code 2)."""

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

    def invoke(self, ctx: click.Context):
        import yaml

        debug = debug_enabled(ctx)
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _warning_line
            try:
                return super().invoke(ctx)
            except (click.UsageError, click.exceptions.Exit, click.Abort, CLIError):
                raise
            except click.ClickException as exc:
                if debug and exc.__cause__ is not None:  # a command wrapped it: show the cause
                    raise exc.__cause__ from None
                raise CLIError(" ".join(exc.format_message().split())) from exc
            except (*USER_ERRORS, yaml.YAMLError) as exc:
                if debug:
                    raise
                raise CLIError(error_line(exc)) from exc


def _unavailable(exc: Exception):
    def fail() -> None:
        raise click.ClickException(f"this command could not be loaded: {exc}")

    return fail


@click.group(cls=LazyGroup)
@click.version_option(package_name="ffpt")
@click.option("--debug", is_flag=True,
              help="Show the full traceback of an error (also: FFPT_DEBUG=1).")
def main(debug: bool) -> None:
    """ffpt: pre-train MLIPs on force-field data, fine-tune on ab initio data, run MD."""


if __name__ == "__main__":
    main()
