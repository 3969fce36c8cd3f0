"""ffpt: force-field pre-trained, ab initio fine-tuned interatomic potentials.

Data flow: ``teachers`` → ``sampling`` → ``data`` → ``model`` → ``train`` →
``deploy`` → ``md`` / analysis.
"""

from __future__ import annotations


def _version() -> str:
    """The installed distribution's version; a bare source tree reads pyproject.toml."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ffpt")
    except PackageNotFoundError:
        import re
        from pathlib import Path

        try:
            text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
        except OSError:
            return "0+unknown"
        match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        return match.group(1) if match else "0+unknown"


__version__ = _version()

__all__ = ["FFPTCalculator", "__version__"]


def __getattr__(name: str):
    if name == "FFPTCalculator":
        from ffpt.calculator import FFPTCalculator

        return FFPTCalculator
    raise AttributeError(name)
