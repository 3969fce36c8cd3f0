"""ffpt: force-field pre-trained, ab initio fine-tuned interatomic potentials.

Data flow: ``teachers`` → ``sampling`` → ``data`` → ``model`` → ``train`` →
``deploy`` → ``md`` / analysis.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["FFPTCalculator", "__version__"]


def __getattr__(name: str):
    if name == "FFPTCalculator":
        from ffpt.calculator import FFPTCalculator

        return FFPTCalculator
    raise AttributeError(name)
