"""Rattled pre-training data from classical teachers and on-the-fly PT data."""

from ffpt.sampling.onthefly import OnTheFlyPTData
from ffpt.sampling.rattle import (
    DEFAULT_SIGMA,
    export_extxyz,
    generate_pt_data,
    rattle,
    split_counts,
    summary,
)
from ffpt.sampling.spec import build_teachers, parse_species

__all__ = [
    "DEFAULT_SIGMA",
    "OnTheFlyPTData",
    "build_teachers",
    "export_extxyz",
    "generate_pt_data",
    "parse_species",
    "rattle",
    "split_counts",
    "summary",
]
