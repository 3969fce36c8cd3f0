"""Package shape: version from the distribution metadata, no import back-arrows."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import ffpt


def test_version_is_the_distribution_version():
    assert ffpt.__version__ == version("ffpt")


def test_stages_do_not_import_the_calculator_through_the_package():
    """``import ffpt`` and the lower stages stay light: ``ffpt.FFPTCalculator`` loads lazily."""
    code = ("import sys, ffpt, ffpt.model.checkpoint, ffpt.train.trainer, ffpt.sampling; "
            "assert 'ffpt.calculator' not in sys.modules, 'calculator imported'; "
            "from ffpt import FFPTCalculator; assert 'ffpt.calculator' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
