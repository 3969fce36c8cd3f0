"""``ffpt demo``: the FFPT-FT chain end to end on water (PT data, FT data sampled and labelled
with xTB, PT/FT/scratch training, deployment, LAMMPS MD, report)."""

from ffpt.demo.config import load_demo_config
from ffpt.demo.pipeline import Pipeline

__all__ = ["Pipeline", "load_demo_config"]
